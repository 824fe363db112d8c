// A private Sendmail 8.17 instance (unpacked Debian packages, see scripts/install-deps.sh),
// relaying everything to the sink, optionally with one milter. Runs in its own UTS namespace
// (hostname with a dot, or it sleeps 60 s at start) in the foreground (-bD); ended by PID.
import { mkdirSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { ProcessRegistry, waitPort, type Tracked } from '../lib/proc.js';

export const SENDMAIL_ROOT = join(process.env.MIDSTREAM_CACHE ?? join(homedir(), '.cache', 'midstream'), 'sendmail');

export function sendmailAvailable(): boolean {
  return existsSync(join(SENDMAIL_ROOT, 'usr/libexec/sendmail/sendmail')) && existsSync(join(SENDMAIL_ROOT, 'usr/share/sendmail/cf/m4/cf.m4'));
}

export interface SendmailInstance { tracked: Tracked; port: number; dir: string }

export async function startSendmail(reg: ProcessRegistry, dir: string, port: number, sinkPort: number, milterPort?: number): Promise<SendmailInstance> {
  mkdirSync(join(dir, 'queue'), { recursive: true });
  chmodSync(join(dir, 'queue'), 0o700);
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'aliases'), 'postmaster: root\n');
  writeFileSync(join(dir, 'service.switch'), 'hosts files\naliases files\n');
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 mta.test localhost\n');
  const cfDir = join(SENDMAIL_ROOT, 'usr/share/sendmail/cf');
  const q = (s: string) => '`' + s + "'";
  let mc = `divert(-1)\ndivert(0)dnl
VERSIONID(${q('midstream bench')})dnl
OSTYPE(${q('linux')})dnl
define(${q('QUEUE_DIR')}, ${q(join(dir, 'queue'))})dnl
define(${q('confPID_FILE')}, ${q(join(dir, 'sendmail.pid'))})dnl
define(${q('ALIAS_FILE')}, ${q(join(dir, 'aliases'))})dnl
define(${q('confSERVICE_SWITCH_FILE')}, ${q(join(dir, 'service.switch'))})dnl
define(${q('confHOSTS_FILE')}, ${q(join(dir, 'hosts'))})dnl
define(${q('SMART_HOST')}, ${q('[127.0.0.1]')})dnl
define(${q('RELAY_MAILER_ARGS')}, ${q(`TCP $h ${sinkPort}`)})dnl
define(${q('ESMTP_MAILER_ARGS')}, ${q(`TCP $h ${sinkPort}`)})dnl
define(${q('confDONT_PROBE_INTERFACES')}, ${q('True')})dnl
define(${q('confDONT_BLAME_SENDMAIL')}, ${q('TrustStickyBit')})dnl
define(${q('confQUEUE_LA')}, ${q('1000')})dnl
define(${q('confREFUSE_LA')}, ${q('2000')})dnl
define(${q('confDELAY_LA')}, ${q('0')})dnl
define(${q('confCONNECTION_RATE_THROTTLE')}, ${q('0')})dnl
define(${q('confMAX_DAEMON_CHILDREN')}, ${q('0')})dnl
define(${q('confMAX_MESSAGE_SIZE')}, ${q('60000000')})dnl
define(${q('confDOMAIN_NAME')}, ${q('mta.test')})dnl
define(${q('confTO_IDENT')}, ${q('0s')})dnl
define(${q('confPRIVACY_FLAGS')}, ${q('authwarnings')})dnl
FEATURE(${q('nocanonify')})dnl
FEATURE(${q('no_default_msa')})dnl
FEATURE(${q('promiscuous_relay')})dnl
FEATURE(${q('accept_unresolvable_domains')})dnl
DAEMON_OPTIONS(${q(`Port=${port}, Addr=127.0.0.1, Name=MTA`)})dnl
`;
  if (milterPort) {
    mc += `define(${q('BENCH_MILTER')}, ${q(`S=inet:${milterPort}@127.0.0.1, F=T, T=S:10s;R:60s;E:5m`)})dnl
INPUT_MAIL_FILTER(${q('bench')}, defn(${q('BENCH_MILTER')}))dnl
`;
  }
  mc += `MAILER(${q('smtp')})dnl\n`;
  const mcFile = join(dir, 'bench.mc'), cfFile = join(dir, 'bench.cf');
  writeFileSync(mcFile, mc);
  const cf = execFileSync('m4', [`-D_CF_DIR_=${cfDir}/`, join(cfDir, 'm4/cf.m4'), mcFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  writeFileSync(cfFile, cf);
  const bin = join(SENDMAIL_ROOT, 'usr/libexec/sendmail/sendmail');
  // newaliases too must run where the hostname has a dot (else it sleeps 60 s)
  try { execFileSync('unshare', ['-u', 'sh', '-c', `hostname mta.test && exec ${bin} -C ${cfFile} -bi`], { stdio: 'ignore', timeout: 30000 }); } catch { /* aliases db optional for relaying */ }
  const tracked = reg.spawn(`sendmail:${port}`, 'unshare', ['-u', 'sh', '-c', `hostname mta.test && exec ${bin} -C ${cfFile} -bD -O LogLevel=0`],
    { logFile: join(dir, 'sendmail.out') });
  await waitPort(port, 90000, /^220 /m);
  return { tracked, port, dir };
}
