/**
 * milter-actions.test.ts — the milter front's end-of-message actions with the real core,
 * through our MTA-side client: quarantine, tag (X-Virus-Status, subject prefix), discard,
 * forged X-Virus-* removed (by index, highest first) or renamed, templates in REPLYCODE,
 * fail-closed when the MTA withholds an action, rules by {daemon_name} and {if_addr}
 * ({daemon_addr} for Postfix). Then the proxy's after-filter milter: a settled ticket's
 * edits, a forged/unknown ticket → TEMPFAIL, no ticket → untouched.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMilter, type MilterServer } from '../../milter/milter-server.js';
import { startAfterFilterMilter, type AfterFilterMilter } from '../../milter/after-filter-milter.js';
import { SMFIF, SMFIR } from '../../milter/milter-codes.js';
import type { Packet } from '../../milter/milter-wire.js';
import { createEngine, type Engine } from '../../src/core/index.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { parseConfigText } from '../../src/config/load-config.js';
import { rulesPolicy } from '../../src/cli/server-runtime.js';
import { engineOptions } from '../../src/cli/settings.js';
import { TicketBook } from '../../src/actions/verdict-tickets.js';
import { editsFor, type HeaderSettings } from '../../src/actions/message-edits.js';
import { MilterClient, replyCodeText } from '../helpers/milter-client.js';

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
const H: HeaderSettings = { scanned: 'midstream t on unit.test', status: false, incoming: 'remove', subjectPrefix: '***VIRUS*** ' };

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const logs: string[] = [];
const logger: Logger = createLogger({ level: 'debug', write: (l) => logs.push(l) });

async function milterFor(configText: string, headers: HeaderSettings = H): Promise<MilterServer> {
  const config = parseConfigText(configText, '/tmp/milter-actions.toml');
  const policyFor = rulesPolicy(config);
  const engine: Engine = await createEngine({ ...engineOptions(config), ...(policyFor ? { policyFor } : {}) });
  const m = await startMilter({ listen: 'inet:0@127.0.0.1', engine, logger, headers });
  cleanups.push(() => engine.close(), () => m.close());
  return m;
}

async function client(m: { address: string }, actions = 0x1ff): Promise<MilterClient> {
  const c = await MilterClient.connect(m.address);
  cleanups.push(() => c.close());
  await c.negotiate(6, actions, 0x1fffff);
  return c;
}

/** One message; returns the EOB reply. */
async function send(c: MilterClient, o: { headers?: [string, string][]; body: string; rcpt?: string; macros?: string[] }): Promise<{ mods: Packet[]; final: Packet }> {
  if (o.macros) c.macro('C', ...o.macros);
  await c.connectInfo('client.test', '192.0.2.7', 40000);
  await c.mail('<a@example.org>');
  await c.rcpt(`<${o.rcpt ?? 'r@example.net'}>`);
  for (const [n, v] of o.headers ?? [['From', 'a@example.org'], ['Subject', 'hello']]) await c.header(n, v);
  await c.eoh();
  await c.body(o.body);
  return c.eob();
}

const mods = (r: { mods: Packet[] }) =>
  r.mods.map((p) => {
    const indexed = p.cmd === SMFIR.CHGHEADER || p.cmd === SMFIR.INSHEADER;
    const d = indexed ? `${p.data.readUInt32BE(0)} ${p.data.subarray(4).toString('latin1')}` : p.data.toString('latin1');
    return `${p.cmd} ${d.replace(/\0/g, '|')}`;
  });

const CONFIG = `
[actions]
infected = "quarantine"
[[rules]]
name = "tagged"
match = { recipient_domain = ["tag.example"] }
actions = { infected = "tag" }
[[rules]]
name = "dropped"
match = { recipient_domain = ["discard.example"] }
actions = { infected = "discard" }
[[rules]]
name = "msa"
match = { daemon_name = ["ORIGINATING"] }
actions = { infected = "reject" }
[[rules]]
name = "inside"
match = { if_addr = ["192.0.2.25"] }
actions = { infected = "tempfail" }
[reply]
infected = "Virus %v refused"
`;

