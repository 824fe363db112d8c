/** milter-server: listen notation, unix socket handling (mode, stale file, live socket, non-socket), close. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { startMilter } from '../../milter/milter-server.js';
import { nullLogger } from '../../src/log/logger.js';
import { MilterClient } from '../helpers/milter-client.js';
import { fakeEngine } from '../helpers/milter-fake-engine.js';
import { SMFIR } from '../../milter/milter-codes.js';

test('inet on port 0 reports the real port; close() ends live connections', async () => {
  const srv = await startMilter({ listen: 'inet:0@127.0.0.1', engine: fakeEngine(), logger: nullLogger });
  const m = /^inet:(\d+)@127\.0\.0\.1$/.exec(srv.address);
  assert.ok(m && Number(m[1]) > 0, srv.address);
  const c = await MilterClient.connect(srv.address);
  await c.negotiate();
  await srv.close();
  assert.equal(await c.next(2000), null);
  await srv.close(); // idempotent
});

test('unix socket: stale file removed, mode applied, live socket and non-socket refused, unlinked on close', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'midstream-milter-'));
  try {
    const path = join(dir, 'm.sock');
    // A stale socket: bound by a process that was killed (SIGKILL leaves the file behind).
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`]);
    try {
      await new Promise<void>((res, rej) => {
        child.stdout.once('data', () => res());
        child.once('exit', () => rej(new Error('helper exited early')));
      });
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    assert.ok((await lstat(path)).isSocket());

    const srv = await startMilter({ listen: `unix:${path}`, socketMode: 0o600, engine: fakeEngine(), logger: nullLogger });
    assert.equal(srv.address, `unix:${path}`);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const c = await MilterClient.connect(srv.address);
    await c.negotiate(6, 0, 0);
    assert.equal((await c.connectInfo())!.final.cmd, SMFIR.CONTINUE);
    c.close();

    await assert.rejects(startMilter({ listen: `unix:${path}`, engine: fakeEngine(), logger: nullLogger }), /in use/);
    await srv.close();
    await assert.rejects(lstat(path), /ENOENT/);

    const plain = join(dir, 'file');
    await writeFile(plain, 'x');
    await assert.rejects(startMilter({ listen: `unix:${plain}`, engine: fakeEngine(), logger: nullLogger }), /not a socket/);

    const def = await startMilter({ listen: `unix:${path}`, engine: fakeEngine(), logger: nullLogger });
    assert.equal((await stat(path)).mode & 0o777, 0o660, 'default mode 0660');
    await def.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
