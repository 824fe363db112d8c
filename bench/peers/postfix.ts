// A private Postfix instance for the benchmark, in its own temp directory, relaying
// everything to the sink. One instance carries every Postfix configuration as its own
// front listener (direct, each before-queue filter, each milter) plus one shared
// after-filter smtpd; configurations run one at a time, so per-configuration CPU is the
// whole instance's CPU during that configuration's run.
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ProcessRegistry, waitPort, sleep, alive } from '../lib/proc.js';

export interface FrontSpec {
  name: string;
  port: number;
  /** before-queue proxy filter port */
  proxyFilter?: number;
  /** milter address, e.g. inet:127.0.0.1:PORT */
  milter?: string;
}

export interface PostfixInstance {
  dir: string;
  masterPid: number;
  afterPort: number;
  maillog: string;
  queueCount(): number;
}

const BASE_SERVICES = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

function pf(dir: string, ...args: string[]): string {
  // Postfix prints nothing without syslog unless it has a tty: run under script(1)
  const cmd = ['/usr/sbin/postfix', '-c', dir, ...args].join(' ');
  return execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function startPostfix(reg: ProcessRegistry, dir: string, sinkPort: number, afterPort: number, fronts: FrontSpec[]): Promise<PostfixInstance> {
  mkdirSync(join(dir, 'queue'), { recursive: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  const maillog = join(dir, 'maillog');
  const main = `
compatibility_level = 3.6
config_directory = ${dir}
queue_directory = ${dir}/queue
data_directory = ${dir}/data
maillog_file = ${maillog}
maillog_file_prefixes = /var, /dev/stdout, ${dir}
syslog_name = bench-postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mta.bench.test
mydestination =
local_recipient_maps =
relayhost = [127.0.0.1]:${sinkPort}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
default_process_limit = 400
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
message_size_limit = 60000000
in_flow_delay = 0s
smtp_destination_concurrency_limit = 20
smtp_connection_cache_on_demand = yes
milter_default_action = tempfail
milter_protocol = 6
biff = no
`;
  writeFileSync(join(dir, 'main.cf'), main);
  let master = BASE_SERVICES;
  for (const f of fronts) {
    master += `127.0.0.1:${f.port} inet n - n - - smtpd\n  -o syslog_name=bench-postfix/${f.name}\n`;
    if (f.proxyFilter) master += `  -o smtpd_proxy_filter=127.0.0.1:${f.proxyFilter}\n  -o smtpd_proxy_timeout=100s\n`;
    if (f.milter) master += `  -o smtpd_milters=${f.milter}\n`;
  }
  master += `127.0.0.1:${afterPort} inet n - n - - smtpd
  -o syslog_name=bench-postfix/after-filter
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
  -o smtpd_client_restrictions=
  -o smtpd_helo_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_data_restrictions=
  -o mynetworks=127.0.0.0/8
  -o receive_override_options=no_unknown_recipient_checks
`;
  writeFileSync(join(dir, 'master.cf'), master);
  try { pf(dir, 'set-permissions'); } catch { /* creates what's needed even when it complains */ }
  try { pf(dir, 'check'); } catch (e) { /* check output below */ void e; }
  try { pf(dir, 'start'); } catch (e) {
    const log = existsSync(maillog) ? readFileSync(maillog, 'utf8').slice(-2000) : '';
    throw new Error(`postfix start failed: ${(e as { stdout?: string }).stdout ?? ''} ${log}`);
  }
  const pidFile = join(dir, 'queue', 'pid', 'master.pid');
  let masterPid = 0;
  for (let i = 0; i < 100 && !masterPid; i++) {
    try { masterPid = Number(readFileSync(pidFile, 'utf8').trim()); } catch { await sleep(100); }
  }
  if (!masterPid) throw new Error('postfix master pid not found');
  reg.adopt('postfix-master', masterPid, () => {
    try { pf(dir, 'stop'); } catch { /* fall back to the PID */ }
  });
  for (const f of fronts) await waitPort(f.port, 30000, /^220 /m);
  await waitPort(afterPort, 30000, /^220 /m);
  return {
    dir, masterPid, afterPort, maillog,
    queueCount: () => {
      try {
        return Number(execFileSync('sh', ['-c', `find ${dir}/queue/incoming ${dir}/queue/active ${dir}/queue/deferred ${dir}/queue/maildrop -type f | wc -l`], { encoding: 'utf8' }).trim());
      } catch { return -1; }
    },
  };
}

export function postfixAlive(p: PostfixInstance): boolean { return alive(p.masterPid); }
