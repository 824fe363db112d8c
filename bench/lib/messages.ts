// Workload messages (deterministic): bodies are prepared once as dot-stuffed CRLF buffers
// ending in CRLF; the load generator prepends a small per-message header block with a
// unique X-Bench-Id so the sink can account for every message. Real-world shapes are built
// here too, by hand and deterministically: a .docx as Word writes it (a zip of deflated XML
// parts and media), a zip of mixed files, a PDF with FlateDecode streams, a mail with 20
// small attachments.
import { crc32, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

/** xorshift32: deterministic pseudo-random bytes */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

/** A PE-looking blob of `size` bytes: MZ header, then pseudo-random bytes (incompressible). */
export function randomExe(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  const r = prng(seed);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(r(), Math.min(i, size - 4));
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}

/**
 * A compressible PE-looking blob: repeated "instruction-like" records drawn from a small
 * vocabulary, with some random immediates, so gzip shrinks it to roughly a quarter — like
 * real executables.
 */
export function compressibleExe(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  const r = prng(seed);
  const vocab: Buffer[] = [];
  for (let i = 0; i < 64; i++) {
    const len = 3 + (r() % 12);
    const v = Buffer.alloc(len);
    for (let j = 0; j < len; j++) v[j] = r() & 0xff;
    vocab.push(v);
  }
  let o = 0;
  while (o < size) {
    const v = vocab[r() % vocab.length]!;
    o += v.copy(b, o);
    if (o < size && (r() & 7) === 0) { b[o++] = r() & 0xff; }
  }
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}

function b64lines(data: Buffer): string {
  const s = data.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 76) out.push(s.slice(i, i + 76));
  return out.join('\r\n');
}

function text(size: number, seed: number): string {
  const r = prng(seed);
  const words = ['the', 'mail', 'filter', 'stream', 'queue', 'report', 'meeting', 'budget', 'review', 'server',
    'proxy', 'today', 'please', 'attached', 'figures', 'quarter', 'results', 'thanks', 'regards', 'project'];
  const lines: string[] = [];
  let n = 0;
  while (n < size) {
    let line = '';
    while (line.length < 66) line += (line ? ' ' : '') + words[r() % words.length];
    lines.push(line);
    n += line.length + 2;
  }
  return lines.join('\r\n');
}

/** Dot-stuff a CRLF text and make sure it ends in CRLF. */
function finish(s: string): Buffer {
  let t = s.replace(/\r\n\./g, '\r\n..');
  if (t.startsWith('.')) t = '.' + t;
  if (!t.endsWith('\r\n')) t += '\r\n';
  return Buffer.from(t, 'latin1');
}

interface Attachment { name: string; type: string; data: Buffer }

function mime(subject: string, textPart: string, attach?: Attachment | Attachment[]): Buffer {
  const h = `From: bench <sender@bench.test>\r\nTo: rcpt <rcpt@sink.test>\r\nSubject: ${subject}\r\n` +
    `Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n`;
  if (!attach) return finish(h + 'Content-Type: text/plain; charset=us-ascii\r\n\r\n' + textPart);
  const bnd = '=_bench_boundary_0001';
  const parts = (Array.isArray(attach) ? attach : [attach]).map((a) =>
    `\r\n--${bnd}\r\nContent-Type: ${a.type}; name="${a.name}"\r\n` +
    `Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="${a.name}"\r\n\r\n` +
    b64lines(a.data));
  return finish(h + `Content-Type: multipart/mixed; boundary="${bnd}"\r\n\r\n` +
    `This is a multi-part message in MIME format.\r\n--${bnd}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n` +
    textPart + parts.join('') + `\r\n--${bnd}--\r\n`);
}

// ---- real-world attachment shapes ---------------------------------------------------------

