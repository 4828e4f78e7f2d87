// ngx_http_perstack_module: the browser page (conf-examples/page/).
//
// Everything goes through the module's location next to the page,
// "agent", with what any browser has:
//
//   - a run:      new EventSource("agent?expert=E&query=Q")
//   - an answer:  new EventSource("agent?expert=E&jobId=J&answer=A"), for a
//                 job whose last run paused at an interactive tool call
//   - a cancel:   fetch("agent?execution=X", {method: "DELETE"}); the
//                 stream then ends with perstack.end, outcome "cancelled"
//   - a resume:   new EventSource("agent?execution=X&after=0") after a
//                 reload: the record from its first event, then live
//
// A dropped connection is the browser's to mend: EventSource reconnects to
// the same URL with the last id it had in Last-Event-ID, and the module
// answers with the events after it, never with a second run.  The page
// only closes the EventSource itself after perstack.end (otherwise the
// browser would ask again and get 204), and after an error that came
// before any event: then the request was refused or failed before its
// stream (an EventSource cannot read the JSON body that says why), and a
// retry of a new run's URL without a Last-Event-ID would be a new run.
//
// sessionStorage keeps the execution that streams (its id, position,
// expert, job), so that a reload opens it again instead of starting it
// again; and a paused one, so that its question survives the reload.

'use strict';

const AGENT = 'agent';
const STORE = 'perstack-page';

const EXPERTS = {
    demo: {
        hint: 'Streams your query back word by word, then completes.',
        example: 'What can nginx do with a stream of agent events?',
    },
    interactive: {
        hint: 'Asks you a question (askUser) and pauses; answer it, and the '
            + 'job continues from its checkpoint.',
        example: 'deploy v2 to production',
    },
    slow: {
        hint: 'Thinks for N seconds, one line a second: the query is N. '
            + 'Try Cancel, or reload the page while it runs.',
        example: '20',
    },
    quiet: {
        hint: 'N:S, N thoughts, each after S seconds of silence.',
        example: '3:4',
    },
    stderr: {
        hint: 'The demo run, with chatter on stderr.',
        example: 'hello from the browser',
    },
    error: {
        hint: 'A model call fails: the run stops with an error.',
        example: 'anything',
    },
    maxsteps: {
        hint: 'The run reaches its step limit.',
        example: 'anything',
    },
};

// An EventSource hands an event only to the listeners of its type: every
// type the module and the runtime send ("message": an event without an
// "event:" line, a line that stopped being JSON).
const TYPES = [
    'perstack.execution', 'perstack.end', 'perstack.stdout',
    'perstack.stderr', 'perstack.daemon', 'perstack.invalid',
    'perstack.truncated',
    'initializeRuntime', 'skillStarting', 'skillConnected', 'skillStderr',
    'skillDisconnected', 'startRun', 'startGeneration', 'retry',
    'callTools', 'callInteractiveTool', 'callDelegate', 'resolveToolResults',
    'finishToolCall', 'finishAllToolCalls', 'attemptCompletion',
    'continueToNextStep', 'startStreamingReasoning', 'streamReasoning',
    'completeStreamingReasoning', 'startStreamingRunResult',
    'streamRunResult', 'completeStreamingRunResult', 'completeRun',
    'stopRunByInteractiveTool', 'stopRunByDelegate', 'stopRunByError',
    'stopRunByExceededMaxSteps', 'proxyAccess',
];

const OUTCOMES = {
    completed: 'ok', paused: 'wait', cancelled: 'off', abandoned: 'off',
    client_gone: 'off', max_steps: 'warn', timeout: 'bad',
    idle_timeout: 'bad', output_limit: 'bad', shutdown: 'bad', failed: 'bad',
    error: 'bad',
};

const $ = (sel, root = document) => root.querySelector(sel);

// el('div.a.b', {attr: v}, child...): an element; strings are text
function el(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split('.');
    const e = document.createElement(tag || 'div');
    if (classes.length) {
        e.className = classes.join(' ');
    }
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === false || v === null || v === undefined) {
            continue;
        }
        if (k === 'text') {
            e.textContent = v;
        } else if (k === 'hidden') {
            e.hidden = true;
        } else {
            e.setAttribute(k, v === true ? '' : v);
        }
    }
    for (const c of children) {
        if (c !== null && c !== undefined && c !== false) {
            e.append(c);
        }
    }
    return e;
}

function agentUrl(args) {
    // form-encoded: "+" for a space, as the module decodes arguments
    return AGENT + '?' + new URLSearchParams(args).toString();
}

