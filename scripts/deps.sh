#!/usr/bin/env bash
#
# Which files of src/ depend on which: by the functions and data one file
# uses that another defines (read from the compiled objects with nm), and
# by the module's own headers each file includes.  Prints every edge with
# what makes it, then the circles (groups of files that depend on each
# other, directly or not), then the size of each .c file.
#
#     scripts/deps.sh            the report
#     scripts/deps.sh --check    the same, and exit 1 if a rule is broken:
#                                a circle, a .c over 1200 lines or without
#                                its own .h, libcurl handles made outside
#                                the transport (ngx_http_perstack_curl.c)
#
# The objects come from scripts/build-nginx.sh debian (build/nginx-debian);
# PERSTACK_OBJS names another directory of ngx_http_perstack_*.o files.

set -euo pipefail

cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

objs="${PERSTACK_OBJS:-build/nginx-debian/objs/addon/src}"

if ! ls "$objs"/ngx_http_perstack_*.o >/dev/null 2>&1; then
    echo "deps: no objects in $objs: run scripts/build-nginx.sh debian" >&2
    exit 2
fi

for o in "$objs"/ngx_http_perstack_*.o; do
    f=$(basename "$o" .o)
    nm -P --defined-only "$o" | awk -v f="$f" '$2 ~ /^[TDBR]$/ { print "def", f, $1 }'
    nm -P -u "$o" | awk -v f="$f" '$1 ~ /^ngx_http_perstack_/ { print "use", f, $1 }'
done > build/deps.symbols

for c in src/ngx_http_perstack_*.[ch]; do
    f=$(basename "$c"); f=${f%.[ch]}
    grep -o '#include "ngx_http_perstack_[a-z_]*\.h"' "$c" \
        | sed 's/#include "\(.*\)\.h"/\1/' \
        | awk -v f="$f" '{ print "inc", f, $1 }' || true
done >> build/deps.symbols

perl -e '
    use strict;
    use warnings;

    my $check = shift;
    my (%def, %edge, %files);

    open my $in, "<", "build/deps.symbols" or die "$!";
    my @rows = map { chomp; [ split / / ] } <$in>;

    for (@rows) {
        my ($kind, $f, $what) = @$_;
        $files{$f} = 1 if $kind ne "inc";
        $def{$what} = $f if $kind eq "def";
    }

    # The module itself (its ngx_module_t) is declared in _common.h: every
    # file finds its configuration and context through it, as the files
    # of every nginx module do.  Using it is not a call into module.c.
    $def{ngx_http_perstack_module} = "ngx_http_perstack_common";
    $files{ngx_http_perstack_common} = 1;

    for (@rows) {
        my ($kind, $f, $what) = @$_;
        my $to;

        if ($kind eq "use") {
            $to = $def{$what} or next;
        } elsif ($kind eq "inc") {
            $to = $what;
            next unless $files{$to};
        } else {
            next;
        }

        next if $to eq $f;
        push @{ $edge{$f}{$to} }, $kind eq "inc" ? "#include" : $what;
    }

    print "== edges (file -> file it depends on: what)\n";
    for my $f (sort keys %edge) {
        for my $t (sort keys %{ $edge{$f} }) {
            my %seen;
            my @w = grep { !$seen{$_}++ } @{ $edge{$f}{$t} };
            printf "%s -> %s: %s\n", $f, $t, join(", ", @w);
        }
    }

    # Tarjan: the strongly connected components
    my ($index, @stack, %on, %idx, %low, @sccs) = (0);
    my $visit;
    $visit = sub {
        my ($v) = @_;
        $idx{$v} = $low{$v} = $index++;
        push @stack, $v;
        $on{$v} = 1;
        for my $w (sort keys %{ $edge{$v} || {} }) {
            if (!defined $idx{$w}) {
                $visit->($w);
                $low{$v} = $low{$w} if $low{$w} < $low{$v};
            } elsif ($on{$w}) {
                $low{$v} = $idx{$w} if $idx{$w} < $low{$v};
            }
        }
        if ($low{$v} == $idx{$v}) {
            my @c;
            while (1) {
                my $w = pop @stack;
                $on{$w} = 0;
                push @c, $w;
                last if $w eq $v;
            }
            push @sccs, [ sort @c ] if @c > 1;
        }
    };
    $visit->($_) for grep { !defined $idx{$_} } sort keys %files;

    print "\n== circles\n";
    print @sccs ? map { join(" <-> ", @$_) . "\n" } @sccs : "none\n";

    my @bad;

    print "\n== lines of each .c (at most 1200), and its own .h\n";
    for my $f (sort keys %files) {
        my $n = 0;
        open my $c, "<", "src/$f.c" or next;
        $n++ while <$c>;
        my $h = -e "src/$f.h" ? "" : "  (no $f.h)";
        printf "%6d %s.c%s\n", $n, $f, $h;
        push @bad, "$f.c has $n lines" if $n > 1200;
        push @bad, "$f.c has no header of its own" if $h;
    }

    print "\n== libcurl handles made (curl_easy_init)\n";
    for my $c (glob "src/*.c") {
        open my $in, "<", $c or next;
        my $n = grep { /\bcurl_easy_init\s*\(/ } <$in>;
        next unless $n;
        printf "%6d %s\n", $n, $c;
        push @bad, "$c makes libcurl handles" if $c ne "src/ngx_http_perstack_curl.c";
    }

    push @bad, "a circle" if @sccs;

    print "\n== ", (@bad ? join("; ", @bad) : "all rules hold"), "\n";

    exit(($check && @bad) ? 1 : 0);
' "$check"
