/**
 * server-lifecycle.test.ts — the one lifecycle (src/net/server.ts + listen.ts) that the
 * proxy, the milter and the POP3 front plug into, driven with a tiny line-echo front:
 * listen on unix sockets (mode, owner, group; a live socket is never unlinked, a stale
 * one is, a non-socket never), reload (new connections get new settings, old ones keep
 * theirs), connection limit, drain (idle connections close, busy ones finish) and the
 * grace deadline. Runs as root (the test machines do): chown to nobody/nogroup is real.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TMP_BASE } from '../helpers/paths.js';
import { serve, type FrontSpec } from '../../src/net/server.js';
import { MidstreamError } from '../../src/core/errors.js';
import { createLogger } from '../../src/log/logger.js';

mkdirSync(TMP_BASE, { recursive: true });
const dir = mkdtempSync(join(TMP_BASE, 'lifecycle-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Echo front: greets with its settings' tag; "busy" starts a transaction that "done" ends; drain waits for it. */
function echoFront(): FrontSpec<{ tag: string }> {
  return {
    front: 'test',
    connect(socket: Socket, s, info) {
      let busy = false;
      let draining = false;
      socket.write(`hello ${s.tag} ${info.id}\n`);
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.on('data', (d) => {
        for (const line of d.toString().split('\n').filter(Boolean)) {
          if (line === 'busy') busy = true;
          if (line === 'done') {
            busy = false;
            socket.write('ok\n');
            if (draining) socket.end('bye\n');
          }
        }
      });
      return {
        closed,
        drain() {
          draining = true;
          if (!busy) socket.end('bye\n');
        },
        destroy: () => socket.destroy(),
      };
    },
    refuse: (socket) => socket.end('full\n'),
  };
}

function client(path: string): Promise<{ sock: Socket; lines: string[]; next(): Promise<string | null> }> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const lines: string[] = [];
    let buf = '';
    let wake: (() => void) | null = null;
    let ended = false;
    sock.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      wake?.();
    });
    sock.on('close', () => {
      ended = true;
      wake?.();
    });
    sock.once('error', reject);
    let read = 0;
    const next = async (): Promise<string | null> => {
      while (read >= lines.length && !ended) await new Promise<void>((r) => (wake = r));
      return read < lines.length ? lines[read++]! : null;
    };
    sock.once('connect', () => resolve({ sock, lines, next }));
  });
}

const logs: Record<string, unknown>[] = [];
const logger = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l) as Record<string, unknown>) });

test('unix socket: mode, owner and group applied; reload reaches new connections only', async () => {
  const path = join(dir, 'a.sock');
  const srv = await serve(echoFront(), { tag: 'v1' }, { listen: { kind: 'unix', path }, socket: { mode: 0o620, owner: 'nobody', group: 'nogroup' }, logger });
  try {
    const st = statSync(path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o620);
    assert.equal(st.uid, Number(execFileSync('id', ['-u', 'nobody']).toString().trim()));
    assert.equal(st.gid, Number(execFileSync('getent', ['group', 'nogroup']).toString().split(':')[2]));
    assert.equal(srv.address, `unix:${path}`);
    const a = await client(path);
    assert.match((await a.next())!, /^hello v1 [0-9a-z]+\.[0-9a-z]+$/);
    srv.reload({ tag: 'v2' });
    const b = await client(path);
    assert.match((await b.next())!, /^hello v2 /);
    a.sock.write('busy\n');
    a.sock.write('done\n');
    assert.equal(await a.next(), 'ok', 'the old connection still runs on its snapshot');
    assert.equal(srv.connections, 2);
  } finally {
    await srv.close();
  }
  assert.equal(existsSync(path), false, 'socket file removed on close');
  assert.ok(logs.some((l) => l.event === 'listening' && l.front === 'test' && l.address === `unix:${path}`));
});