function seconds(ms) {
    if (typeof ms !== 'number') {
        return null;
    }
    return ms < 10000 ? (ms / 1000).toFixed(1) + ' s'
                      : Math.round(ms / 1000) + ' s';
}

function shortArgs(args) {
    if (!args || typeof args !== 'object') {
        return '';
    }
    const parts = Object.entries(args).map(([k, v]) =>
        k + ': ' + (typeof v === 'string' ? v : JSON.stringify(v)));
    const s = parts.join(', ');
    return s.length > 140 ? s.slice(0, 139) + '…' : s;
}


// ---- what is kept across a reload -------------------------------------------

function saved() {
    try {
        const s = JSON.parse(sessionStorage.getItem(STORE) || 'null');
        return s && /^[0-9a-f]{32}$/.test(s.execution || '') ? s : null;
    } catch (e) {
        return null;
    }
}

function save(s) {
    try {
        sessionStorage.setItem(STORE, JSON.stringify(s));
    } catch (e) {
        // (storage full or off: the page works, a reload does not resume)
    }
}

function forget() {
    try {
        sessionStorage.removeItem(STORE);
    } catch (e) {
        // nothing kept
    }
}


// ---- one execution: its card, its stream -----------------------------------

let running = null;

// While the page goes away (a reload), its EventSources fail: that is no
// news to show, nor a reason to forget the execution.
let leaving = false;
window.addEventListener('pagehide', () => { leaving = true; });

class Turn {
    // kind: "run" (a new job) or "answer" (a paused job continued);
    // prompt: the query or the answer; resumed: opened from the record
    constructor({ kind, expert, prompt, job, resumed }) {
        this.kind = kind;
        this.expert = expert;
        this.prompt = prompt;
        this.job = job || null;
        this.execution = null;
        this.position = 0;
        this.events = 0;
        this.ended = false;
        this.tools = new Map();
        this.question = new Map();
        this.streamed = '';
        this.reasoned = '';
        this.es = null;
        this.resumed = !!resumed;
        this.build(resumed);
    }

    build(resumed) {
        this.badge = el('span.badge.s-run', { text: 'starting' });
        this.link = el('span.link', { text: '' });
        this.cancelButton = el('button.cancel', { type: 'button',
                                                   disabled: true,
                                                   text: 'Cancel' });
        this.cancelButton.addEventListener('click', () => this.cancel());

        this.ids = el('dl.ids');
        this.reasoning = el('div.reasoning', { hidden: true },
                            el('h3', { text: 'Thinking' }),
                            el('p.reasoning-text'));
        this.toolList = el('ol.tools');
        this.toolsBox = el('div.tools-box', { hidden: true },
                           el('h3', { text: 'Tool calls' }), this.toolList);
        this.text = el('div.text', { hidden: true });
        this.result = el('div.result', { hidden: true });
        this.problem = el('div.problem', { hidden: true });
        this.stderrList = el('pre.stderr-text');
        this.stderr = el('details.stderr', { hidden: true },
                         el('summary'), this.stderrList);
        this.pendingBox = el('div.pending', { hidden: true });
        this.end = el('div.end', { hidden: true });
        this.logList = el('ol.log-list');
        this.logSummary = el('summary', { text: 'Events' });
        this.log = el('details.log', {}, this.logSummary, this.logList);

        const label = this.kind === 'answer' ? 'Your answer' : 'Your query';

        this.card = el('article.card.turn', { 'data-state': 'starting',
                                              'data-kind': this.kind },
            el('header.turn-head', {},
                el('div.who', {},
                    el('span.expert', { text: this.expert }),
                    el('span.kind', { text: this.kind === 'answer'
                                            ? 'continues the job'
                                            : 'new job' }),
                    resumed ? el('span.resumed', { text:
                                 'resumed from the record' }) : null),
                el('div.state', {}, this.link, this.badge,
                   this.cancelButton)),
            el('div.prompt', {}, el('span.prompt-label', { text: label }),
               el('span.prompt-text', { text: this.prompt || '' })),
            this.ids, this.reasoning, this.toolsBox, this.text, this.result,
            this.problem, this.pendingBox, this.stderr, this.end, this.log);

        $('#turns').append(this.card);
        $('#empty').hidden = true;
        this.showIds();
    }

    showIds() {
        this.ids.replaceChildren();
        const add = (k, v, cls) => {
            if (v) {
                this.ids.append(el('div.id', {}, el('dt', { text: k }),
                                   el('dd.' + cls, {},
                                      el('code', { text: v }))));
            }
        };
        add('execution', this.execution, 'execution');
        add('job', this.job, 'job');
        add('container', this.container, 'container');
    }

