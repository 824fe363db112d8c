/**
 * milter-miltertest: Debian's `miltertest` (libmilter's own MTA simulator) against our
 * milter server in this process with the real core. Lua scripts are written into a
 * temp dir. miltertest exits 1 *without output* on an uncaught Lua error, so every
 * script echoes each step and a check() helper prints FAIL before raising; the test
 * asserts exit 0, the absence of FAIL and the expected RESULT lines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMilter, type MilterServer } from '../../milter/milter-server.js';
import { createEngine, type Engine } from '../../src/core/index.js';
import { createLogger } from '../../src/log/logger.js';

let dir: string;
let engine: Engine;
let inet: MilterServer;
let unix: MilterServer;
let withHeaders: MilterServer;
const logs: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'midstream-miltertest-'));
  engine = await createEngine();
  const logger = createLogger({ level: 'info', write: (l) => logs.push(l) });
  inet = await startMilter({ listen: 'inet:0@127.0.0.1', engine, logger });
  unix = await startMilter({ listen: `unix:${join(dir, 'milter.sock')}`, engine, logger });
  withHeaders = await startMilter({ listen: 'inet:0@127.0.0.1', engine, logger, headers: { scanned: 'midstream test on mt.test', status: true, incoming: 'remove', subjectPrefix: '' } });
});

after(async () => {
  await inet?.close();
  await unix?.close();
  await withHeaders?.close();
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const PRELUDE = String.raw`
EICAR = [[X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*]]
REJECT_TEXT = "550 5.7.1 Message rejected: virus found: Eicar-Test-Signature"
function check(cond, what)
  if not cond then
    mt.echo("FAIL " .. what)
    error(what)
  end
  mt.echo("ok " .. what)
end
function step(what, err)
  if err ~= nil then
    mt.echo("FAIL " .. what .. ": " .. tostring(err))
    error(what)
  end
end
function open()
  mt.echo("connect " .. SOCKET)
  local conn = mt.connect(SOCKET, 10, 0.2)
  check(conn ~= nil, "connect")
  step("negotiate", mt.negotiate(conn, nil, nil, nil))
  -- A step the milter declined raises an error in miltertest: look before each one.
  if not mt.test_option(conn, SMFIP_NOCONNECT) then step("conninfo", mt.conninfo(conn, "client.test", "127.0.0.1")) end
  if not mt.test_option(conn, SMFIP_NOHELO) then step("helo", mt.helo(conn, "client.test")) end
  return conn
end
function envelope(conn, from)
  step("mailfrom", mt.mailfrom(conn, from))
  step("rcptto", mt.rcptto(conn, "<rcpt@example.test>"))
  if not mt.test_option(conn, SMFIP_NODATA) then step("data", mt.data(conn)) end
end
function headers(conn, list)
  for i = 1, #list, 2 do step("header " .. list[i], mt.header(conn, list[i], list[i + 1])) end
  step("eoh", mt.eoh(conn))
end
`;

async function miltertest(name: string, socket: string, body: string): Promise<string> {
  const file = join(dir, `${name}.lua`);
  await writeFile(file, PRELUDE + body + '\nmt.echo("DONE")\n');
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
    execFile('miltertest', ['-D', `SOCKET=${socket}`, '-s', file], { timeout: 60_000 }, (err, stdout, stderr) => {
      const c = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      res({ code: c, stdout, stderr });
    });
  });
  const out = stdout + stderr;
  assert.equal(code, 0, `miltertest ${name} exited ${code}:\n${out}`);
  assert.doesNotMatch(out, /^FAIL/m, out);
  assert.match(out, /^DONE$/m, out);
  return out;
}

test('miltertest: EICAR is rejected at end of message with 550 5.7.1', async () => {
  const out = await miltertest('eicar', inet.address, String.raw`
local conn = open()
envelope(conn, "<sender@example.test>")
headers(conn, {"From", "sender@example.test", "Subject", "test virus"})
step("body", mt.bodystring(conn, EICAR .. "\r\n"))
step("eom", mt.eom(conn))
check(mt.getreply(conn) == SMFIR_REPLYCODE, "eom reply is REPLYCODE")
check(mt.eom_check(conn, MT_SMTPREPLY, REJECT_TEXT), "reply text")
mt.echo("RESULT eicar rejected")
mt.disconnect(conn)
`);
  assert.match(out, /^RESULT eicar rejected$/m);
  assert.ok(logs.some((l) => l.includes('"event":"message"') && l.includes('Eicar-Test-Signature')));
});

test('miltertest: clean mail is accepted (twice on one connection, over a unix socket)', async () => {
  const out = await miltertest('clean', unix.address, String.raw`
local conn = open()
for i = 1, 2 do
  envelope(conn, "<sender" .. i .. "@example.test>")
  headers(conn, {"From", "sender@example.test", "Subject", "folded\n\tsubject"})
  step("body", mt.bodystring(conn, "Hello,\r\nthis is clean mail " .. i .. ".\r\n"))
  check(mt.getreply(conn) == SMFIR_CONTINUE, "body reply CONTINUE")
  step("eom", mt.eom(conn))
  check(mt.getreply(conn) == SMFIR_CONTINUE, "eom reply CONTINUE " .. i)
  check(not mt.eom_check(conn, MT_SMTPREPLY, REJECT_TEXT), "no SMTP reply " .. i)
  check(not mt.eom_check(conn, MT_HDRINSERT, "X-Virus-Status") and not mt.eom_check(conn, MT_HDRADD, "X-Virus-Status"), "no X-Virus-Status added when headers.status is off")
end
mt.echo("RESULT clean accepted")
mt.disconnect(conn)
`);
  assert.match(out, /^RESULT clean accepted$/m);
});

test('miltertest: [headers] status adds X-Virus-Scanned and X-Virus-Status to clean mail', async () => {
  const out = await miltertest('headers', withHeaders.address, String.raw`
local conn = open()
check(mt.test_action(conn, SMFIF_ADDHDRS), "ADDHDRS negotiated")
envelope(conn, "<sender@example.test>")
headers(conn, {"From", "sender@example.test"})
step("body", mt.bodystring(conn, "clean\r\n"))
step("eom", mt.eom(conn))
check(mt.getreply(conn) == SMFIR_CONTINUE, "eom CONTINUE")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Virus-Status", "Clean", 0), "X-Virus-Status: Clean inserted at the top")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Virus-Scanned", "midstream test on mt.test", 0), "X-Virus-Scanned inserted at the top")
mt.echo("RESULT headers added")
mt.disconnect(conn)
`);
  assert.match(out, /^RESULT headers added$/m);
});

test('miltertest: early reject mid-body — REPLYCODE at the chunk after the infected part, then SKIP', async () => {
  const out = await miltertest('early', inet.address, String.raw`
local conn = open()
check(mt.test_option(conn, SMFIP_SKIP), "SKIP negotiated")
envelope(conn, "<sender@example.test>")
headers(conn, {"From", "sender@example.test", "MIME-Version", "1.0", "Content-Type", "multipart/mixed; boundary=\"BB\""})
step("body 1", mt.bodystring(conn, "--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n--BB\r\n" ..
  "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"eicar.txt\"\r\n\r\n" .. EICAR .. "\r\n"))
check(mt.getreply(conn) == SMFIR_CONTINUE, "chunk 1 CONTINUE (part not finished yet)")
step("body 2", mt.bodystring(conn, "--BB\r\nContent-Type: text/plain\r\n\r\n" .. string.rep("x", 1000) .. "\r\n"))
check(mt.getreply(conn) == SMFIR_REPLYCODE, "chunk 2 REPLYCODE (verdict latched)")
step("body 3", mt.bodystring(conn, string.rep("y", 1000) .. "\r\n--BB--\r\n"))
check(mt.getreply(conn) == SMFIR_SKIP, "chunk 3 SKIP")
step("eom", mt.eom(conn))
check(mt.eom_check(conn, MT_SMTPREPLY, REJECT_TEXT), "eom repeats the reject")
mt.echo("RESULT early reject")
mt.disconnect(conn)
`);
  assert.match(out, /^RESULT early reject$/m);
  assert.ok(logs.some((l) => l.includes('"event":"message"') && l.includes('"early":true') && l.includes('"at":"BODY"')));
});

test('miltertest: ABORT (twice) mid-message and after EOM; later messages are judged on their own', async () => {
  const out = await miltertest('abort', inet.address, String.raw`
local conn = open()
envelope(conn, "<one@example.test>")
headers(conn, {"From", "one@example.test"})
step("body infected", mt.bodystring(conn, EICAR .. "\r\n"))
step("abort 1", mt.abort(conn))
step("abort 2", mt.abort(conn))
envelope(conn, "<two@example.test>")
headers(conn, {"From", "two@example.test"})
step("body clean", mt.bodystring(conn, "nothing to see\r\n"))
step("eom clean", mt.eom(conn))
check(mt.getreply(conn) == SMFIR_CONTINUE, "clean message after ABORT is accepted")
step("abort after eom", mt.abort(conn))
step("abort after eom again", mt.abort(conn))
envelope(conn, "<three@example.test>")
headers(conn, {"From", "three@example.test"})
step("body infected again", mt.bodystring(conn, EICAR .. "\r\n"))
step("eom infected", mt.eom(conn))
check(mt.eom_check(conn, MT_SMTPREPLY, REJECT_TEXT), "infected message after ABORTs is rejected")
mt.echo("RESULT abort handled")
mt.disconnect(conn)
`);
  assert.match(out, /^RESULT abort handled$/m);
});