/** A zip archive as Info-ZIP and Word write one: local headers, deflate (or stored when deflate does not help), central directory. */
export function zipArchive(files: { name: string; data: Buffer; store?: boolean }[]): Buffer {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  const time = 0x6000, date = 0x5821; // 2024-01-01 12:00
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const deflated = f.store ? null : deflateRawSync(f.data, { level: 6 });
    const method = deflated && deflated.length < f.data.length ? 8 : 0;
    const body = method === 8 ? deflated! : f.data;
    const crc = crc32(f.data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(0x0800, 6); lh.writeUInt16LE(method, 8);
    lh.writeUInt16LE(time, 10); lh.writeUInt16LE(date, 12); lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18); lh.writeUInt32LE(f.data.length, 22); lh.writeUInt16LE(name.length, 26); lh.writeUInt16LE(0, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(0x031e, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(method, 10); ch.writeUInt16LE(time, 12); ch.writeUInt16LE(date, 14); ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.length, 20); ch.writeUInt32LE(f.data.length, 24); ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE((0o100644 << 16) >>> 0, 38); ch.writeUInt32LE(off, 42);
    out.push(lh, name, body);
    central.push(ch, name);
    off += lh.length + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(files.length, 8); end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(off, 16);
  return Buffer.concat([...out, cd, end]);
}

/** Bytes that look like a JPEG (SOI, JFIF APP0, then entropy-coded-like data: incompressible) ending in EOI. */
function jpegLike(size: number, seed: number): Buffer {
  const b = randomExe(size, seed);
  Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex').copy(b, 0);
  b[size - 2] = 0xff; b[size - 1] = 0xd9;
  return b;
}

/** A PNG-like image: signature, IHDR, one zlib-compressed IDAT of a noisy gradient, IEND. */
function pngLike(w: number, h: number, seed: number): Buffer {
  const r = prng(seed);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w * 3; x++) raw[y * (w * 3 + 1) + 1 + x] = ((x + y) & 0xff) ^ (r() & 0x0f);
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** WordprocessingML paragraphs of prose: the bulk of a document.xml. */
function wordXml(paragraphs: number, seed: number): Buffer {
  const r = prng(seed);
  const ps: string[] = [];
  for (let i = 0; i < paragraphs; i++) {
    const runs: string[] = [];
    const n = 1 + (r() % 3);
    for (let k = 0; k < n; k++) {
      const bold = r() % 5 === 0 ? '<w:rPr><w:b/><w:bCs/></w:rPr>' : '<w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri"/><w:lang w:val="en-GB"/></w:rPr>';
      runs.push(`<w:r w:rsidRPr="00${(r() % 0xffffff).toString(16).padStart(6, '0')}">${bold}<w:t xml:space="preserve">${text(60 + (r() % 300), r()).replace(/\r\n/g, ' ')}</w:t></w:r>`);
    }
    ps.push(`<w:p w14:paraId="${(r() >>> 1).toString(16).padStart(8, '0').toUpperCase()}" w:rsidR="00A1B2C3" w:rsidRDefault="00D4E5F6"><w:pPr><w:pStyle w:val="${r() % 7 === 0 ? 'Heading2' : 'Normal'}"/><w:spacing w:after="160" w:line="259" w:lineRule="auto"/></w:pPr>${runs.join('')}</w:p>`);
  }
  return Buffer.from('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n' +
    '<w:document xmlns:wpc="http://schemas.microsoft.com/office/word/2010/wordprocessingCanvas" xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" ' +
    'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><w:body>' +
    ps.join('') + '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440"/></w:sectPr></w:body></w:document>', 'utf8');
}

/** A .docx of about `size` bytes: the parts Word writes, deflated, with two photos and a chart image. */
export function docx(size: number, seed: number): Buffer {
  const x = (s: string) => Buffer.from('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n' + s, 'utf8');
  const media = [jpegLike(Math.floor(size * 0.38), seed + 1), jpegLike(Math.floor(size * 0.28), seed + 2), pngLike(240, Math.max(4, Math.floor(size / 6000)), seed + 3)];
  const doc = wordXml(Math.floor(size / 230), seed);
  return zipArchive([
    { name: '[Content_Types].xml', data: x('<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="jpeg" ContentType="image/jpeg"/><Default Extension="png" ContentType="image/png"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/><Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/></Types>') },
    { name: '_rels/.rels', data: x('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>') },
    { name: 'word/document.xml', data: doc },
    { name: 'word/_rels/document.xml.rels', data: x('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.jpeg"/><Relationship Id="rId6" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image2.jpeg"/><Relationship Id="rId7" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image3.png"/></Relationships>') },
    { name: 'word/styles.xml', data: x('<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">' + Array.from({ length: 120 }, (_, i) => `<w:style w:type="paragraph" w:styleId="Style${i}"><w:name w:val="Style ${i}"/><w:basedOn w:val="Normal"/><w:uiPriority w:val="${i}"/><w:qFormat/><w:rPr><w:sz w:val="${18 + (i % 10)}"/></w:rPr></w:style>`).join('') + '</w:styles>') },
    { name: 'word/settings.xml', data: x('<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:zoom w:percent="100"/><w:defaultTabStop w:val="720"/><w:characterSpacingControl w:val="doNotCompress"/><w:compat><w:compatSetting w:name="compatibilityMode" w:uri="http://schemas.microsoft.com/office/word" w:val="15"/></w:compat></w:settings>') },
    { name: 'word/media/image1.jpeg', data: media[0]! },
    { name: 'word/media/image2.jpeg', data: media[1]! },
    { name: 'word/media/image3.png', data: media[2]! },
    { name: 'docProps/core.xml', data: x('<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Quarterly report</dc:title><dc:creator>bench</dc:creator></cp:coreProperties>') },
    { name: 'docProps/app.xml', data: x('<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"><Application>Microsoft Office Word</Application><Pages>42</Pages></Properties>') },
  ]);
}

/** A zip of mixed files of about `size` bytes: logs and CSV (compress well), executables, photos (stored), a PDF, a nested docx. */
export function mixedZip(size: number, seed: number): Buffer {
  const files: { name: string; data: Buffer; store?: boolean }[] = [];
  let k = 0;
  let total = 0;
  while (total < size) {
    const i = k++;
    let f: { name: string; data: Buffer; store?: boolean };
    switch (i % 6) {
      case 0: f = { name: `logs/server-${i}.log`, data: Buffer.from(text(400_000, seed + i), 'latin1') }; total += 60_000; break;
      case 1: f = { name: `data/export-${i}.csv`, data: Buffer.from(Array.from({ length: 6000 }, (_, j) => `${j},${(j * 7919) % 10007},item-${j % 97},${((j * 31) % 1000) / 10}`).join('\r\n'), 'latin1') }; total += 40_000; break;
      case 2: f = { name: `bin/tool-${i}.exe`, data: compressibleExe(600_000, seed + i) }; total += 170_000; break;
      case 3: f = { name: `photos/IMG_${1000 + i}.jpg`, data: jpegLike(700_000, seed + i), store: true }; total += 700_000; break;
      case 4: f = { name: `docs/manual-${i}.pdf`, data: pdf(300_000, seed + i) }; total += 280_000; break;
      default: f = { name: `docs/report-${i}.docx`, data: docx(250_000, seed + i) }; total += 250_000;
    }
    files.push(f);
  }
  return zipArchive(files);
}

/** A PDF of about `size` bytes: pages whose content streams are FlateDecode'd, a FlateDecode image, an xref table with exact offsets. */
export function pdf(size: number, seed: number): Buffer {
  const r = prng(seed);
  const objs: Buffer[] = [];
  const pages = Math.max(1, Math.floor(size / 14_000));
  const firstPage = 4;
  // 1 catalog, 2 pages, 3 font, then per page: page + content; last: image
  // a photo-like image: mostly noise, so FlateDecode barely shrinks it (as for real photos)
  const imgStream = deflateSync(randomExe(Math.floor(size * 0.7), seed + 9));
  const imgId = firstPage + pages * 2;
  const kids = Array.from({ length: pages }, (_, p) => `${firstPage + p * 2} 0 R`).join(' ');
  objs.push(Buffer.from('<< /Type /Catalog /Pages 2 0 R >>'));
  objs.push(Buffer.from(`<< /Type /Pages /Kids [${kids}] /Count ${pages} >>`));
  objs.push(Buffer.from('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'));
  for (let p = 0; p < pages; p++) {
    const lines: string[] = ['BT /F1 10 Tf 50 780 Td 12 TL'];
    for (let l = 0; l < 60; l++) lines.push(`(${text(90, r()).replace(/\r\n/g, ' ').replace(/[()\\]/g, '')}) Tj T*`);
    lines.push('ET', `q 200 0 0 150 300 50 cm /Im1 Do Q`);
    const content = deflateSync(Buffer.from(lines.join('\n'), 'latin1'));
    objs.push(Buffer.from(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> /XObject << /Im1 ${imgId} 0 R >> >> /Contents ${firstPage + p * 2 + 1} 0 R >>`));
    objs.push(Buffer.concat([Buffer.from(`<< /Length ${content.length} /Filter /FlateDecode >>\nstream\n`), content, Buffer.from('\nendstream')]));
  }
  objs.push(Buffer.concat([Buffer.from(`<< /Type /XObject /Subtype /Image /Width 200 /Height 150 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Length ${imgStream.length} /Filter /FlateDecode >>\nstream\n`), imgStream, Buffer.from('\nendstream')]));
  const out: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let off = out[0]!.length;
  const offsets: number[] = [];
  objs.forEach((o, i) => {
    offsets.push(off);
    const b = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), o, Buffer.from('\nendobj\n')]);
    out.push(b);
    off += b.length;
  });
  const xref = [`xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`, ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)].join('');
  out.push(Buffer.from(`${xref}trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${off}\n%%EOF\n`));
  return Buffer.concat(out);
}

/** 20 small attachments of the kinds people send: PDFs, images, office files, text, a small zip. */
function smallAttachments(seed: number): Attachment[] {
  const out: Attachment[] = [];
  for (let i = 0; i < 20; i++) {
    switch (i % 5) {
      case 0: out.push({ name: `scan-${i}.pdf`, type: 'application/pdf', data: pdf(12_000 + i * 1000, seed + i) }); break;
      case 1: out.push({ name: `photo-${i}.jpg`, type: 'image/jpeg', data: jpegLike(15_000 + i * 500, seed + i) }); break;
      case 2: out.push({ name: `notes-${i}.docx`, type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', data: docx(20_000, seed + i) }); break;
      case 3: out.push({ name: `readme-${i}.txt`, type: 'text/plain', data: Buffer.from(text(5000, seed + i), 'latin1') }); break;
      default: out.push({ name: `bundle-${i}.zip`, type: 'application/zip', data: zipArchive([{ name: 'a.txt', data: Buffer.from(text(8000, seed + i), 'latin1') }, { name: 'b.png', data: pngLike(64, 64, seed + i) }]) });
    }
  }
  return out;
}

export interface Workload {
  key: string;
  title: string;
  /** body variants; `pick(i)` selects the body for the i-th message of a session */
  bodies: Buffer[];
  pick: (i: number, session: number) => number;
}

export function workloads(): Workload[] {
  const exe1m = randomExe(1 << 20, 1);
  const comp1m = compressibleExe(1 << 20, 2);
  const gz = gzipSync(comp1m, { level: 6 });
  const exe35k = randomExe(35 * 1024, 3);
  const t4k = mime('4 KB text', text(4096 - 200, 4));
  const mixAtt = mime('mix with attachment', text(600, 5), { name: 'setup.exe', type: 'application/octet-stream', data: exe35k });
  const doc = docx(1 << 20, 21);
  const zip5 = mixedZip(5 << 20, 31);
  const pdf1 = pdf(1 << 20, 41);
  const kb = (n: number) => `${Math.round(n / 1024)} KB`;
  return [
    { key: 'b64-1m', title: '1 MB executable, base64', bodies: [mime('1 MB exe', text(400, 6), { name: 'tool.exe', type: 'application/octet-stream', data: exe1m })], pick: () => 0 },
    { key: 'gz-1m', title: `same content gzipped (${Math.round(gz.length / 1024)} KB .gz of a 1 MB exe)`, bodies: [mime('gz exe', text(400, 7), { name: 'tool.exe.gz', type: 'application/gzip', data: gz })], pick: () => 0 },
    { key: 'docx', title: `.docx as Word writes it (${kb(doc.length)}: deflated XML, 2 photos, a PNG)`, bodies: [mime('report', text(600, 8), { name: 'Quarterly report.docx', type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', data: doc })], pick: () => 0 },
    { key: 'zip-5m', title: `zip of mixed files (${kb(zip5.length)}: logs, CSV, executables, stored photos, PDFs, docx)`, bodies: [mime('archive', text(300, 9), { name: 'project-files.zip', type: 'application/zip', data: zip5 })], pick: () => 0 },
    { key: 'pdf', title: `PDF with FlateDecode streams (${kb(pdf1.length)})`, bodies: [mime('manual', text(300, 10), { name: 'manual.pdf', type: 'application/pdf', data: pdf1 })], pick: () => 0 },
    { key: 'att20', title: '20 small attachments (PDF, JPEG, docx, text, zip; 5–30 KB each)', bodies: [mime('twenty files', text(800, 11), smallAttachments(51))], pick: () => 0 },
    { key: 'text-4k', title: '4 KB text', bodies: [t4k], pick: () => 0 },
    // 80/20 mix: every 5th message (offset per session) carries the 35 KB attachment
    { key: 'mix', title: 'mix: 80% 4 KB text, 20% 35 KB executable attachment', bodies: [t4k, mixAtt], pick: (i, s) => ((i + s) % 5 === 0 ? 1 : 0) },
  ];
}

/** Infected variants (EICAR as a plain line, and as an attachment). */
export function virusBodies(): Buffer[] {
  return [
    mime('eicar inline', 'see below\r\n' + EICAR),
    mime('eicar attached', 'attached', { name: 'eicar.com', type: 'application/octet-stream', data: Buffer.from(EICAR, 'latin1') }),
  ];
}

/** A large message for the memory test: `size` bytes of base64 attachment lines. */
export function bigBody(size: number): Buffer {
  const chunk = randomExe(256 * 1024, 9);
  const parts: Buffer[] = [];
  let n = 0;
  while (n < size * 0.74) { parts.push(chunk); n += chunk.length; }
  return mime('big', 'big attachment', { name: 'big.bin', type: 'application/octet-stream', data: Buffer.concat(parts) });
}

export function headerFor(id: string): Buffer {
  return Buffer.from(`X-Bench-Id: ${id}\r\nMessage-ID: <${id}@bench.test>\r\n`, 'latin1');
}