    setState(state, text, cls) {
        this.card.dataset.state = state;
        this.badge.textContent = text;
        this.badge.className = 'badge ' + cls;
    }

    open(url) {
        running = this;
        setBusy(true);
        this.setState('running', 'running', 's-run');

        this.cancelButton.hidden = false;

        const es = new EventSource(url);
        this.es = es;

        for (const type of TYPES) {
            es.addEventListener(type, (e) => this.onEvent(type, e));
        }
        es.onmessage = (e) => this.onEvent('message', e);
        es.onopen = () => { this.link.textContent = ''; };
        es.onerror = () => this.onError();
    }

    close() {
        if (this.es) {
            this.es.close();
            this.es = null;
        }
        if (running === this) {
            running = null;
            setBusy(false);
        }
        this.cancelButton.hidden = true;
        this.link.textContent = '';
    }

    onError() {
        if (!this.es || leaving) {
            return;
        }

        if (this.events === 0) {
            // refused before its stream, or no connection at all: say so,
            // and never let the browser retry a new run without an id
            this.close();
            this.fail(this.resumed
                      ? 'This execution is no longer kept (its record '
                        + 'expired), or it is not yours.'
                      : 'The request was refused, or failed before its '
                        + 'stream started: no execution ran.  (An '
                        + 'EventSource cannot read why; the response\'s '
                        + 'JSON body and nginx\'s error log say.)',
                      this.resumed);
            return;
        }

        if (this.es.readyState === EventSource.CONNECTING) {
            // the browser reconnects with Last-Event-ID: a resume
            this.link.textContent = 'reconnecting…';
            return;
        }

        this.close();
        this.fail('The stream ended before its closing event.');
    }

    fail(message, gone) {
        this.setState('ended', 'no stream', 's-bad');
        this.problem.hidden = false;
        this.problem.textContent = message;
        if (gone) {
            forget();
        }
    }

    cancel() {
        if (!this.execution || this.ended) {
            return;
        }
        this.cancelButton.disabled = true;
        this.setState('running', 'cancelling', 's-off');
        fetch(agentUrl({ execution: this.execution }), { method: 'DELETE' })
            .then((r) => {
                if (r.status !== 202 && r.status !== 200) {
                    this.link.textContent = 'cancel refused (' + r.status
                                            + ')';
                }
            })
            .catch(() => { this.link.textContent = 'cancel failed'; });
    }

    keep() {
        save({ execution: this.execution, position: this.position,
               expert: this.expert, job: this.job, kind: this.kind,
               prompt: this.prompt, ended: this.ended,
               outcome: this.outcome || null });
    }

    onEvent(type, e) {
        if (!this.es) {
            return;
        }

        const m = /^([0-9a-f]{32})-([0-9]+)$/.exec(e.lastEventId || '');
        const position = m ? Number(m[2]) : null;
        let d = null;
        try {
            d = JSON.parse(e.data);
        } catch (err) {
            d = null;
        }

        this.events++;
        if (position !== null) {
            this.position = position;
        }
        this.logEvent(position, type, d);

        if (d && typeof d === 'object') {
            this.render(type, d);
        }

        if (this.execution) {
            if (this.ended && this.outcome !== 'paused') {
                forget();
            } else {
                this.keep();
            }
        }

        if (type === 'perstack.end') {
            this.close();
        }
    }

    logEvent(position, type, d) {
        let what = '';
        if (d && typeof d.delta === 'string') {
            what = d.delta;
        } else if (d && type === 'perstack.end') {
            what = d.outcome;
        } else if (d && Array.isArray(d.toolCalls)) {
            what = d.toolCalls.map((c) => c.toolName).join(', ');
        }
        this.logList.append(el('li', { 'data-position': position ?? '',
                                       'data-type': type },
            el('span.pos', { text: position ?? '?' }),
            el('span.type', { text: type }),
            el('span.what', { text: what })));
        this.logSummary.textContent = 'Events (' + this.events + ')';
    }

    addTool(call, state) {
        let item = this.tools.get(call.id);
        if (!item) {
            item = el('li.tool', { 'data-tool': call.toolName || '' },
                      el('span.tool-name', { text: call.toolName || '?' }),
                      el('span.tool-skill', { text: call.skillName || '' }),
                      el('span.tool-args', { text: shortArgs(call.args) }),
                      el('span.tool-state'));
            this.tools.set(call.id || String(this.tools.size), item);
            this.toolList.append(item);
            this.toolsBox.hidden = false;
        }
        this.toolState(item, state);
        return item;
    }

