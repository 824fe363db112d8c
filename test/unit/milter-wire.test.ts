/** milter-wire: framing decoder (split invariance, malformed/oversized/zero-length), encoders, parsers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import {
  MilterDecoder,
  cstrings,
  encodeBatch,
  encodeOptneg,
  encodePacket,
  parseConnect,
  parseOptneg,
  splitNul,
  splitNulStrings,
  type Packet,
} from '../../milter/milter-wire.js';
import { MILTER_MAX_PACKET, SMFIC, SMFIC_NAME, SMFIP, SMFIP_NAME, SMFIR_NAME, commandName, flagNames } from '../../milter/milter-codes.js';

function sample(): Buffer {
  return Buffer.concat([
    encodePacket('O', encodeOptneg(6, 0x1ff, 0x1fffff)),
    encodePacket('D', Buffer.concat([Buffer.from('C'), cstrings('j', 'mta.test', '{daemon_name}', 'x')])),
    encodePacket('L', cstrings('Subject', 'hello\n\tworld')),
    encodePacket('B', Buffer.alloc(70000, 0x41)),
    encodePacket('N'),
    encodePacket('E'),
  ]);
}

function decodeAll(chunks: Buffer[]): Packet[] {
  const d = new MilterDecoder();
  const out: Packet[] = [];
  for (const c of chunks) {
    const r = d.push(c);
    assert.equal(r.error, undefined);
    out.push(...r.packets);
  }
  assert.equal(d.buffered, 0);
  return out;
}

const norm = (ps: Packet[]) => ps.map((p) => [p.cmd, p.data.toString('hex')]);

test('decoder: whole, byte-by-byte and random splits give identical packets', () => {
  const bytes = sample();
  const whole = decodeAll([bytes]);
  assert.deepEqual(whole.map((p) => p.cmd), ['O', 'D', 'L', 'B', 'N', 'E']);
  assert.equal(whole[3]!.data.length, 70000);
  assert.equal(whole[4]!.data.length, 0);
  const bytewise: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) bytewise.push(bytes.subarray(i, i + 1));
  assert.deepEqual(norm(decodeAll(bytewise)), norm(whole));
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let round = 0; round < 50; round++) {
    const parts: Buffer[] = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 8 : 9000));
      parts.push(bytes.subarray(i, i + n));
      i += n;
    }
    assert.deepEqual(norm(decodeAll(parts)), norm(whole), `round ${round}`);
  }
});

test('decoder: zero length is a latched peer fault', () => {
  const d = new MilterDecoder();
  const r = d.push(Buffer.concat([encodePacket('c'), Buffer.from([0, 0, 0, 0]), encodePacket('c')]));
  assert.equal(r.packets.length, 1, 'the packet before the fault is still delivered');
  assert.deepEqual(r.error, { code: 'milter-zero-length', length: 0 });
  const again = d.push(encodePacket('c'));
  assert.equal(again.packets.length, 0);
  assert.equal(again.error?.code, 'milter-zero-length');
});

test('decoder: oversize length fails at the length field, before any data arrives', () => {
  const d = new MilterDecoder();
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(MILTER_MAX_PACKET + 1);
  const r = d.push(hdr);
  assert.equal(r.error?.code, 'milter-oversize');
  assert.equal(r.error?.length, MILTER_MAX_PACKET + 1);
  assert.equal(d.buffered, 0);
  // 0xffffffff must not be read as negative or allocated
  const d2 = new MilterDecoder();
  assert.equal(d2.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x42])).error?.code, 'milter-oversize');
});

test('decoder: exactly the maximum is accepted', () => {
  const d = new MilterDecoder();
  const data = Buffer.alloc(MILTER_MAX_PACKET - 1, 7);
  const r = d.push(encodePacket('B', data));
  assert.equal(r.error, undefined);
  assert.equal(r.packets.length, 1);
  assert.equal(r.packets[0]!.data.length, MILTER_MAX_PACKET - 1);
});

test('decoder: a claimed large length holds only the bytes that arrived', () => {
  const d = new MilterDecoder();
  const hdr = Buffer.alloc(5);
  hdr.writeUInt32BE(MILTER_MAX_PACKET);
  hdr[4] = 0x42;
  const r = d.push(hdr);
  assert.equal(r.packets.length, 0);
  assert.equal(r.error, undefined);
  assert.equal(d.buffered, 1, 'only the command byte is held, nothing pre-allocated');
  d.push(Buffer.alloc(100));
  assert.equal(d.buffered, 101);
});

test('decoder: a custom smaller maximum', () => {
  const d = new MilterDecoder(10);
  assert.equal(d.push(encodePacket('B', Buffer.alloc(10))).error?.code, 'milter-oversize');
  const d2 = new MilterDecoder(10);
  assert.equal(d2.push(encodePacket('B', Buffer.alloc(9))).packets.length, 1);
});

test('encoder: length counts the command byte; batches concatenate', () => {
  const p = encodePacket('y', cstrings('550 5.7.1 no'));
  assert.equal(p.readUInt32BE(0), 1 + 13);
  assert.equal(String.fromCharCode(p[4]!), 'y');
  assert.equal(p.subarray(5).toString('latin1'), '550 5.7.1 no\0');
  assert.deepEqual(encodePacket('c'), Buffer.from([0, 0, 0, 1, 0x63]));
  const b = encodeBatch([{ cmd: 'h', data: cstrings('X', 'y') }, { cmd: 'c', data: Buffer.alloc(0) }]);
  assert.deepEqual(norm(new MilterDecoder().push(b).packets), [['h', Buffer.from('X\0y\0').toString('hex')], ['c', '']]);
});

test('optneg encode/parse round trip; short payload is null', () => {
  assert.deepEqual(parseOptneg(encodeOptneg(6, 0x1ff, 0x1fffff)), { version: 6, actions: 0x1ff, protocol: 0x1fffff });
  assert.deepEqual(parseOptneg(encodeOptneg(2, 0xffffffff, 0x80000000)), { version: 2, actions: 0xffffffff, protocol: 0x80000000 });
  assert.equal(parseOptneg(Buffer.alloc(11)), null);
});

test('splitNul: fields, trailing field without NUL, empty fields', () => {
  assert.deepEqual(splitNulStrings(cstrings('<a@b>', 'SIZE=10')), ['<a@b>', 'SIZE=10']);
  assert.deepEqual(splitNulStrings(Buffer.from('a\0b')), ['a', 'b']);
  assert.deepEqual(splitNulStrings(Buffer.from('\0\0')), ['', '']);
  assert.deepEqual(splitNul(Buffer.alloc(0)), []);
});

test('parseConnect: families 4, 6 (IPv6: prefix, brackets), L, U, truncated', () => {
  const port = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  };
  assert.deepEqual(parseConnect(Buffer.concat([cstrings('h.test'), Buffer.from('4'), port(2525), cstrings('192.0.2.1')])), {
    hostname: 'h.test', family: '4', port: 2525, address: '192.0.2.1',
  });
  assert.equal(parseConnect(Buffer.concat([cstrings('[x]'), Buffer.from('6'), port(25), cstrings('IPv6:::1')])).address, '::1');
  assert.equal(parseConnect(Buffer.concat([cstrings('x'), Buffer.from('6'), port(25), cstrings('[2001:db8::1]')])).address, '2001:db8::1');
  assert.deepEqual(parseConnect(Buffer.concat([cstrings('localhost'), Buffer.from('U')])), { hostname: 'localhost', family: 'U' });
  assert.equal(parseConnect(Buffer.concat([cstrings('l'), Buffer.from('L'), port(0), cstrings('/tmp/s')])).address, '/tmp/s');
  assert.deepEqual(parseConnect(Buffer.from('only-host')), { hostname: 'only-host', family: 'U' });
  assert.deepEqual(parseConnect(Buffer.concat([cstrings('h'), Buffer.from('4'), Buffer.from([1])])), { hostname: 'h', family: '4' });
});

test('codes: reverse-name maps and flag names for logs', () => {
  assert.equal(SMFIC_NAME[SMFIC.BODYEOB], 'BODYEOB');
  assert.equal(SMFIR_NAME['y'], 'REPLYCODE');
  assert.equal(SMFIP_NAME[String(SMFIP.NR_BODY)], 'NR_BODY');
  assert.equal(commandName('Z'), 'unknown(0x5a)');
  assert.deepEqual(flagNames(SMFIP.NOHELO | SMFIP.SKIP, SMFIP_NAME), ['NOHELO', 'SKIP']);
  assert.deepEqual(flagNames(0x80000000, SMFIP_NAME), ['0x80000000']);
});
