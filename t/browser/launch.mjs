// Debian's Chromium, headless, as both browser drivers start it: as root it
// needs --no-sandbox; the other flags keep it from reaching out to the
// network, which this machine does not have.

import { chromium } from 'playwright-core';

export function launchChromium(executablePath, timeout, extraArgs = []) {
    return chromium.launch({
        executablePath,
        headless: true,
        timeout,
        args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            ...extraArgs,
        ],
    });
}