    toolState(item, state) {
        const words = { called: 'called', waiting: 'waiting for you',
                        done: 'done', answered: 'answered' };
        item.dataset.state = state;
        $('.tool-state', item).textContent = words[state] || state;
    }

    finishTools() {
        for (const item of this.tools.values()) {
            if (item.dataset.state === 'called') {
                this.toolState(item, 'done');
            }
        }
    }

    render(type, d) {
        switch (type) {
        case 'perstack.execution':
            this.execution = d.execution || null;
            this.job = d.job || this.job;
            this.container = (d.container || '').slice(0, 12) || null;
            this.card.dataset.execution = this.execution || '';
            this.showIds();
            this.cancelButton.disabled = false;
            break;

        case 'callTools':
            for (const call of d.toolCalls || []) {
                this.addTool(call, 'called');
            }
            break;

        case 'callInteractiveTool':
            if (d.toolCall) {
                this.addTool(d.toolCall, 'waiting');
                if (d.toolCall.args && d.toolCall.args.question) {
                    this.question.set(d.toolCall.id,
                                      String(d.toolCall.args.question));
                }
            }
            break;

        case 'attemptCompletion':
            if (d.toolResult && this.tools.has(d.toolResult.id)) {
                this.toolState(this.tools.get(d.toolResult.id), 'done');
            }
            break;

        case 'finishAllToolCalls':
        case 'resolveToolResults':
            // a continued job: the answer resolves the call it paused at
            for (const msg of d.newMessages || []) {
                for (const part of msg.contents || []) {
                    if (part.type === 'toolResultPart'
                        && !this.tools.has(part.toolCallId))
                    {
                        this.addTool({ id: part.toolCallId,
                                       toolName: part.toolName,
                                       skillName: part.skillName,
                                       args: this.kind === 'answer'
                                             ? { answer: this.prompt }
                                             : null }, 'answered');
                    }
                }
            }
            this.finishTools();
            break;

        case 'finishToolCall':
            this.finishTools();
            break;

        case 'streamReasoning':
            this.reasoned += d.delta || '';
            this.showReasoning(true);
            break;

        case 'completeStreamingReasoning':
            if (typeof d.text === 'string') {
                this.reasoned = d.text;
            }
            this.showReasoning(false);
            break;

        case 'startStreamingRunResult':
            this.text.hidden = false;
            this.text.classList.add('streaming');
            break;

        case 'streamRunResult':
            this.streamed += d.delta || '';
            this.text.hidden = false;
            this.text.textContent = this.streamed;
            this.text.classList.add('streaming');
            break;

        case 'completeStreamingRunResult':
            if (typeof d.text === 'string') {
                this.streamed = d.text;
            }
            this.text.textContent = this.streamed;
            this.text.classList.remove('streaming');
            break;

        case 'completeRun':
            this.finishTools();
            this.text.classList.remove('streaming');
            if (typeof d.text === 'string' && d.text.trim() !== ''
                && d.text.trim() !== this.streamed.trim())
            {
                this.result.hidden = false;
                this.result.replaceChildren(
                    el('h3', { text: 'Result' }),
                    el('p.result-text', { text: d.text }));
            }
            break;

        case 'stopRunByError':
            this.problem.hidden = false;
            this.problem.textContent = 'The run stopped with an error: '
                + ((d.error && (d.error.name + ': ' + d.error.message))
                   || 'no details');
            break;

        case 'stopRunByExceededMaxSteps':
            this.problem.hidden = false;
            this.problem.textContent = 'The run reached its step limit.';
            break;

        case 'perstack.stderr':
        case 'perstack.stdout':
        case 'perstack.daemon':
            this.addStderr(type, d.text);
            break;

        case 'perstack.end':
            this.onEnd(d);
            break;

        default:
            break;
        }
    }

    showReasoning(live) {
        this.reasoning.hidden = false;
        $('.reasoning-text', this.reasoning).textContent = this.reasoned;
        this.reasoning.classList.toggle('streaming', live);
    }

    addStderr(type, text) {
        if (typeof text !== 'string') {
            return;
        }
        this.stderrLines = (this.stderrLines || 0) + text.split('\n').length;
        this.stderrList.textContent += (type === 'perstack.stderr' ? ''
                                        : '[' + type + '] ') + text + '\n';
        this.stderr.hidden = false;
        $('summary', this.stderr).textContent = 'stderr and other output ('
            + this.stderrLines + (this.stderrLines === 1 ? ' line)'
                                                          : ' lines)');
    }