test('quarantine, tag, discard at end of message; clean mail gets X-Virus-Scanned', async () => {
  const m = await milterFor(CONFIG);
  const c = await client(m);
  const q = await send(c, { body: `${EICAR}\r\n` });
  assert.equal(q.final.cmd, SMFIR.CONTINUE);
  assert.deepEqual(mods(q), [
    'i 0 X-Virus-Status|Infected (Eicar-Test-Signature)|',
    'i 0 X-Virus-Scanned|midstream t on unit.test|',
    'q midstream: infected Eicar-Test-Signature (1)|',
  ]);
  const t = await send(c, { body: `${EICAR}\r\n`, rcpt: 'x@tag.example' });
  assert.equal(t.final.cmd, SMFIR.CONTINUE);
  assert.deepEqual(mods(t), [
    'i 0 X-Virus-Status|Infected (Eicar-Test-Signature)|',
    'i 0 X-Virus-Scanned|midstream t on unit.test|',
    'm 1 Subject|***VIRUS*** hello|',
  ]);
  const d = await send(c, { body: `${EICAR}\r\n`, rcpt: 'x@discard.example' });
  assert.equal(d.final.cmd, SMFIR.DISCARD);
  assert.deepEqual(mods(d), []);
  const ok = await send(c, { body: 'hello\r\n' });
  assert.equal(ok.final.cmd, SMFIR.CONTINUE);
  assert.deepEqual(mods(ok), ['i 0 X-Virus-Scanned|midstream t on unit.test|']);
  const lines = logs.filter((l) => l.includes('"event":"message"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const last4 = lines.slice(-4);
  assert.deepEqual(last4.map((l) => l.action), ['quarantine', 'tag', 'discard', 'accept']);
  assert.equal(last4[2]!.level, 'warn', 'discard is logged loudly');
});

test('rules by {daemon_name} and {if_addr}/{daemon_addr}; the template is the reply', async () => {
  const m = await milterFor(CONFIG);
  const c = await client(m);
  const r = await send(c, { body: `${EICAR}\r\n`, macros: ['{daemon_name}', 'ORIGINATING'] });
  assert.equal(r.final.cmd, SMFIR.REPLYCODE);
  assert.equal(replyCodeText(r.final), '550 5.7.1 Virus Eicar-Test-Signature refused');
  const c2 = await client(m);
  const s = await send(c2, { body: `${EICAR}\r\n`, macros: ['{daemon_name}', 'MTA', '{if_addr}', '192.0.2.25'] });
  assert.equal(replyCodeText(s.final), '451 4.7.1 Virus Eicar-Test-Signature refused', 'one template, each action its code');
  const c3 = await client(m);
  const p = await send(c3, { body: `${EICAR}\r\n`, macros: ['{daemon_addr}', '192.0.2.25'] });
  assert.match(replyCodeText(p.final), /^451 /, 'Postfix names it {daemon_addr}');
});

test('forged X-Virus-* removed by index (highest first) or renamed; never delivered unedited', async () => {
  const forged: [string, string][] = [['X-Virus-Status', 'Clean'], ['From', 'a@b'], ['x-virus-status', 'Clean too'], ['X-Virus-Scanned', 'by a friend'], ['Subject', 's']];
  const m = await milterFor('');
  const r = await send(await client(m), { headers: forged, body: 'hello\r\n' });
  assert.equal(r.final.cmd, SMFIR.CONTINUE);
  assert.deepEqual(mods(r), ['m 2 X-Virus-Status||', 'm 1 X-Virus-Status||', 'm 1 X-Virus-Scanned||', 'i 0 X-Virus-Scanned|midstream t on unit.test|']);
  const ren = await milterFor('', { ...H, incoming: 'rename' });
  const r2 = await send(await client(ren), { headers: forged, body: 'hello\r\n' });
  assert.deepEqual(mods(r2), [
    'm 2 X-Virus-Status||',
    'm 1 X-Virus-Status||',
    'm 1 X-Virus-Scanned||',
    'i 0 X-Upstream-Virus-Scanned|by a friend|',
    'i 0 X-Upstream-Virus-Status|Clean too|',
    'i 0 X-Upstream-Virus-Status|Clean|',
    'i 0 X-Virus-Scanned|midstream t on unit.test|',
  ]);
  // An MTA that offers no CHGHDRS: the forged field cannot go, so the message is deferred.
  const noChg = await send(await client(m, SMFIF.ADDHDRS | SMFIF.QUARANTINE), { headers: forged, body: 'hello\r\n' });
  assert.match(replyCodeText(noChg.final), /^451 4\.7\.1 /);
  // ... and without QUARANTINE a quarantine verdict is deferred too; our own header alone is just skipped.
  const q = await milterFor(CONFIG);
  const noQ = await send(await client(q, SMFIF.ADDHDRS | SMFIF.CHGHDRS), { body: `${EICAR}\r\n` });
  assert.match(replyCodeText(noQ.final), /^451 4\.7\.1 /);
  const plain = await send(await client(q, 0), { body: 'fine\r\n' });
  assert.equal(plain.final.cmd, SMFIR.CONTINUE);
  assert.deepEqual(mods(plain), []);
  assert.ok(logs.some((l) => l.includes('milter-actions-missing')));
});

test('after-filter milter: settled ticket edits applied, ticket removed; unknown ticket → TEMPFAIL; none → untouched', async () => {
  const tickets = new TicketBook();
  const af: AfterFilterMilter = await startAfterFilterMilter({ listen: 'inet:0@127.0.0.1', tickets, logger });
  cleanups.push(() => af.close());
  const c = await MilterClient.connect(af.address);
  cleanups.push(() => c.close());
  const neg = await c.negotiate(6, 0x1ff, 0x1fffff);
  assert.equal(neg.actions, SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.QUARANTINE);
  const [id] = tickets.open();
  tickets.settle(id, editsFor({ kind: 'infected', name: 'Eicar-Test-Signature', where: '1', engine: 'builtin' }, 'quarantine', H, false));
  c.send('L', Buffer.from(`X-Midstream-Ticket\0${id}\0`));
  c.send('L', Buffer.from('Subject\0hello\0'));
  const r = await c.eob();
  assert.equal(r.final.cmd, SMFIR.CONTINUE);
  assert.deepEqual(mods(r), ['m 1 X-Midstream-Ticket||', 'i 0 X-Virus-Status|Infected (Eicar-Test-Signature)|', 'q midstream: infected Eicar-Test-Signature (1)|']);
  assert.equal(tickets.close(id), true, 'claimed');

  c.send('L', Buffer.from(`X-Midstream-Ticket\0${'f'.repeat(32)}\0`));
  assert.equal((await c.eob()).final.cmd, SMFIR.TEMPFAIL, 'a ticket we never issued');
  c.send('L', Buffer.from('Subject\0no ticket\0'));
  const none = await c.eob();
  assert.equal(none.final.cmd, SMFIR.CONTINUE);
  assert.equal(none.mods.length, 0);
  const [unsettled] = tickets.open();
  c.send('L', Buffer.from(`X-Midstream-Ticket\0${unsettled}\0`));
  assert.equal((await c.eob()).final.cmd, SMFIR.TEMPFAIL, 'opened but never settled: the verdict was not filed');
  assert.equal(tickets.close(unsettled), false);
});
