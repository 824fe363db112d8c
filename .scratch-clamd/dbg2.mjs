import net from 'node:net';
// Peer reads 1 chunk, replies and closes with unread data (RST). Client writes in a tight loop.
const srv = net.createServer((s) => { s.pause(); setTimeout(() => { s.write('BYE\0'); s.destroy(); }, 30); });
await new Promise(r => srv.listen(0, '127.0.0.1', r));
const sock = net.connect(srv.address().port, '127.0.0.1');
await new Promise(r => sock.once('connect', r));
sock._writableState.autoDestroy = false; sock._readableState.autoDestroy = false;
sock.on('data', d => console.log('data', JSON.stringify(d.toString())));
sock.on('error', e => console.log('error', e.code, e.syscall, 'destroyed', sock.destroyed, new Error().stack.split('\n').slice(2,6).join(' | ')));
sock.on('close', () => { console.log('close'); srv.close(); });
sock.on('end', () => console.log('end'));
const buf = Buffer.alloc(65536);
const t0 = Date.now();
while (Date.now() - t0 < 60) { sock.write(buf); await new Promise(r => setTimeout(r, 0)); if (sock.destroyed) break; }
console.log('loop done', sock.destroyed);
