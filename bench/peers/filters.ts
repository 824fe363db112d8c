// Configuration and start-up of the shared clamd and the peer filters (Debian packages):
// clamsmtp (before-queue proxy), clamav-milter, amavisd-new (before-queue proxy), each with
// its own config file in the run's temp directory. All are started in the foreground by this
// harness and ended by PID.
import { mkdirSync, writeFileSync, readFileSync, chmodSync, chownSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ProcessRegistry, waitPort, sleep, type Tracked } from '../lib/proc.js';
import { EICAR } from '../lib/messages.js';

export interface Clamd { tracked: Tracked; port: number; socket: string; dbDir: string; ndb: string; hdb: string }

/** Test database: EICAR as an .ndb body signature, clam.exe by MD5 in an .hdb. */
export function writeSignatures(dbDir: string): { ndb: string; hdb: string } {
  mkdirSync(dbDir, { recursive: true });
  const ndb = join(dbDir, 'bench.ndb');
  const hdb = join(dbDir, 'bench.hdb');
  writeFileSync(ndb, `Bench.EICAR:0:*:${Buffer.from(EICAR, 'latin1').toString('hex')}\n`);
  const exe = readFileSync('/usr/share/clamav-testfiles/clam.exe');
  writeFileSync(hdb, `${createHash('md5').update(exe).digest('hex')}:${exe.length}:Bench.ClamExe\n`);
  return { ndb, hdb };
}

async function clamdPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.setTimeout(2000, () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(false));
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (d) => { got += d.toString(); if (got.includes('PONG')) { s.destroy(); resolve(true); } });
  });
}

export async function startClamd(reg: ProcessRegistry, dir: string, port: number): Promise<Clamd> {
  const dbDir = join(dir, 'db');
  const { ndb, hdb } = writeSignatures(dbDir);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const socket = join(dir, 'clamd.sock');
  const conf = join(dir, 'clamd.conf');
  writeFileSync(conf, [
    `DatabaseDirectory ${dbDir}`, 'Foreground yes', 'User root',
    `TCPSocket ${port}`, 'TCPAddr 127.0.0.1', `LocalSocket ${socket}`, 'LocalSocketMode 666',
    `PidFile ${join(dir, 'clamd.pid')}`, `LogFile ${join(dir, 'clamd.log')}`, `TemporaryDirectory ${tmp}`,
    'MaxThreads 24', 'MaxQueue 400', 'MaxConnectionQueueLength 400', 'ReadTimeout 300', 'CommandReadTimeout 60',
    'StreamMaxLength 100M', 'MaxScanSize 400M', 'MaxFileSize 100M', 'SelfCheck 0', '',
  ].join('\n'));
  const tracked = reg.spawn('clamd', '/usr/sbin/clamd', ['-c', conf, '--foreground'], { logFile: join(dir, 'clamd.out') });
  const deadline = Date.now() + 60000;
  while (!(await clamdPing(port))) {
    if (Date.now() > deadline || tracked.child?.exitCode !== null) throw new Error(`clamd did not answer PING: ${readFileSync(join(dir, 'clamd.out'), 'utf8').slice(-1000)}`);
    await sleep(100);
  }
  return { tracked, port, socket, dbDir, ndb, hdb };
}

export interface Filter { name: string; tracked: Tracked; port: number; tempDir: string | null; pidRoots: () => number[] }

export async function startClamsmtp(reg: ProcessRegistry, dir: string, port: number, afterPort: number, clamd: Clamd): Promise<Filter> {
  mkdirSync(dir, { recursive: true });
  const tempDir = join(dir, 'spool');
  mkdirSync(tempDir, { recursive: true });
  const conf = join(dir, 'clamsmtpd.conf');
  writeFileSync(conf, [
    `OutAddress: 127.0.0.1:${afterPort}`, `Listen: 127.0.0.1:${port}`, `ClamAddress: ${clamd.socket}`,
    `TempDirectory: ${tempDir}`, `PidFile: ${join(dir, 'clamsmtpd.pid')}`, 'Action: drop',
    'MaxConnections: 512', 'TimeOut: 180', 'KeepAlives: 0', 'XClient: off', '',
  ].join('\n'));
  // -d LEVEL keeps it in the foreground (and logs to stderr at that level)
  const tracked = reg.spawn('clamsmtpd', '/usr/sbin/clamsmtpd', ['-f', conf, '-d', '1'], { logFile: join(dir, 'clamsmtpd.log') });
  // clamsmtp connects to the after-filter smtpd per client, which only exists once Postfix runs
  await waitPort(port, 20000);
  return { name: 'clamsmtp', tracked, port, tempDir, pidRoots: () => [tracked.pid] };
}

