#!/usr/bin/env bash
# The whole Test::Nginx suite on nginx 1.26.3 and the module built with
# AddressSanitizer and UndefinedBehaviorSanitizer (build-nginx.sh asan).
# Any sanitizer report (build/asan-reports/) fails the run, as a failed
# test does.  Not part of the default run: it takes about twice as long.
#
# Usage: scripts/asan.sh [test.sh options, e.g. --only t/003-stream.t]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PERSTACK_TEST_FULL_VARIANTS=asan \
    exec bash "$PERSTACK_ROOT/scripts/test.sh" --variants asan --no-unit "$@"
