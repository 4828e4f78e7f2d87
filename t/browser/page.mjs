#!/usr/bin/env node
// Drives the browser page (conf-examples/page/) in headless Chromium as a
// user would, and prints, as one JSON document, what the page showed.
// Used by t/028-page.t.
//
//   node t/browser/page.mjs --page URL --scenario NAME [--expert E]
//        [--query Q] [--answer A] [--reload-after N] [--screenshot FILE]
//        [--time-limit SECONDS] [--chromium PATH]
//
//   --page          the page, as the nginx under test serves it
//                   (http://127.0.0.1:PORT/page/)
//   --scenario      run:    pick the expert, type the query, press Run,
//                           wait for the end
//                   answer: the same, then wait for the paused job's
//                           question, type --answer, press "Answer and
//                           continue", wait for the continuation's end
//                   cancel: Run, wait for --reload-after events of the
//                           run's (streamReasoning), press Cancel, wait for
//                           the end
//                   reload: Run, wait for --reload-after streamReasoning
//                           events, reload the page, wait for the end of
//                           what the reloaded page shows
//   --screenshot    a PNG of the whole page at the end
//   --time-limit    seconds for everything (default 60)
//
// Every wait is for something on the page (playwright's waitFor), bounded
// by the time limit; no sleeps.  Output:
//
//   { "page": { url, status },
//     "before": the page just before the reload or the cancel (reload,
//               cancel), or when the question showed (answer),
//     "after":  the page at the end:
//               { turns: [ { kind, execution, state, outcome, resumed,
//                            prompt, text, result, problem, question,
//                            answered, tools: [ {name, state} ],
//                            end, badge, events: [ {position, type} ] } ],
//                 hint, runDisabled, storage },
//     "requests": what Chromium's network stack saw of each request to
//                 the agent: { url, method, t, lastEventId, status },
//     "timings": { what: ms from the start },
//     "elapsedMs", "console": [...], "pageErrors": [...] }
//
// Exit 0 whenever the document was printed; non-zero (a message on
// stderr) when the driver failed: bad arguments, no browser, a wait that
// timed out (then the page's text is on stderr too).

import { parseArgs } from 'node:util';
import { launchChromium } from './launch.mjs';

function usage(msg) {
    process.stderr.write(`page.mjs: ${msg}\n`
        + 'usage: node page.mjs --page URL --scenario run|answer|cancel|reload'
        + ' [--expert E] [--query Q] [--answer A] [--reload-after N]'
        + ' [--screenshot FILE] [--time-limit SECONDS] [--chromium PATH]\n');
    process.exit(2);
}

let opts;
try {
    opts = parseArgs({
        options: {
            page: { type: 'string' },
            scenario: { type: 'string' },
            expert: { type: 'string' },
            query: { type: 'string' },
            answer: { type: 'string' },
            'reload-after': { type: 'string', default: '2' },
            screenshot: { type: 'string' },
            'time-limit': { type: 'string', default: '60' },
            chromium: { type: 'string', default: '/usr/bin/chromium' },
        },
        allowPositionals: false,
    }).values;
} catch (e) {
    usage(e.message);
}

const scenarios = ['run', 'answer', 'cancel', 'reload'];
const limit = Number(opts['time-limit']);
const reloadAfter = Number(opts['reload-after']);

if (!opts.page || !/^https?:\/\//.test(opts.page)) {
    usage('--page needs an http:// or https:// URL');
}
if (!scenarios.includes(opts.scenario)) {
    usage(`--scenario is one of ${scenarios.join(', ')}`);
}
if (opts.scenario === 'answer' && !opts.answer) {
    usage('--scenario answer needs --answer');
}
if (!(limit > 0) || !(reloadAfter >= 1)) {
    usage('--time-limit and --reload-after need positive numbers');
}

const started = Date.now();
const deadline = started + limit * 1000;
const left = () => Math.max(1, deadline - Date.now());

const out = {
    page: { url: opts.page, status: null },
    scenario: opts.scenario,
    before: null,
    after: null,
    requests: [],
    timings: {},
    elapsedMs: null,
    console: [],
    pageErrors: [],
};

const mark = (what) => { out.timings[what] = Date.now() - started; };

