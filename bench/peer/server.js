// The peer: the service that Perstack's guide tells application developers
// to write, done plainly with dockerode.  GET /run?expert=E&query=Q creates a
// container with the same sandbox as ngx_http_perstack_module, attaches to
// it, starts it and relays every line of its stdout as an SSE "data:" event;
// when the container has exited it is removed and the response ends.  A
// client that goes away gets its container removed (killed) at once.
//
//   node server.js [--port PORT] [--image IMAGE] [--label K=V]... [--env K=V]...
//
// PORT may also come from $PORT; --label and --env may be repeated (labels
// on every container, variables of every container).  It listens on
// 127.0.0.1 only and talks to the Docker Engine at $DOCKER_SOCKET
// (default /var/run/docker.sock).  It prints "listening on 127.0.0.1:PORT"
// once it accepts connections.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { PassThrough, Writable } = require('node:stream');
const { finished } = require('node:stream/promises');
const { parseArgs } = require('node:util');
const Docker = require('dockerode');

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT || '8080' },
    image: { type: 'string', default: 'perstack-demo:latest' },
    label: { type: 'string', multiple: true, default: [] },
    env: { type: 'string', multiple: true, default: [] },
  },
});

const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET || '/var/run/docker.sock' });
const labels = Object.fromEntries(opts.label.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

// The module's sandbox, field for field (src/ngx_http_perstack_policy.c with
// its defaults): no network, read-only root, every capability dropped.
function containerConfig(expert, query) {
  return {
    Image: opts.image,
    Cmd: ['perstack', 'run', '--runtime', 'local',
      '--config', '/etc/perstack/perstack.toml', '--env-path', '/dev/null',
      '--job-id', crypto.randomUUID(), '--', expert, query],
    WorkingDir: '/workspace',
    User: '65534:65534',
    Env: opts.env,
    Labels: labels,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    StopTimeout: 5,
    HostConfig: {
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: {
        '/tmp': 'rw,nosuid,nodev,noexec,size=64m',
        '/workspace': 'rw,nosuid,nodev,size=256m,uid=65534,gid=65534,mode=0700',
      },
      Memory: 512 * 1024 * 1024,
      MemorySwap: 512 * 1024 * 1024,
      NanoCpus: 1e9,
      PidsLimit: 128,
      CapDrop: ['ALL'],
      CapAdd: [],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      LogConfig: { Type: 'none', Config: {} },
    },
  };
}

async function run(req, res, expert, query) {
  let container = null;
  let stream = null;
  let removing = null;
  const remove = () => (removing ||= container.remove({ force: true }).catch(() => {}));
  res.on('close', () => {
    if (res.writableFinished) return;
    stream?.destroy();
    if (container) remove();
  });

  container = await docker.createContainer(containerConfig(expert, query));
  if (res.destroyed) return remove();

  try {
    stream = await container.attach({ stream: true, stdout: true, stderr: true });
    if (res.destroyed) throw new Error('client gone');
    const stdout = new PassThrough();
    const stderr = new Writable({ write(chunk, enc, done) { done(); } });
    docker.modem.demuxStream(stream, stdout, stderr);
    stream.on('error', (err) => stdout.destroy(err));
    stream.on('close', () => stdout.end());
    const ended = finished(stdout);

    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.flushHeaders();

    // Whole lines, one "data:" event each, written as they come; when the
    // client does not keep up, reading from the engine waits.
    let rest = '';
    stdout.setEncoding('utf8');
    stdout.on('data', (text) => {
      const lines = (rest + text).split('\n');
      rest = lines.pop();
      if (lines.length && !res.write(lines.map((l) => `data: ${l}\n\n`).join(''))
          && !stream.isPaused()) {
        stream.pause();
        res.once('drain', () => stream.resume());
      }
    });

    await container.start();
    await ended;
    if (rest) res.write(`data: ${rest}\n\n`);
    await container.wait();
    await container.remove();
    res.end();
  } catch (err) {
    await remove();
    throw err;
  }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const expert = url.searchParams.get('expert');
  if (url.pathname !== '/run' || req.method !== 'GET' || !expert) {
    res.writeHead(url.pathname === '/run' ? 400 : 404).end();
    return;
  }
  run(req, res, expert, url.searchParams.get('query') || '').catch((err) => {
    if (!res.destroyed) console.error(`run ${expert}: ${err.message}`);
    if (!res.headersSent) res.writeHead(502);
    res.destroy();
  });
});

// For bench/memory.sh, when node runs with --expose-gc: a full collection
// on SIGUSR2, so that the heap it measures holds only what is alive; then
// "gc HEAP_USED EXTERNAL" (bytes).
if (global.gc) {
  process.on('SIGUSR2', () => {
    global.gc();
    const { heapUsed, external } = process.memoryUsage();
    console.log(`gc ${heapUsed} ${external}`);
  });
}

server.listen(Number(opts.port), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