test('a live socket is never unlinked; a stale one is; a non-socket never', async () => {
  const live = join(dir, 'live.sock');
  const other = createServer(() => {});
  await new Promise<void>((r) => other.listen(live, r));
  try {
    await assert.rejects(serve(echoFront(), { tag: 'x' }, { listen: { kind: 'unix', path: live }, logger }), (e: unknown) => {
      assert.ok(e instanceof MidstreamError);
      assert.equal(e.code, 'LISTEN_IN_USE');
      return true;
    });
    assert.ok(statSync(live).isSocket(), 'the live socket is still there');
    const c = await client(live); // and still answers
    c.sock.destroy();
  } finally {
    await new Promise<void>((r) => other.close(() => r()));
  }
  // A stale socket (its listener gone without unlinking: a SIGKILLed process).
  const stale = join(dir, 'stale.sock');
  execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`]);
  assert.ok(statSync(stale).isSocket());
  const srv = await serve(echoFront(), { tag: 's' }, { listen: { kind: 'unix', path: stale }, logger });
  const c = await client(stale);
  assert.match((await c.next())!, /^hello s /);
  await srv.close();
  const file = join(dir, 'file.sock');
  writeFileSync(file, 'not a socket');
  await assert.rejects(serve(echoFront(), { tag: 'x' }, { listen: { kind: 'unix', path: file }, logger }), (e: unknown) => e instanceof MidstreamError && e.code === 'LISTEN_NOT_SOCKET');
  assert.ok(statSync(file).isFile());
  await assert.rejects(
    serve(echoFront(), { tag: 'x' }, { listen: { kind: 'unix', path: join(dir, 'o.sock') }, socket: { owner: 'no-such-user-xq' }, logger }),
    (e: unknown) => e instanceof MidstreamError && e.code === 'SOCKET_OWNER',
  );
  assert.equal(existsSync(join(dir, 'o.sock')), false, 'nothing left behind');
});

test('TCP: real port, connection limit refuses in the front\'s words, busy ports are LISTEN_FAILED', async () => {
  const srv = await serve(echoFront(), { tag: 't' }, { listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, maxConnections: 1, logger });
  try {
    const port = Number(/:(\d+)$/.exec(srv.address)![1]);
    assert.ok(port > 0);
    const c1 = await new Promise<Socket>((r) => { const s = connect(port, '127.0.0.1', () => r(s)); });
    const first = await new Promise<string>((r) => c1.once('data', (d) => r(d.toString())));
    assert.match(first, /^hello t /);
    const c2 = await new Promise<Socket>((r) => { const s = connect(port, '127.0.0.1', () => r(s)); });
    const second = await new Promise<string>((r) => c2.once('data', (d) => r(d.toString())));
    assert.equal(second, 'full\n');
    c1.destroy();
    c2.destroy();
    await assert.rejects(serve(echoFront(), { tag: 'x' }, { listen: { kind: 'tcp', host: '127.0.0.1', port }, logger }), (e: unknown) => {
      assert.ok(e instanceof MidstreamError && e.code === 'LISTEN_FAILED');
      assert.equal(e.errno, 'EADDRINUSE');
      return true;
    });
  } finally {
    await srv.close();
  }
});

test('drain: idle connections close at once, a busy one finishes; past the grace it is dropped', async () => {
  const path = join(dir, 'd.sock');
  const srv = await serve(echoFront(), { tag: 'd' }, { listen: { kind: 'unix', path }, logger, shutdownGraceMs: 60_000 });
  const idle = await client(path);
  const busy = await client(path);
  await idle.next();
  await busy.next();
  busy.sock.write('busy\n');
  await new Promise((r) => setTimeout(r, 50));
  const closing = srv.close();
  assert.equal(await idle.next(), 'bye', 'idle: closed at once');
  assert.equal(await idle.next(), null);
  busy.sock.write('done\n');
  assert.equal(await busy.next(), 'ok', 'busy: its transaction finishes');
  assert.equal(await busy.next(), 'bye');
  await closing;
  assert.equal(logs.filter((l) => l.event === 'closed' && l.address === `unix:${path}`).at(-1)?.how, 'drained');

  const path2 = join(dir, 'g.sock');
  const srv2 = await serve(echoFront(), { tag: 'g' }, { listen: { kind: 'unix', path: path2 }, logger, shutdownGraceMs: 300 });
  const stuck = await client(path2);
  await stuck.next();
  stuck.sock.write('busy\n');
  await new Promise((r) => setTimeout(r, 50));
  await srv2.close();
  assert.equal(await stuck.next(), null, 'dropped after the grace period');
  assert.equal(logs.filter((l) => l.event === 'closed' && l.address === `unix:${path2}`).at(-1)?.how, 'deadline');
  assert.ok(logs.some((l) => l.event === 'shutdown-deadline' && l.dropped === 1));
});