export async function startClamavMilter(reg: ProcessRegistry, dir: string, port: number, clamd: Clamd): Promise<Filter> {
  mkdirSync(dir, { recursive: true });
  const tempDir = join(dir, 'tmp');
  mkdirSync(tempDir, { recursive: true });
  const conf = join(dir, 'clamav-milter.conf');
  writeFileSync(conf, [
    `MilterSocket inet:${port}@127.0.0.1`, 'Foreground yes', `PidFile ${join(dir, 'clamav-milter.pid')}`,
    `ClamdSocket unix:${clamd.socket}`, 'OnClean Accept', 'OnInfected Reject', 'OnFail Defer',
    'AddHeader Replace', 'LogSyslog false', `LogFile ${join(dir, 'clamav-milter.log')}`, 'LogInfected Basic',
    'MaxFileSize 100M', 'ReadTimeout 120', `TemporaryDirectory ${tempDir}`, 'SupportMultipleRecipients false', '',
  ].join('\n'));
  const tracked = reg.spawn('clamav-milter', '/usr/sbin/clamav-milter', ['-c', conf], { logFile: join(dir, 'clamav-milter.out') });
  await waitPort(port, 20000);
  return { name: 'clamav-milter', tracked, port, tempDir, pidRoots: () => [tracked.pid] };
}

export async function startAmavisd(reg: ProcessRegistry, dir: string, port: number, afterPort: number, clamd: Clamd, maxServers: number): Promise<Filter> {
  const home = join(dir, 'home');
  const tempDir = join(home, 'tmp');
  for (const d of [home, tempDir, join(home, 'db'), join(home, 'var')]) mkdirSync(d, { recursive: true });
  const conf = join(dir, 'amavisd.conf');
  writeFileSync(conf, `use strict;
$MYHOME = '${home}';
$TEMPBASE = '${tempDir}';
$ENV{TMPDIR} = $TEMPBASE;
$db_home = '${home}/db';
$helpers_home = '${home}/var';
$pid_file = '${home}/amavisd.pid';
$lock_file = '${home}/amavisd.lock';
$daemon_user = 'amavis';
$daemon_group = 'amavis';
$mydomain = 'bench.test';
$myhostname = 'amavis.bench.test';
$max_servers = ${maxServers};
$max_requests = 1000;
$child_timeout = 300;
$inet_socket_bind = '127.0.0.1';
$inet_socket_port = ${port};
$unix_socketname = undef;
@inet_acl = qw(127.0.0.1);
$forward_method = 'smtp:[127.0.0.1]:${afterPort}';
$notify_method = $forward_method;
@local_domains_maps = (1);
@bypass_spam_checks_maps = (1);
@bypass_banned_checks_maps = (1);
@bypass_header_checks_maps = (1);
$final_virus_destiny = D_REJECT;
$final_banned_destiny = D_PASS;
$final_spam_destiny = D_PASS;
$final_bad_header_destiny = D_PASS;
$enable_dkim_verification = 0;
$enable_dkim_signing = 0;
$enable_db = 0;
$enable_global_cache = 0;
$enable_zmq = 0;
$QUARANTINEDIR = undef;
$virus_quarantine_method = undef;
$spam_quarantine_method = undef;
$banned_files_quarantine_method = undef;
$bad_header_quarantine_method = undef;
$virus_admin = undef;
$warnvirussender = 0;
$warnvirusrecip = 0;
$do_syslog = 0;
$logfile = '${home}/amavis.log';
$log_level = $ENV{BENCH_AMAVIS_LOGLEVEL} // 0;
$sa_spam_subject_tag = undef;
@av_scanners = (
  ['ClamAV-clamd', \\&ask_daemon, ["CONTSCAN {}\\n", "${clamd.socket}"],
   qr/\\bOK$/m, qr/\\bFOUND$/m, qr/^.*?: (?!Infected Archive)(.*) FOUND$/m ],
);
@av_scanners_backup = ();
1;
`);
  execFileSync('chown', ['-R', 'amavis:amavis', home]);
  chmodSync(home, 0o755);
  void chownSync;
  const tracked = reg.spawn('amavisd', '/usr/sbin/amavisd', ['-c', conf, 'foreground'], { logFile: join(dir, 'amavisd.out') });
  await waitPort(port, 120000, /^220 /m);
  return { name: 'amavisd-new', tracked, port, tempDir, pidRoots: () => [tracked.pid] };
}

export async function startPassthroughProc(reg: ProcessRegistry, root: string, dir: string, port: number, afterPort: number): Promise<Filter> {
  mkdirSync(dir, { recursive: true });
  const tracked = reg.spawn('passthrough', process.execPath, ['--import', 'tsx', join(root, 'bench', 'passthrough-proxy.ts'),
    '--listen', `127.0.0.1:${port}`, '--forward', `127.0.0.1:${afterPort}`], { logFile: join(dir, 'passthrough.log'), cwd: root });
  await waitPort(port, 30000, /^220 /m);
  return { name: 'pass-through', tracked, port, tempDir: null, pidRoots: () => [tracked.pid] };
}