    onEnd(d) {
        this.ended = true;
        this.outcome = d.outcome || 'error';
        this.job = d.job || this.job;
        this.showIds();
        this.text.classList.remove('streaming');
        this.reasoning.classList.remove('streaming');

        const cls = 's-' + (OUTCOMES[this.outcome] || 'bad');
        this.setState('ended', this.outcome, cls);
        this.card.dataset.outcome = this.outcome;

        const facts = [];
        if (d.exit_code !== null && d.exit_code !== undefined) {
            facts.push('exit code ' + d.exit_code);
        }
        if (seconds(d.duration_ms)) {
            facts.push(seconds(d.duration_ms));
        }
        if (typeof d.events === 'number') {
            facts.push(d.events + ' events');
        }
        if (d.container_removed) {
            facts.push('container removed');
        }

        this.end.hidden = false;
        this.end.replaceChildren(
            el('span.badge.end-outcome.' + cls, { text: this.outcome }),
            el('span.end-facts', { text: facts.join(' · ') }));
        if (d.message) {
            this.end.append(el('span.end-message', { text: d.message }));
        }

        const calls = Array.isArray(d.pending_tool_calls)
                      ? d.pending_tool_calls : [];
        if (this.outcome === 'paused' && calls.length) {
            this.askFor(calls[0]);
        }
    }

    askFor(call) {
        const question = this.question.get(call.id)
                         || (call.args && call.args.question)
                         || 'The agent waits for an answer.';
        const input = el('textarea.answer', { rows: 2, required: true,
                                              placeholder: 'Your answer' });
        const send = el('button.primary', { type: 'submit',
                                            text: 'Answer and continue' });
        const form = el('form.answer-form', {}, input, send);

        this.pendingBox.hidden = false;
        this.pendingBox.replaceChildren(
            el('div.pending-head', {},
               el('span.tool-name', { text: call.toolName || '?' }),
               el('span.tool-skill', { text: call.skillName || '' }),
               el('span.pending-note', { text: 'the job waits for you' })),
            el('p.question', { text: question }),
            form);

        form.addEventListener('submit', (ev) => {
            ev.preventDefault();
            const answer = input.value.trim();
            if (answer === '' || running) {
                return;
            }
            form.replaceWith(el('p.your-answer', {},
                el('span.prompt-label', { text: 'You answered' }),
                el('span.answer-text', { text: answer })));
            this.pendingBox.classList.add('answered');
            $('.pending-note', this.pendingBox).textContent = 'answered';
            const item = this.tools.get(call.id);
            if (item) {
                this.toolState(item, 'answered');
            }
            const next = new Turn({ kind: 'answer', expert: this.expert,
                                    prompt: answer, job: this.job });
            next.open(agentUrl({ expert: this.expert, jobId: this.job,
                                 answer: answer }));
            next.card.scrollIntoView({ behavior: 'smooth', block: 'start' });
        });

        input.focus();
    }
}


// ---- the form ---------------------------------------------------------------

function setBusy(busy) {
    document.body.classList.toggle('busy', busy);
    $('#run').disabled = busy;
}

function showHint(expert) {
    $('#hint').textContent = (EXPERTS[expert] || {}).hint || '';
}

function start() {
    const form = $('#composer');
    const expert = $('#expert');
    const query = $('#query');
    let example = EXPERTS[expert.value].example;

    query.value = example;
    showHint(expert.value);

    expert.addEventListener('change', () => {
        const next = (EXPERTS[expert.value] || {}).example || '';
        if (query.value === example || query.value === '') {
            query.value = next;
        }
        example = next;
        showHint(expert.value);
    });

    form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        if (running || query.value.trim() === '') {
            return;
        }
        // a new job: the page shows one job at a time
        $('#turns').replaceChildren();
        forget();
        const turn = new Turn({ kind: 'run', expert: expert.value,
                                prompt: query.value });
        turn.open(agentUrl({ expert: expert.value, query: query.value }));
    });

    // after a reload: the execution that streamed (or paused), from its
    // record's first event, never a new run
    const s = saved();
    if (s && (!s.ended || s.outcome === 'paused')) {
        const turn = new Turn({ kind: s.kind === 'answer' ? 'answer' : 'run',
                                expert: String(s.expert || ''),
                                prompt: String(s.prompt || ''),
                                job: s.job, resumed: true });
        turn.execution = s.execution;
        turn.card.dataset.execution = s.execution;
        turn.showIds();
        turn.open(agentUrl({ execution: s.execution, after: 0 }));
    } else if (s) {
        forget();
    }
}

start();
