#!/usr/bin/env node
// Opens EventSource streams in headless Chromium and prints, as one JSON
// document, everything the browser saw.  Used by t/024-browser.t.
//
//   node t/browser/eventsource.mjs --page URL --stream PATH [--stream PATH]...
//        --event TYPE[,TYPE...] [--event TYPE]... [--time-limit SECONDS]
//        [--chromium PATH]
//
//   --page        the page to load, http:// or https:// (certificate errors
//                 are ignored): t/browser/eventsource.html served by the
//                 nginx under test, so that the streams are same-origin
//   --stream      a path (or URL) to open with new EventSource(); repeatable.
//                 (Over HTTP/1.1 a browser keeps at most 6 connections to
//                 one host: more streams than that wait for each other.)
//   --event       event types to listen to (addEventListener); repeatable,
//                 or a comma-separated list; "message" for events without
//                 an "event:" line
//   --time-limit  seconds for everything, from the start (default 60)
//   --chromium    the browser (default /usr/bin/chromium, Debian's)
//
// The page records, for each stream, in order: every "open", every
// "error" with the readyState after it, every event {type, lastEventId,
// data}.  A stream is done when an error leaves it CLOSED (2): a failed
// connection, or a 204 answer to a reconnection.  The driver waits until
// every stream is done or the time limit passes, then closes the streams
// that are still open and prints:
//
//   { "page": { url, status, protocol },
//     "timeLimit": s, "timedOut": bool, "elapsedMs": ms,
//     "streams": [ { path, url, done, readyState, stopped, opens,
//                    events: [ {t, type, lastEventId, data} ],
//                    errors: [ {t, readyState} ],
//                    log: [ every open, error and event, in order ] } ],
//     "requests": [ what the browser's network stack saw of every request:
//                   { url, method, t, lastEventId, status, protocol,
//                     finished, failed, headers: {response headers} } ],
//     "resources": [ performance resource entries: { name, initiatorType,
//                    nextHopProtocol, responseStatus } ],
//     "console": [...], "pageErrors": [...] }
//
// protocol is what the browser spoke ("http/1.1", "h2"): the navigation's
// nextHopProtocol for the page, Chromium's own record (CDP) for each
// request.  Times (t) are milliseconds.
//
// Exit 0 whenever the document was printed, whatever the streams did;
// non-zero (a message on stderr) only when the driver itself failed: bad
// arguments, no browser, the page did not load.

import { parseArgs } from 'node:util';
import { launchChromium } from './launch.mjs';

function usage(msg) {
    process.stderr.write(`eventsource.mjs: ${msg}\n`
        + 'usage: node eventsource.mjs --page URL --stream PATH... '
        + '--event TYPE... [--time-limit SECONDS] [--chromium PATH]\n');
    process.exit(2);
}

let opts;
try {
    opts = parseArgs({
        options: {
            page: { type: 'string' },
            stream: { type: 'string', multiple: true },
            event: { type: 'string', multiple: true },
            'time-limit': { type: 'string', default: '60' },
            chromium: { type: 'string', default: '/usr/bin/chromium' },
        },
        allowPositionals: false,
    }).values;
} catch (e) {
    usage(e.message);
}

const pageUrl = opts.page;
const paths = opts.stream || [];
const types = (opts.event || []).flatMap((v) => v.split(','))
    .filter((v) => v !== '');
const limit = Number(opts['time-limit']);

if (!pageUrl || !/^https?:\/\//.test(pageUrl)) {
    usage('--page needs an http:// or https:// URL');
}
if (paths.length === 0) {
    usage('at least one --stream');
}
if (types.length === 0) {
    usage('at least one --event');
}
if (!(limit > 0)) {
    usage('--time-limit needs a number of seconds');
}

const started = Date.now();
const deadline = started + limit * 1000;
const left = () => Math.max(0, deadline - Date.now());
const https = pageUrl.startsWith('https:');

const out = {
    page: { url: pageUrl, status: null, protocol: null },
    timeLimit: limit,
    timedOut: false,
    elapsedMs: null,
    streams: [],
    requests: [],
    resources: [],
    console: [],
    pageErrors: [],
};

let browser;

