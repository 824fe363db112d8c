// docker/lab-wait.mjs — wait until the lab answers on the host: each SMTP port greets with
// 220 (Sendmail greets only once its milter connection is up), each POP3 port with +OK
// (midstream pop3 greets with Dovecot's greeting: both are up), and the sink's web view
// answers /healthz (or the path given, e.g. a midstream's /metrics). Plain JS so lab.sh can
// run it before anything is built.
//   node docker/lab-wait.mjs PORT... http:PORT[/PATH]... pop3:PORT...     (127.0.0.1; 3 minutes at most)
// Exit 0 when all answer; 1 naming those that did not.
import { connect } from 'node:net';
import { get } from 'node:http';

const until = Date.now() + 180_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Connect to 127.0.0.1:port and read the greeting until `verdict(text)` is true or false
 * (undefined: read on); no answer in 10 s or a socket error is false. */
function greeting(port, verdict) {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok) => (s.destroy(), resolve(ok));
    s.setTimeout(10_000, () => done(false));
    s.on('error', () => done(false));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const ok = verdict(buf);
      if (ok !== undefined) {
        s.end('QUIT\r\n');
        done(ok);
      }
    });
  });
}

const greets = (port) =>
  greeting(port, (buf) => {
    const m = /^(\d{3})[ ][^\n]*\n/m.exec(buf);
    return m ? m[1] === '220' : undefined;
  });
const pop3Greets = (port) => greeting(port, (buf) => (buf.includes('\n') ? buf.startsWith('+OK') : undefined));

function healthy(target) {
  const slash = target.indexOf('/');
  const port = Number(slash < 0 ? target : target.slice(0, slash));
  const path = slash < 0 ? '/healthz' : target.slice(slash);
  return new Promise((resolve) => {
    const r = get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    r.on('error', () => resolve(false));
    r.on('timeout', () => (r.destroy(), resolve(false)));
  });
}

let pending = process.argv.slice(2);
while (pending.length > 0) {
  const ok = await Promise.all(
    pending.map((a) => (a.startsWith('http:') ? healthy(a.slice(5)) : a.startsWith('pop3:') ? pop3Greets(Number(a.slice(5))) : greets(Number(a)))),
  );
  pending = pending.filter((_, i) => !ok[i]);
  if (pending.length === 0) break;
  if (Date.now() > until) {
    console.error(`lab: no answer on 127.0.0.1 ${pending.join(' ')}`);
    process.exit(1);
  }
  await sleep(500);
}