// What the page shows, read from its DOM.
function snapshot(page) {
    return page.evaluate(() => {
        const text = (root, sel) => {
            const e = root.querySelector(sel);
            return e && !e.hidden && !e.closest('[hidden]')
                ? e.textContent : null;
        };
        const storage = sessionStorage.getItem('perstack-page');
        return {
            turns: [...document.querySelectorAll('#turns .turn')].map((t) => ({
                kind: t.dataset.kind,
                execution: t.dataset.execution || null,
                job: text(t, '.ids .job'),
                container: text(t, '.ids .container'),
                state: t.dataset.state,
                outcome: t.dataset.outcome || null,
                resumed: !!t.querySelector('.resumed'),
                prompt: text(t, '.prompt-text'),
                badge: text(t, '.turn-head .badge'),
                text: text(t, '.text'),
                result: text(t, '.result-text'),
                reasoning: text(t, '.reasoning-text'),
                problem: text(t, '.problem'),
                question: text(t, '.question'),
                answered: t.querySelector('.pending.answered') !== null,
                tools: [...t.querySelectorAll('.tool')].map((l) => ({
                    name: l.dataset.tool, state: l.dataset.state })),
                end: text(t, '.end'),
                cancel: (() => {
                    const b = t.querySelector('button.cancel');
                    return b ? { hidden: b.hidden, disabled: b.disabled }
                             : null;
                })(),
                events: [...t.querySelectorAll('.log-list li')].map((l) => ({
                    position: l.dataset.position === ''
                        ? null : Number(l.dataset.position),
                    type: l.dataset.type })),
            })),
            hint: document.querySelector('#hint').textContent,
            runDisabled: document.querySelector('#run').disabled,
            storage: storage === null ? null : JSON.parse(storage),
        };
    });
}

let browser;

async function main() {
    browser = await launchChromium(opts.chromium, left(),
                                   ['--font-render-hinting=none']);

    const context = await browser.newContext({
        viewport: { width: 960, height: 720 },
        deviceScaleFactor: 1,
    });
    const page = await context.newPage();
    page.setDefaultTimeout(left());

    page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => out.pageErrors.push(String(e)));

    // The agent's requests as Chromium's network stack saw them, across
    // the reload: the Last-Event-ID of a reconnection, the status.
    const cdp = await context.newCDPSession(page);
    const byId = new Map();
    const req = (id) => {
        let r = byId.get(id);
        if (!r) {
            r = { url: null, method: null, t: null, lastEventId: null,
                  status: null };
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
        r.t = Date.now() - started;
        r.lastEventId = lastEventId(e.request.headers) ?? r.lastEventId;
    });
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
        const r = req(e.requestId);
        r.lastEventId = lastEventId(e.headers) ?? r.lastEventId;
    });
    cdp.on('Network.responseReceived', (e) => {
        req(e.requestId).status = e.response.status;
    });
    await cdp.send('Network.enable');

    const res = await page.goto(opts.page, { waitUntil: 'load',
                                             timeout: left() });
    out.page.status = res ? res.status() : null;
    if (!res || res.status() !== 200) {
        throw new Error(`the page ${opts.page} answered `
                        + (res ? res.status() : 'nothing'));
    }
    mark('loaded');

    // the user: an expert, a query, Run
    if (opts.expert) {
        await page.selectOption('#expert', opts.expert);
    }
    if (opts.query !== undefined) {
        await page.fill('#query', opts.query);
    }
    await page.click('#run');
    mark('run');

    const turn = (n) => page.locator('#turns .turn').nth(n);
    const ended = (n) => page.locator(
        `#turns > .turn:nth-child(${n + 1})[data-state="ended"]`);

    switch (opts.scenario) {
    case 'run':
        await ended(0).waitFor();
        mark('ended');
        break;

    case 'answer': {
        const box = turn(0).locator('.pending textarea');
        await box.waitFor();
        mark('question');
        out.before = await snapshot(page);
        await box.fill(opts.answer);
        await turn(0).locator('.pending button').click();
        mark('answered');
        await ended(1).waitFor();
        mark('ended');
        break;
    }

    case 'cancel':
        await turn(0).locator('.log-list li[data-type="streamReasoning"]')
            .nth(reloadAfter - 1).waitFor({ state: 'attached' });
        out.before = await snapshot(page);
        await turn(0).locator('button.cancel').click();
        mark('cancel');
        await ended(0).waitFor();
        mark('ended');
        break;

    case 'reload':
        await turn(0).locator('.log-list li[data-type="streamReasoning"]')
            .nth(reloadAfter - 1).waitFor({ state: 'attached' });
        out.before = await snapshot(page);
        mark('reload');
        await page.reload({ waitUntil: 'load', timeout: left() });
        mark('reloaded');
        await ended(0).waitFor();
        mark('ended');
        break;

    default:
        break;
    }

    out.after = await snapshot(page);

    if (opts.screenshot) {
        // (the blinking cursor and the pulse stopped with the end)
        await page.screenshot({ path: opts.screenshot, fullPage: true,
                                animations: 'disabled', timeout: left() });
        mark('screenshot');
    }

    out.requests = out.requests.filter(
        (r) => /\/agent(\?|$)/.test(r.url || ''));
}

let failed = false;

try {
    await main();
} catch (e) {
    process.stderr.write(`page.mjs: ${e && e.stack ? e.stack : e}\n`);
    failed = true;
}

if (failed && browser) {
    // what the page showed when the wait gave up
    try {
        const [page] = browser.contexts()[0].pages();
        const text = await page.evaluate(() => document.body.innerText);
        process.stderr.write(`page.mjs: the page shows:\n${text}\n`);
    } catch (e) {
        // no page to read
    }
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