async function main() {
    browser = await launchChromium(opts.chromium, left(),
                                   https ? ['--ignore-certificate-errors']
                                         : []);

    const context = await browser.newContext({ ignoreHTTPSErrors: https });
    const page = await context.newPage();

    page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => out.pageErrors.push(String(e)));

    // The network as Chromium saw it: the request headers it sent (with
    // the Last-Event-ID of a reconnection), the status, the protocol, how
    // each response ended.
    const cdp = await context.newCDPSession(page);
    const byId = new Map();
    let t0 = null;
    const rel = (ts) => {
        if (t0 === null) {
            t0 = ts;
        }
        return Math.round((ts - t0) * 1000);
    };
    const req = (id) => {
        let r = byId.get(id);
        if (!r) {
            r = { url: null, method: null, t: null, lastEventId: null,
                  status: null, protocol: null, finished: false,
                  failed: null, headers: null };
            byId.set(id, r);
            out.requests.push(r);
        }
        return r;
    };
    const lastEventId = (headers) => {
        for (const [k, v] of Object.entries(headers || {})) {
            if (k.toLowerCase() === 'last-event-id') {
                return v;
            }
        }
        return null;
    };

    cdp.on('Network.requestWillBeSent', (e) => {
        const r = req(e.requestId);
        r.url = e.request.url;
        r.method = e.request.method;
        r.t = rel(e.timestamp);
        r.lastEventId = lastEventId(e.request.headers) ?? r.lastEventId;
    });
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
        const r = req(e.requestId);
        r.lastEventId = lastEventId(e.headers) ?? r.lastEventId;
    });
    cdp.on('Network.responseReceived', (e) => {
        const r = req(e.requestId);
        r.status = e.response.status;
        r.protocol = e.response.protocol ?? null;
        r.headers = e.response.headers;
    });
    cdp.on('Network.loadingFinished', (e) => {
        req(e.requestId).finished = true;
    });
    cdp.on('Network.loadingFailed', (e) => {
        req(e.requestId).failed = e.errorText
            + (e.canceled ? ' (canceled)' : '');
    });
    await cdp.send('Network.enable');

    const res = await page.goto(pageUrl, { waitUntil: 'load',
                                           timeout: left() });
    out.page.status = res ? res.status() : null;

    if (!res || res.status() !== 200) {
        throw new Error(`the page ${pageUrl} answered `
                        + (res ? res.status() : 'nothing'));
    }

    const hasPage = await page.evaluate(
        () => typeof openStreams === 'function');
    if (!hasPage) {
        throw new Error(`${pageUrl} is not t/browser/eventsource.html `
                        + '(no openStreams())');
    }

    // Every stream done, or the time limit: whichever comes first.
    let timer;
    const timeUp = new Promise((resolve) => {
        timer = setTimeout(() => resolve('time'), left());
    });
    const all = page.evaluate(([p, t]) => openStreams(p, t).then(() => 'done'),
                              [paths, types]);
    all.catch(() => {});    // (still pending when the browser closes)
    const how = await Promise.race([all, timeUp]);
    clearTimeout(timer);
    out.timedOut = how === 'time';

    const seen = await page.evaluate((stop) => ({
        streams: streamRecords(stop),
        protocol: (performance.getEntriesByType('navigation')[0] || {})
            .nextHopProtocol ?? null,
        resources: performance.getEntriesByType('resource').map((r) => ({
            name: r.name, initiatorType: r.initiatorType,
            nextHopProtocol: r.nextHopProtocol,
            responseStatus: r.responseStatus ?? null,
        })),
    }), out.timedOut);

    out.page.protocol = seen.protocol;
    out.resources = seen.resources;
    out.streams = seen.streams.map((s) => ({
        path: s.path,
        url: s.url,
        done: s.done,
        readyState: s.readyState,
        stopped: s.stopped,
        opens: s.log.filter((l) => l.what === 'open').length,
        events: s.log.filter((l) => l.what === 'event')
            .map(({ t, type, lastEventId, data }) =>
                ({ t, type, lastEventId, data })),
        errors: s.log.filter((l) => l.what === 'error')
            .map(({ t, readyState }) => ({ t, readyState })),
        log: s.log,
    }));
}

let failed = false;

try {
    await main();
} catch (e) {
    process.stderr.write(`eventsource.mjs: ${e && e.stack ? e.stack : e}\n`);
    failed = true;
}

if (browser) {
    await browser.close().catch(() => {});
}

if (failed) {
    process.exit(1);
}

out.elapsedMs = Date.now() - started;

// (exit once the document is written: to a pipe, the write completes
// later, and an exit before that would cut it short)
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
