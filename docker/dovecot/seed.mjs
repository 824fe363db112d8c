// docker/dovecot/seed.mjs — the lab mailbox's sample mails, written into a maildir `cur/`
// directory: 1 clean (text + a small text attachment), 2 EICAR attached, 3 EICAR in a zip,
// 4 a banned .exe name. Fixed file names: the same messages, numbers and UIDLs at every
// start. Plain JS (no build step), run by docker/dovecot/entrypoint.sh.
//   node seed.mjs MAILDIR/cur
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');

function crc32(b) {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A zip with one stored member (local header, data, central directory, end record). */
function zipStored(name, data) {
  const n = Buffer.from(name, 'latin1');
  const crc = crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(10, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(n.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(10, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(n.length, 28);
  const cdOffset = local.length + n.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + n.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, n, data, central, n, end]);
}

function b64lines(b) {
  return b.toString('base64').replace(/(.{76})/g, '$1\r\n').replace(/\r\n$/, '');
}

function mail(n, kind, name, type, content) {
  const b = `lab-pop3-${n}`;
  return Buffer.from(
    `Date: Thu, 03 Dec 2026 10:00:0${n} +0000\r\nFrom: sender@lab.example\r\nTo: lab@lab.example\r\n` +
      `Subject: lab pop3 ${kind}\r\nMessage-ID: <pop3-${kind}@lab.example>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/mixed; boundary="${b}"\r\n\r\n` +
      `--${b}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello from the midstream lab (${kind}).\r\n` +
      `--${b}\r\nContent-Type: ${type}; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${b64lines(content)}\r\n--${b}--\r\n`,
    'latin1',
  );
}

const dir = process.argv[2];
if (!dir) throw new Error('usage: node seed.mjs MAILDIR/cur');
const mails = [
  mail(1, 'clean', 'notes.txt', 'text/plain', Buffer.from('meeting notes\r\n.a line that starts with a dot\r\n', 'latin1')),
  mail(2, 'eicar', 'eicar.txt', 'application/octet-stream', EICAR),
  mail(3, 'eicar-zip', 'docs.zip', 'application/zip', zipStored('a/eicar.txt', EICAR)),
  mail(4, 'banned', 'invoice.pdf.exe', 'application/octet-stream', Buffer.from('not really a program', 'latin1')),
];
mails.forEach((m, i) => writeFileSync(join(dir, `${1700000000 + i}.M${i}P1.lab:2,`), m));
