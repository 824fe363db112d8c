import { startProxy } from './dist/src/smtp/proxy-server.js';
import { createStubEngine } from './dist/test/helpers/stub-engine.js';
import { startSink } from './dist/test/helpers/sink.js';
import { createLogger } from './dist/src/log/logger.js';
import { TestSmtpClient } from './dist/test/helpers/smtp-client.js';
import { fork } from 'node:child_process';
if (process.argv[2] === 'client') {
  const port = Number(process.argv[3]);
  const line = Buffer.from('xx' + 'abcdefghij'.repeat(7) + '0123456\r\n');
  const chunk = Buffer.concat(Array.from({length: 800}, () => line));
  const c = await TestSmtpClient.connect(port);
  await c.read(); await c.cmd('EHLO x'); await c.cmd('MAIL FROM:<a@x>'); await c.cmd('RCPT TO:<b@x>'); await c.cmd('DATA');
  function* gen() { yield Buffer.from('Subject: big\r\n\r\n'); for (let i = 0; i < 1640; i++) yield chunk; yield Buffer.from('.\r\n'); }
  await c.streamData(gen());
  console.log((await c.read()).text);
  await c.quit(); process.exit(0);
}
const sinkProc = null;
const sink = await startSink({ storeData: false });
const engine = createStubEngine();
let n = 0, total = 0; const sizes = new Map();
const orig = engine.begin.bind(engine);
engine.begin = (e) => { const s = orig(e); const p = s.push.bind(s); s.push = (c) => { n++; total += c.length; const k = 2 ** Math.ceil(Math.log2(c.length)); sizes.set(k, (sizes.get(k) || 0) + 1); return p(c); }; return s; };
const proxy = await startProxy({ listen: '127.0.0.1:0', forward: `127.0.0.1:${sink.port}`, engine, logger: createLogger({ level: 'warn' }) });
const child = fork(new URL(import.meta.url).pathname, ['client', proxy.address.split(':')[1]]);
await new Promise(r => child.on('exit', r));
console.log('pushes', n, 'total', total, [...sizes].sort((a,b)=>a[0]-b[0]));
await proxy.close(); await sink.close();
