/**
 * hostile-gen.ts — a deterministic generator of hostile mails by family, plus benign
 * controls, for the differential harness (issue #10).
 *
 * Output: HostileCase[] — id `family/variant:payload`, the issue class it exercises
 * (1..10; 0 = ordinary benign control or baseline), whether it is a benign control
 * (must be accepted), the raw message bytes and a one-line note. Payloads: EICAR bytes
 * under a harmless name, or harmless bytes under a banned name (.exe and friends).
 * Which readers extract what is NOT decided here: the oracles say (oracle.py, mailparser).
 * Deterministic: the same seed gives byte-identical cases (a seeded PRNG, no clock).
 * Limits: cases are a few KiB each (one has 1000+ RFC 2231 sections: ~20 KiB).
 * Needs python3 once per call (bz2-make.py: Node has no bzip2 encoder).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { PYTHON } from './python.js';
import {
  CRLF, EICAR, attachmentPart, b64, block, message, mixed, multipartBody, qpAll, textPart, uuencode,
} from './mail-build.js';
import {
  bytes, gnuLongItem, gzipBuild, paxItem, tarBuild, tarHeader, unicodePathExtra, zipBuild, zipLocalOnly, type TarItem,
} from './archive-build.js';

export interface HostileCase {
  id: string;
  family: string;
  /** Issue #10 class (1..10); 0 = ordinary control or baseline. */
  cls: number;
  /** A benign control: must be accepted (never rejected or tempfailed). */
  benign: boolean;
  raw: Buffer;
  note: string;
}

/** What the attacker wants through: EICAR bytes under an innocent name, or innocent bytes under a banned name. */
export interface Payload {
  key: 'eicar' | 'name';
  name: string;
  content: string;
}
export const P_EICAR: Payload = { key: 'eicar', name: 'notes.txt', content: EICAR };
export const P_NAME: Payload = { key: 'name', name: 'invoice.pdf.exe', content: 'Quarterly figures attached.\r\n' };
const PAYLOADS = [P_EICAR, P_NAME];

/** mulberry32: small, fast, good enough for test variation. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const DEFAULT_SEED = 0x0d1ff_2026;

type Emit = (family: string, variant: string, cls: number, raw: string | Buffer, note: string, benign?: boolean) => void;

/** Generate every case. */
export function generateCases(seed = DEFAULT_SEED): HostileCase[] {
  const rnd = prng(seed);
  const cases: HostileCase[] = [];
  const seen = new Set<string>();
  const emit: Emit = (family, variant, cls, raw, note, benign = false) => {
    const id = `${family}/${variant}`;
    if (seen.has(id)) throw new Error('duplicate case id ' + id);
    seen.add(id);
    cases.push({ id, family, cls, benign, raw: typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw, note });
  };
  const bz = bzip2Batch([
    { data: 'Minutes of the meeting.\r\n'.repeat(20), randomised: false },
    { data: EICAR, randomised: false },
    { data: benignText(500, 7), randomised: true },
  ]);
  baseline(emit, bz);
  headerEarly(emit);
  conflicting(emit);
  encodedMultipart(emit);
  delimiters(emit);
  messageTypes(emit);
  decoders(emit, rnd);
  names(emit);
  zipFamily(emit);
  tarFamily(emit);
  moreVariants(emit);
  benignControls(emit, bz, rnd);
  return cases;
}

// ---- helpers ------------------------------------------------------------------------

function benignText(n: number, seed: number): string {
  const words = ['alpha', 'budget', 'meeting', 'quarter', 'report', 'summary', 'team', 'figures', 'draft', 'review', 'notes', 'agenda'];
  const r = prng(seed);
  let s = '';
  while (s.length < n) s += words[Math.floor(r() * words.length)] + (r() < 0.1 ? '.\r\n' : ' ');
  return s.slice(0, n);
}

function bzip2Batch(items: { data: string; randomised: boolean }[]): Buffer[] {
  const input = JSON.stringify(items.map((i) => ({ data: Buffer.from(i.data, 'latin1').toString('base64'), randomised: i.randomised })));
  const out = execFileSync(PYTHON, [join(ROOT, 'test', 'differential', 'bz2-make.py')], { input, maxBuffer: 16 << 20 });
  return (JSON.parse(out.toString()) as string[]).map((s) => Buffer.from(s, 'base64'));
}

const each = (fn: (p: Payload) => void): void => PAYLOADS.forEach(fn);
const att = (p: Payload, o: Parameters<typeof attachmentPart>[2] = {}) => attachmentPart(p.name, p.content, o);

// ---- 0: baselines (plain hostile mails every reader agrees on) -------------------------

function baseline(emit: Emit, bz: Buffer[]): void {
  each((p) => {
    emit('baseline', `base64-attachment:${p.key}`, 0, mixed('bl1', [att(p)]), 'plain attachment');
    emit('baseline', `zip:${p.key}`, 0, mixed('bl2', [attachmentPart('files.zip', bytes(zipBuild([{ name: p.name, data: p.content, method: 8 }])).toString('latin1'))]), 'deflated zip member');
    emit('baseline', `tar-gz:${p.key}`, 0, mixed('bl3', [attachmentPart('files.tgz', gzipBuild(tarBuild([{ kind: 'file', header: { name: p.name }, data: p.content }])).toString('latin1'))]), 'tar.gz member');
  });
  emit('baseline', 'text-body:eicar', 0, message('bl4', ['Content-Type: text/plain'], EICAR + CRLF), 'EICAR in a plain text body');
  emit('baseline', 'bz2:eicar', 0, mixed('bl5', [attachmentPart('data.bin.bz2', bz[1]!.toString('latin1'))]), 'EICAR in bzip2');
}

// ---- 1: the header block ends too early ------------------------------------------------

const ODD_LINES: Record<string, string> = {
  'from-line': 'From attacker@example.com Mon Jan  1 00:00:00 2024',
  'colon-first': ': a line that starts with a colon',
  'eight-bit-name': 'X-Gr\xfc\xdfe: hallo',
  'no-colon': 'this line has no colon at all',
  'space-in-name': 'X Mailer: odd',
  'tab-continuation-first': '\tcontinuation with nothing to continue',
};

function headerEarly(emit: Emit): void {
  const b = 'b1-hdr';
  each((p) => {
    for (const [k, line] of Object.entries(ODD_LINES)) {
      // Top level: the odd line sits between the envelope fields and the MIME fields.
      const top = message(`he-${k}`, [line, `Content-Type: multipart/mixed; boundary="${b}"`], multipartBody(b, [textPart(), att(p)]));
      emit('hdr-early', `top-${k}:${p.key}`, 1, top, `top-level odd header line (${k}) before Content-Type`);
      // Part level: the odd line before the attachment's own fields.
      const part = block([line, `Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${p.name}"`], b64(p.content));
      emit('hdr-early', `part-${k}:${p.key}`, 1, mixed(`hp-${k}`, [part]), `part-level odd header line (${k}) before the part's fields`);
    }
    const sp = message('he-sp', [`Content-Type : multipart/mixed; boundary="${b}"`], multipartBody(b, [textPart(), att(p)]));
    emit('hdr-early', `top-space-before-colon:${p.key}`, 1, sp, '"Content-Type : value" (space before the colon)');
    const spp = block([`Content-Type : application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding : base64', `Content-Disposition : attachment; filename="${p.name}"`], b64(p.content));
    emit('hdr-early', `part-space-before-colon:${p.key}`, 1, mixed('hp-sp', [spp]), 'part fields with a space before the colon');
    const bom = '\xef\xbb\xbf' + message('he-bom', [`Content-Type: multipart/mixed; boundary="${b}"`], multipartBody(b, [textPart(), att(p)]));
    emit('hdr-early', `top-bom:${p.key}`, 1, bom, 'UTF-8 BOM before the first header');
    const blank = CRLF + message('he-blank', [`Content-Type: multipart/mixed; boundary="${b}"`], multipartBody(b, [textPart(), att(p)]));
    emit('hdr-early', `top-blank-first:${p.key}`, 1, blank, 'a blank line before the headers');
    const partBlank = CRLF + att(p);
    emit('hdr-early', `part-blank-first:${p.key}`, 1, mixed('hp-blank', [partBlank]), 'a blank line before the part headers');
    const mboxMid = message('he-mbox', ['From: x@y', '>From quoted line', `Content-Type: multipart/mixed; boundary="${b}"`], multipartBody(b, [textPart(), att(p)]));
    emit('hdr-early', `top-gt-from:${p.key}`, 1, mboxMid, '">From " line inside the headers');
  });
}

// ---- 2: conflicting fields ---------------------------------------------------------------

function conflicting(emit: Emit): void {
  const b = 'b1-conf';
  each((p) => {
    const body = multipartBody(b, [textPart(), att(p)]);
    emit('conflict', `dup-ct-text-first:${p.key}`, 2, message('c1', ['Content-Type: text/plain', `Content-Type: multipart/mixed; boundary="${b}"`], body), 'two Content-Type: text/plain first');
    emit('conflict', `dup-ct-multi-first:${p.key}`, 2, message('c2', [`Content-Type: multipart/mixed; boundary="${b}"`, 'Content-Type: text/plain'], body), 'two Content-Type: multipart first');
    const cte = (first: string, second: string) =>
      mixed('c3', [block([`Content-Type: application/octet-stream; name="${p.name}"`, `Content-Transfer-Encoding: ${first}`, `Content-Transfer-Encoding: ${second}`, `Content-Disposition: attachment; filename="${p.name}"`], b64(p.content))]);
    emit('conflict', `dup-cte-7bit-first:${p.key}`, 2, cte('7bit', 'base64'), 'two CTE: 7bit, then base64');
    emit('conflict', `dup-cte-base64-first:${p.key}`, 2, cte('base64', '7bit'), 'two CTE: base64, then 7bit');
    const twoBoundaries = (used: string) =>
      message('c4', ['Content-Type: multipart/mixed; boundary="bA-conf"; boundary="bB-conf"'], multipartBody(used, [textPart(), att(p)]));
    emit('conflict', `two-boundary-params-first-used:${p.key}`, 2, twoBoundaries('bA-conf'), 'two boundary= params; the body uses the first');
    emit('conflict', `two-boundary-params-second-used:${p.key}`, 2, twoBoundaries('bB-conf'), 'two boundary= params; the body uses the second');
    const ctField = (field: string) => message('c5', [field], body);
    emit('conflict', `quoted-type:${p.key}`, 2, ctField(`Content-Type: "multipart/mixed"; boundary="${b}"`), 'quoted type value');
    emit('conflict', `missing-semicolon-top:${p.key}`, 2, ctField(`Content-Type: multipart/mixed boundary="${b}"`), 'no ";" before boundary=');
    emit('conflict', `nul-in-boundary:${p.key}`, 2, message('c6', [`Content-Type: multipart/mixed; boundary="${b}\x00x"`], body), 'NUL inside the boundary parameter');
    emit('conflict', `upper-case-type:${p.key}`, 2, ctField(`Content-Type: MULTIPART/MIXED; BOUNDARY="${b}"`), 'upper-case type and parameter name');
    const dupPartCt = block(['Content-Type: text/plain', `Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64'], b64(p.content));
    emit('conflict', `dup-part-ct:${p.key}`, 2, mixed('c7', [dupPartCt]), 'part with two Content-Type fields');
  });
  // Name conflicts: the banned name in one source, a harmless one in another.
  const content = b64(P_NAME.content);
  const nameCase = (variant: string, headers: string[], note: string) =>
    emit('conflict', `${variant}:name`, 2, mixed('cn-' + variant, [block([...headers, 'Content-Transfer-Encoding: base64'], content)]), note);
  nameCase('dup-cd-safe-first', ['Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="report.pdf"', 'Content-Disposition: attachment; filename="report.exe"'], 'two Content-Disposition, harmless first');
  nameCase('dup-cd-banned-first', ['Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="report.exe"', 'Content-Disposition: attachment; filename="report.pdf"'], 'two Content-Disposition, banned first');
  nameCase('dup-filename-safe-first', ['Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="report.pdf"; filename="report.exe"'], 'two filename= params, harmless first');
  nameCase('dup-filename-banned-first', ['Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="report.exe"; filename="report.pdf"'], 'two filename= params, banned first');
  nameCase('plain-and-2231-banned-2231', ['Content-Type: application/octet-stream', `Content-Disposition: attachment; filename="report.pdf"; filename*=UTF-8''report.exe`], 'plain filename beside an RFC 2231 one (banned in 2231)');
  nameCase('plain-and-2231-banned-plain', ['Content-Type: application/octet-stream', `Content-Disposition: attachment; filename*=UTF-8''report.pdf; filename="report.exe"`], 'RFC 2231 filename beside a plain one (banned plain)');
  nameCase('cd-safe-ct-banned', ['Content-Type: application/octet-stream; name="report.exe"', 'Content-Disposition: attachment; filename="report.pdf"'], 'filename= harmless, name= banned');
  nameCase('cd-banned-ct-safe', ['Content-Type: application/octet-stream; name="report.pdf"', 'Content-Disposition: attachment; filename="report.exe"'], 'filename= banned, name= harmless');
  nameCase('missing-semicolon-ct', ['Content-Type: application/octet-stream name="report.exe"'], 'no ";" before name=');
  nameCase('missing-semicolon-cd', ['Content-Type: application/octet-stream', 'Content-Disposition: attachment filename="report.exe"'], 'no ";" before filename=');
  nameCase('name-param-in-cd-only', ['Content-Type: application/octet-stream', 'Content-Disposition: attachment; name="report.exe"'], 'name= inside Content-Disposition');
  nameCase('filename-param-in-ct', ['Content-Type: application/octet-stream; filename="report.exe"'], 'filename= inside Content-Type');
}

// ---- 3: multipart under a non-identity CTE ---------------------------------------------

const MULTI_CTES: Record<string, string> = {
  '7-bit': '7-bit', '7bits': '7bits', qp: 'quoted-printable', base64: 'base64', 'x-uuencode': 'x-uuencode', bogus: 'x-bogus', 'binary-upper': 'BINARY',
};

function encodedMultipart(emit: Emit): void {
  each((p) => {
    for (const [k, cte] of Object.entries(MULTI_CTES)) {
      const b = 'b1-enc';
      emit('enc-multipart', `top-${k}:${p.key}`, 3, message('em-' + k, [`Content-Type: multipart/mixed; boundary="${b}"`, `Content-Transfer-Encoding: ${cte}`], multipartBody(b, [textPart(), att(p)])), `top-level multipart labelled ${cte}, body literal MIME`);
      const inner = block([`Content-Type: multipart/mixed; boundary="b2-enc"`, `Content-Transfer-Encoding: ${cte}`], multipartBody('b2-enc', [att(p)]));
      emit('enc-multipart', `nested-${k}:${p.key}`, 3, mixed('emn-' + k, [inner]), `nested multipart labelled ${cte}`);
    }
    // Really encoded: the multipart body itself is base64 / QP of a MIME body.
    const b = 'b1-real';
    const realBody = multipartBody(b, [textPart(), att(p)]);
    emit('enc-multipart', `top-really-base64:${p.key}`, 3, message('emr', [`Content-Type: multipart/mixed; boundary="${b}"`, 'Content-Transfer-Encoding: base64'], b64(realBody)), 'multipart body actually base64-encoded');
    emit('enc-multipart', `top-really-qp:${p.key}`, 3, message('emq', [`Content-Type: multipart/mixed; boundary="${b}"`, 'Content-Transfer-Encoding: quoted-printable'], realBody.replace(/=/g, '=3D').replace(/--/g, '=2D=2D')), 'multipart body quoted-printable with escaped dashes');
  });
}

// ---- 4: delimiters ---------------------------------------------------------------------------

function delimiters(emit: Emit): void {
  const b = 'b1-del';
  // A line that only starts like a delimiter hides what follows from a prefix matcher.
  const hidden = block([`Content-Type: application/octet-stream; name="data.txt"`, 'Content-Transfer-Encoding: 7bit'], `--${b}x${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${EICAR}`);
  emit('delimiter', 'prefix-open:eicar', 4, mixed('d1', [hidden], { boundary: b }), '"--b1x" is no delimiter for exact matchers: EICAR stays in a 7bit part');
  each((p) => {
    const closeThenMore = (closeLine: string) =>
      message('d2', [`Content-Type: multipart/mixed; boundary="${b}"`], `preamble${CRLF}--${b}${CRLF}${textPart()}${CRLF}${closeLine}${CRLF}--${b}${CRLF}${att(p)}${CRLF}--${b}--${CRLF}`);
    emit('delimiter', `prefix-close-x:${p.key}`, 4, closeThenMore(`--${b}--x`), '"--b1--x" taken as the close by a prefix matcher');
    emit('delimiter', `prefix-close-space-text:${p.key}`, 4, closeThenMore(`--${b}-- trailing words`), '"--b1-- words" after the close marker');
    emit('delimiter', `prefix-open-suffix:${p.key}`, 4, closeThenMore(`--${b}suffix`), '"--b1suffix" between parts');
    emit('delimiter', `parts-after-close:${p.key}`, 4, closeThenMore(`--${b}--`), 'a real close delimiter, then more parts');
    emit('delimiter', `empty-boundary:${p.key}`, 4, message('d3', ['Content-Type: multipart/mixed; boundary=""'], multipartBody('', [textPart(), att(p)])), 'boundary="" with "--" delimiters');
    const cr = (s: string) => s.replace(/\r\n/g, '\r');
    emit('delimiter', `bare-cr-part:${p.key}`, 4, message('d4', [`Content-Type: multipart/mixed; boundary="${b}"`], `--${b}${CRLF}${textPart()}${CRLF}` + cr(`--${b}${CRLF}${att(p)}${CRLF}--${b}--${CRLF}`)), 'bare CR line ends around the attachment and its delimiters');
    emit('delimiter', `bare-cr-message:${p.key}`, 4, cr(mixed('d5', [att(p)], { boundary: b })), 'the whole message with bare CR line ends');
    emit('delimiter', `lf-only:${p.key}`, 4, mixed('d6', [att(p, { eol: '\n' })], { boundary: b, eol: '\n' }).replace(/\r\n/g, '\n'), 'LF-only line ends (control for the CR cases)');
    emit('delimiter', `cr-before-delimiter:${p.key}`, 4, message('d7', [`Content-Type: multipart/mixed; boundary="${b}"`], `--${b}${CRLF}${textPart()}\r\r--${b}${CRLF}${att(p)}${CRLF}--${b}--${CRLF}`), 'CR CR LF before a delimiter');
    emit('delimiter', `padding-after-delimiter:${p.key}`, 4, message('d8', [`Content-Type: multipart/mixed; boundary="${b}"`], `--${b} \t ${CRLF}${textPart()}${CRLF}--${b}   ${CRLF}${att(p)}${CRLF}--${b}--  ${CRLF}`), 'transport padding after delimiters (valid)');
    emit('delimiter', `missing-close:${p.key}`, 4, mixed('d9', [att(p)], { boundary: b, close: false }), 'no closing delimiter');
    const long = 'L'.repeat(200);
    emit('delimiter', `long-boundary-200:${p.key}`, 4, mixed('d10', [att(p)], { boundary: long }), '200-character boundary (RFC max 70)');
    emit('delimiter', `boundary-trailing-space-param:${p.key}`, 4, message('d11', [`Content-Type: multipart/mixed; boundary="${b} "`], `--${b} ${CRLF}${textPart()}${CRLF}--${b} ${CRLF}${att(p)}${CRLF}--${b} --${CRLF}`), 'boundary value with a trailing space');
    const nested = block([`Content-Type: multipart/mixed; boundary="${b}-inner"`], multipartBody(`${b}-inner`, [att(p)], { close: false }));
    emit('delimiter', `inner-boundary-extends-outer:${p.key}`, 4, mixed('d12', [nested], { boundary: b }), 'inner boundary has the outer one as prefix, inner never closed');
    emit('delimiter', `unquoted-boundary-with-specials:${p.key}`, 4, message('d13', ['Content-Type: multipart/mixed; boundary=b1=del?x'], multipartBody('b1=del?x', [textPart(), att(p)])), 'unquoted boundary containing "=" and "?"');
  });
}

// ---- 5: other message types --------------------------------------------------------------

function messageTypes(emit: Emit): void {
  each((p) => {
    const inner = mixed('inner', [att(p)], { boundary: 'b2-msg' });
    const subtypes: [string, string, string][] = [
      ['rfc822', 'message/rfc822', '7bit'],
      ['global', 'message/global', '8bit'],
      ['news', 'message/news', '7bit'],
      ['partial-1of1', 'message/partial; id="part-1@example.com"; number=1; total=1', '7bit'],
      ['partial-1of2', 'message/partial; id="part-2@example.com"; number=1; total=2', '7bit'],
      ['external-body', 'message/external-body; access-type=x-hostile', '7bit'],
      ['x-unknown', 'message/x-unknown', '7bit'],
      ['delivery-status', 'message/delivery-status', '7bit'],
    ];
    for (const [k, ct, cte] of subtypes) {
      const part = block([`Content-Type: ${ct}`, `Content-Transfer-Encoding: ${cte}`], inner);
      emit('msgtype', `${k}:${p.key}`, 5, mixed('mt-' + k, [part]), `attached ${ct.split(';')[0]} containing a multipart with the payload`);
    }
    emit('msgtype', `rfc822-base64:${p.key}`, 5, mixed('mt-b64', [block(['Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64'], b64(inner))]), 'message/rfc822 with CTE base64 (not allowed, still seen)');
    emit('msgtype', `top-partial:${p.key}`, 5, message('mt-top', ['Content-Type: message/partial; id="top@example.com"; number=1; total=1'], inner), 'the whole mail is message/partial 1 of 1');
    emit('msgtype', `digest-default-type:${p.key}`, 5, message('mt-dig', ['Content-Type: multipart/digest; boundary="b-dig"'], multipartBody('b-dig', [CRLF + inner])), 'multipart/digest part without headers (message/rfc822 by default)');
  });
}

// ---- 6: decoders ----------------------------------------------------------------------------------

function decoders(emit: Emit, rnd: () => number): void {
  const eicarB64 = Buffer.from(EICAR, 'latin1').toString('base64');
  const withAt = (s: string, pos: number, ins: string) => s.slice(0, pos) + ins + s.slice(pos);
  const partWith = (body: string, cte = 'base64', type = 'application/octet-stream', name: string | null = 'notes.txt') =>
    mixed('dec', [block([`Content-Type: ${type}${name ? `; name="${name}"` : ''}`, `Content-Transfer-Encoding: ${cte}`], body)]);
  for (const pos of [1, 2, 3, 9, 22, 47, 70]) {
    emit('decoder', `b64-eq-at-${pos}:eicar`, 6, partWith(withAt(eicarB64, pos, '=')), `"=" inside a base64 quantum at ${pos}`);
  }
  emit('decoder', 'b64-double-eq-mid:eicar', 6, partWith(withAt(eicarB64, 10, '==')), '"==" in the middle of base64');
  emit('decoder', 'b64-eq-line-end:eicar', 6, partWith(withAt(eicarB64, 30, '=\r\n')), '"=" at a line end mid-stream');
  emit('decoder', 'b64-padded-halves:eicar', 6, partWith(Buffer.from(EICAR.slice(0, 31), 'latin1').toString('base64') + CRLF + Buffer.from(EICAR.slice(31), 'latin1').toString('base64')), 'two padded base64 runs back to back');
  const junk = ['*', '!', ' ', '\t', '.', '%'];
  for (let i = 0; i < 4; i++) {
    let s = '';
    for (const c of eicarB64) s += c + (rnd() < 0.2 ? junk[Math.floor(rnd() * junk.length)] : '');
    emit('decoder', `b64-junk-${i}:eicar`, 6, partWith(s), 'base64 with non-alphabet junk sprinkled in');
  }
  const spellings: Record<string, string> = { upper: 'BASE64', 'lead-space': ' base64', 'trail-space': 'base64 ', semicolon: 'base64;', quoted: '"base64"', 'x-base64': 'x-base64', 'base-64': 'base-64' };
  for (const [k, cte] of Object.entries(spellings)) {
    emit('decoder', `cte-spelling-${k}:eicar`, 6, partWith(b64(EICAR), cte), `CTE spelled "${cte}"`);
  }
  emit('decoder', 'qp-all-upper:eicar', 6, partWith(qpAll(EICAR), 'quoted-printable'), 'quoted-printable, every byte escaped');
  emit('decoder', 'qp-all-lower:eicar', 6, partWith(qpAll(EICAR, true), 'quoted-printable'), 'quoted-printable, lower-case hex');
  emit('decoder', 'qp-soft-break-ws:eicar', 6, partWith(qpAll(EICAR, false, 5).replace(/=\r\n/g, '=  \r\n'), 'quoted-printable'), 'soft line breaks followed by spaces');
  emit('decoder', 'qp-bare-lf-soft:eicar', 6, partWith(qpAll(EICAR, false, 7).replace(/=\r\n/g, '=\n'), 'quoted-printable'), 'soft line breaks with bare LF');
  // uuencode: odd begin lines, three places.
  each((p) => {
    const begins: Record<string, string> = {
      normal: `begin 644 ${p.name}`,
      '0o644': `begin 0o644 ${p.name}`,
      '+644': `begin +644 ${p.name}`,
      'no-name': 'begin 644',
      'no-name-space': 'begin 644 ',
      '4-digit-mode': `begin 0644 ${p.name}`,
      quoted: `begin 644 "${p.name}"`,
      'upper-begin': `BEGIN 644 ${p.name}`,
    };
    for (const [k, line] of Object.entries(begins)) {
      const uu = uuencode(p.content, line);
      emit('decoder', `uu-${k}-in-text:${p.key}`, 6, message('uu-t', ['Content-Type: text/plain'], `Hello,${CRLF}${CRLF}${uu}${CRLF}`), `uuencode (${line}) inside a text body`);
      emit('decoder', `uu-${k}-in-octet:${p.key}`, 6, partWith(uu, '7bit', 'application/octet-stream', null), `uuencode (${line}) inside an application/octet-stream part`);
      emit('decoder', `uu-${k}-cte-x-uuencode:${p.key}`, 6, partWith(uu, 'x-uuencode', 'application/octet-stream', null), `CTE x-uuencode (${line})`);
    }
    emit('decoder', `uu-cte-uuencode:${p.key}`, 6, partWith(uuencode(p.content, `begin 644 ${p.name}`), 'uuencode', 'application/octet-stream', null), 'CTE uuencode');
    emit('decoder', `uu-cte-x-uue:${p.key}`, 6, partWith(uuencode(p.content, `begin 644 ${p.name}`), 'x-uue', 'application/octet-stream', null), 'CTE x-uue');
    emit('decoder', `uu-in-html:${p.key}`, 6, message('uu-h', ['Content-Type: text/html'], `<html><body><pre>${CRLF}${uuencode(p.content, `begin 644 ${p.name}`)}${CRLF}</pre></body></html>`), 'uuencode inside text/html');
  });
  emit('decoder', 'begin-base64-in-text:eicar', 6, message('uu-b', ['Content-Type: text/plain'], `Hi${CRLF}begin-base64 644 notes.txt${CRLF}${b64(EICAR)}${CRLF}====${CRLF}`), 'GNU begin-base64 block inside text');
}

// ---- 7: names ---------------------------------------------------------------------------------------

function names(emit: Emit): void {
  const content = b64(P_NAME.content);
  const nameCase = (variant: string, headers: string[], note: string) =>
    emit('names', `${variant}:name`, 7, mixed('n-' + variant, [block([...headers, 'Content-Transfer-Encoding: base64'], content)]), note);
  const ct = 'Content-Type: application/octet-stream';
  nameCase('nul-raw-filename', [ct, 'Content-Disposition: attachment; filename="invoice.exe\x00.txt"'], 'raw NUL inside filename=');
  nameCase('nul-raw-name', ['Content-Type: application/octet-stream; name="invoice.exe\x00.pdf"'], 'raw NUL inside name=');
  nameCase('nul-2231', [ct, `Content-Disposition: attachment; filename*=UTF-8''invoice.exe%00.txt`], 'RFC 2231 %00 inside the name');
  nameCase('nul-2047', ['Content-Type: application/octet-stream; name="=?UTF-8?Q?invoice.exe=00.txt?="'], 'RFC 2047 =00 inside the name');
  nameCase('2231-gap', [ct, 'Content-Disposition: attachment; filename*0="invoice"; filename*2=".exe"'], 'RFC 2231 sections 0 and 2 (gap)');
  nameCase('2231-gap-ct', ['Content-Type: application/octet-stream; name*0="invoice"; name*3=".exe"'], 'RFC 2231 name sections with a gap');
  nameCase('2231-huge-index', [ct, 'Content-Disposition: attachment; filename*0="invoice"; filename*99999999=".exe"'], 'RFC 2231 section index 99999999');
  nameCase('2231-overflow-index', [ct, 'Content-Disposition: attachment; filename*0="invoice"; filename*4294967297=".exe"'], 'RFC 2231 section index past 2^32');
  nameCase('2231-out-of-order', [ct, 'Content-Disposition: attachment; filename*1=".exe"; filename*0="invoice"'], 'RFC 2231 sections out of order');
  nameCase('2231-mixed-encoding', [ct, `Content-Disposition: attachment; filename*0*=UTF-8''invoice; filename*1=".exe"`], 'RFC 2231 encoded section 0, plain section 1');
  nameCase('2231-encoded-ext', [ct, `Content-Disposition: attachment; filename*0="invoice"; filename*1*=%2E%65%78%65`], 'RFC 2231 percent-encoded extension in section 1');
  const many: string[] = [];
  for (let i = 0; i < 1001; i++) many.push(`filename*${i}="${i === 1000 ? '.exe' : 'x'}"`);
  nameCase('2231-1001-sections', [ct, `Content-Disposition: attachment;\r\n ${many.join(';\r\n ')}`], 'RFC 2231 name in 1001 sections, extension in the last');
  nameCase('2231-charset-utf16be', [ct, `Content-Disposition: attachment; filename*=utf-16be''${[...'invoice.exe'].map((c) => '%00' + c).join('')}`], 'RFC 2231 name in UTF-16BE');
  nameCase('2231-charset-unknown', [ct, `Content-Disposition: attachment; filename*=x-unknown''invoice.exe`], 'RFC 2231 with an unknown charset');
  nameCase('2231-charset-koi8', [ct, `Content-Disposition: attachment; filename*=koi8-r'ru'%F3%DE%C5%D4.exe`], 'RFC 2231 KOI8-R name');
  nameCase('2231-no-charset', [ct, `Content-Disposition: attachment; filename*=''invoice.exe`], 'RFC 2231 with an empty charset');
  const w = (cs: string, enc: 'B' | 'Q', s: Buffer | string) => `=?${cs}?${enc}?${enc === 'B' ? Buffer.from(s).toString('base64') : String(s)}?=`;
  nameCase('2047-utf16', [`Content-Type: application/octet-stream; name="${w('utf-16', 'B', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('invoice.exe', 'utf16le')]))}"`], 'RFC 2047 UTF-16 name');
  nameCase('2047-utf7', [`Content-Type: application/octet-stream; name="${w('utf-7', 'Q', 'invoice+AC4-exe')}"`], 'RFC 2047 UTF-7 name (dot as +AC4-)');
  nameCase('2047-iso2022jp', [`Content-Type: application/octet-stream; name="${w('iso-2022-jp', 'B', Buffer.from('\x1b$B$3$s\x1b(Binvoice.exe', 'latin1'))}"`], 'RFC 2047 ISO-2022-JP name');
  nameCase('2047-cp1252', [ct, `Content-Disposition: attachment; filename="${w('windows-1252', 'Q', 'r=E9sum=E9.exe')}"`], 'RFC 2047 windows-1252 name in filename=');
  nameCase('2047-unknown-charset', [`Content-Type: application/octet-stream; name="${w('x-unknown', 'Q', 'invoice.exe')}"`], 'RFC 2047 with an unknown charset');
  nameCase('2047-split-words', [`Content-Type: application/octet-stream; name="${w('UTF-8', 'Q', 'invoice')} ${w('UTF-8', 'Q', '.exe')}"`], 'RFC 2047 name split over two words');
  nameCase('2047-unquoted', [`Content-Type: application/octet-stream; name=${w('UTF-8', 'B', 'invoice.exe')}`], 'RFC 2047 word as an unquoted parameter');
  nameCase('2047-language-tag', [`Content-Type: application/octet-stream; name="=?UTF-8*en?Q?invoice.exe?="`], 'RFC 2231 language tag inside an RFC 2047 word');
  nameCase('trailing-dots-spaces', [ct, 'Content-Disposition: attachment; filename="invoice.exe. . "'], 'trailing dots and spaces (Windows drops them)');
  nameCase('windows-path', [ct, 'Content-Disposition: attachment; filename="C:\\\\temp\\\\invoice.exe"'], 'a Windows path in the name');
  nameCase('unix-path', [ct, 'Content-Disposition: attachment; filename="../../invoice.exe"'], 'a relative path in the name');
  nameCase('unquoted-with-space', [ct, 'Content-Disposition: attachment; filename=quarterly invoice.exe'], 'unquoted name with a space');
  nameCase('folded-quoted-name', [ct, 'Content-Disposition: attachment; filename="quarterly\r\n invoice.exe"'], 'a quoted name folded across lines');
  nameCase('bidi-override', [ct, 'Content-Disposition: attachment; filename*=UTF-8\'\'invoice%E2%80%AEfdp.exe'], 'bidi override in the name');
  nameCase('content-location', ['Content-Type: application/octet-stream', 'Content-Location: http://example.com/invoice.exe'], 'name only in Content-Location');
  nameCase('cd-inline-name', [ct, 'Content-Disposition: inline; filename="invoice.exe"'], 'inline disposition with a banned name');
  nameCase('8bit-utf8-name', [ct, 'Content-Disposition: attachment; filename="r\xc3\xa9sum\xc3\xa9.exe"'], 'raw UTF-8 bytes in the name');
  // Names inside archives.
  const arch = (variant: string, file: string, data: Uint8Array, note: string) => emit('names', `${variant}:name`, 7, mixed('na-' + variant, [attachmentPart(file, Buffer.from(data).toString('latin1'))]), note);
  arch('zip-unicode-path-extra', 'files.zip', zipBuild([{ name: 'readme.txt', data: P_NAME.content, extra: unicodePathExtra('readme.txt', 'readme.exe') }]), 'zip 0x7075 Unicode path says .exe, header says .txt');
  arch('zip-name-nul', 'files.zip', zipBuild([{ name: 'readme.exe\x00.txt', data: P_NAME.content }]), 'zip member name with a NUL');
  arch('zip-backslash-path', 'files.zip', zipBuild([{ name: 'docs\\readme.exe', data: P_NAME.content }]), 'zip member with a backslash path');
  arch('zip-utf8-flag-name', 'files.zip', zipBuild([{ name: Buffer.from('r\u00e9sum\u00e9.exe', 'utf8'), data: P_NAME.content, flags: 0x800 }]), 'zip member name UTF-8 (flag 11)');
  arch('zip-cp437-name', 'files.zip', zipBuild([{ name: Buffer.from([0x72, 0x82, 0x73, 0x2e, 0x65, 0x78, 0x65]), data: P_NAME.content }]), 'zip member name in CP437');
  const longName = 'deep/'.repeat(30) + 'invoice.exe';
  arch('tar-gnu-longname', 'files.tar', tarBuild([gnuLongItem(longName), { kind: 'file', header: { name: longName.slice(0, 99), magic: 'gnu' }, data: P_NAME.content }]), 'GNU long name (L) ends in .exe');
  arch('tar-gnu-longname-short-safe', 'files.tar', tarBuild([gnuLongItem('payload/invoice.exe'), { kind: 'file', header: { name: 'invoice.txt', magic: 'gnu' }, data: P_NAME.content }]), 'GNU long name .exe, header name .txt');
  arch('tar-pax-path', 'files.tar', tarBuild([paxItem([['path', 'invoice.exe']]), { kind: 'file', header: { name: 'invoice.txt' }, data: P_NAME.content }]), 'pax path=invoice.exe, header invoice.txt');
  arch('tar-pax-path-utf8', 'files.tar', tarBuild([paxItem([['path', 'r\u00e9sum\u00e9.exe']]), { kind: 'file', header: { name: 'resume.txt' }, data: P_NAME.content }]), 'pax UTF-8 path');
  arch('tar-ustar-prefix', 'files.tar', tarBuild([{ kind: 'file', header: { name: 'invoice.exe', prefix: 'some/dir' }, data: P_NAME.content }]), 'ustar prefix + name');
  arch('tar-gnu-longlink-symlink', 'files.tar', tarBuild([{ kind: 'file', header: { name: 'readme.txt' }, data: P_NAME.content }, gnuLongItem('readme.txt', 'K'), { kind: 'file', header: { name: 'invoice.exe', type: '2', linkname: 'readme.txt', magic: 'gnu' }, data: '' }]), 'symlink invoice.exe with a GNU long link');
  arch('gzip-fname', 'report.gz', gzipBuild(P_NAME.content, { name: 'report.exe' }), 'gzip FNAME says .exe');
  arch('gzip-fname-in-tgz-member', 'files.tgz', gzipBuild(tarBuild([{ kind: 'file', header: { name: 'invoice.exe' }, data: P_NAME.content }]), { name: 'files.tar' }), 'tar.gz member .exe');
}

// ---- 8: zip ---------------------------------------------------------------------------------------------

function zipFamily(emit: Emit): void {
  const z = (variant: string, data: Uint8Array, note: string, file = 'files.zip') =>
    emit('zip', variant, 8, mixed('z-' + variant, [attachmentPart(file, Buffer.from(data).toString('latin1'))]), note);
  // EICAR payloads are deflated so a raw scan of the archive bytes cannot see them.
  z('cd-name-differs:name', zipBuild([{ name: 'readme.txt', centralName: 'readme.exe', data: P_NAME.content }]), 'central directory name .exe, local .txt');
  z('local-name-differs:name', zipBuild([{ name: 'readme.exe', centralName: 'readme.txt', data: P_NAME.content }]), 'local name .exe, central .txt');
  z('cd-deflate-local-stored:eicar', zipBuild([{ name: 'notes.txt', data: EICAR, method: 8, localMethod: 0 }]), 'central says deflate, local says stored');
  z('cd-stored-local-deflate:eicar', zipBuild([{ name: 'notes.txt', data: EICAR, method: 0, localMethod: 8 }]), 'central says stored, local says deflate');
  z('cd-encrypted-local-not:eicar', zipBuild([{ name: 'notes.txt', data: EICAR, method: 8, centralFlags: 1 }]), 'central encryption flag only');
  z('local-encrypted-cd-not:eicar', zipBuild([{ name: 'notes.txt', data: EICAR, method: 8, flags: 1, centralFlags: 0 }]), 'local encryption flag only');
  z('local-encrypted-cd-not:name', zipBuild([{ name: 'notes.exe', data: P_NAME.content, method: 8, flags: 1, centralFlags: 0 }]), 'local encryption flag only, banned name');
  for (const p of PAYLOADS) {
    const hiddenName = p.key === 'name' ? 'hidden.exe' : 'hidden.txt';
    const hidden = zipLocalOnly(hiddenName, bytes(p.content), 8);
    const cover = Buffer.concat([Buffer.from('cover text\r\n'), hidden, Buffer.from('\r\nmore cover text\r\n')]);
    const coverHeaderLen = 30 + 'cover.txt'.length;
    z(`hidden-local-header:${p.key}`, zipBuild([{ name: 'cover.txt', data: cover }], { centralOnly: [{ name: hiddenName, method: 8, data: bytes(p.content), offset: coverHeaderLen + 12 }] }), 'an entry only the central directory lists, its local header hidden in another stored entry');
    const evil = zipBuild([{ name: p.key === 'name' ? 'payload.exe' : 'payload.txt', data: p.content, method: 8 }]);
    const benignZip = zipBuild([{ name: 'readme.txt', data: 'nothing to see\r\n', method: 8 }]);
    z(`sfx-junk-before:${p.key}`, Buffer.concat([Buffer.from('#!/bin/sh\necho self-extractor stub\nexit 0\n' + 'x'.repeat(300)), evil]), 'junk before the archive (self-extractor style)');
    z(`second-in-comment:${p.key}`, zipBuild([{ name: 'readme.txt', data: 'nothing to see\r\n', method: 8 }], { comment: evil }), 'a second archive inside the first one\'s comment');
    z(`concatenated:${p.key}`, Buffer.concat([benignZip, evil]), 'a second archive concatenated after the first');
    z(`local-only-entry:${p.key}`, zipBuild([{ name: 'readme.txt', data: 'ok\r\n' }, { name: p.key === 'name' ? 'payload.exe' : 'payload.txt', data: p.content, method: 8, noCentral: true }]), 'an entry missing from the central directory');
    z(`signed-descriptor-deflate:${p.key}`, zipBuild([{ name: p.key === 'name' ? 'payload.exe' : 'payload.txt', data: p.content, method: 8, descriptor: 'signed' }]), 'streamed deflate entry with a signed descriptor');
    z(`duplicate-names:${p.key}`, zipBuild([{ name: 'same.txt', data: 'first\r\n' }, { name: p.key === 'name' ? 'same.exe' : 'same.txt', data: p.content, method: 8 }]), 'two entries with the same or similar names');
  }
  z('stored-unsigned-descriptor:eicar', zipBuild([{ name: 'notes.txt', data: EICAR, method: 0, descriptor: 'unsigned' }]), 'stored entry with an unsigned data descriptor (hostile content)');
}

// ---- 9: tar -------------------------------------------------------------------------------------------------

function tarFamily(emit: Emit): void {
  const t = (variant: string, items: TarItem[], note: string, gz = false) => {
    const tar = tarBuild(items);
    const data = gz ? gzipBuild(tar) : tar;
    emit('tar', variant, 9, mixed('t-' + variant, [attachmentPart(gz ? 'files.tgz' : 'files.tar', data.toString('latin1'))]), note);
  };
  each((p) => {
    const nm = p.key === 'name' ? 'payload.exe' : 'payload.txt';
    t(`v7:${p.key}`, [{ kind: 'file', header: { name: nm, magic: 'v7' }, data: p.content }], 'v7 tar (no ustar magic)');
    t(`v7-gz:${p.key}`, [{ kind: 'file', header: { name: nm, magic: 'v7' }, data: p.content }], 'gzipped v7 tar', true);
    t(`gnu-sparse-S:${p.key}`, [{ kind: 'raw', bytes: Buffer.concat([tarHeader({ name: nm, size: p.content.length, type: 'S', magic: 'gnu', gnuSparse: { entries: [[0, p.content.length]], realSize: p.content.length } }), pad(p.content)]) }], 'old GNU sparse member (S)');
    t(`pax-sparse-0.1:${p.key}`, [paxItem([['GNU.sparse.size', String(p.content.length)], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', `0,${p.content.length}`], ['GNU.sparse.name', nm]]), { kind: 'file', header: { name: 'GNUSparseFile.0/sparse.txt' }, data: p.content }], 'pax sparse 0.1 with GNU.sparse.name');
    const map10 = Buffer.alloc(512);
    map10.write(`1\n0\n${p.content.length}\n`, 'latin1');
    t(`pax-sparse-1.0:${p.key}`, [paxItem([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', nm], ['GNU.sparse.realsize', String(p.content.length)]]), { kind: 'file', header: { name: 'GNUSparseFile.0/sparse.txt' }, data: Buffer.concat([map10, bytes(p.content)]) }], 'pax sparse 1.0 with GNU.sparse.name');
    for (const type of ['V', 'D', 'N', 'M', 'X']) {
      t(`type-${type}:${p.key}`, [{ kind: 'file', header: { name: nm, type, magic: 'gnu' }, data: p.content }], `entry type ${type} carrying data`);
    }
    t(`hardlink:${p.key}`, [{ kind: 'file', header: { name: 'readme.txt' }, data: p.content }, { kind: 'file', header: { name: p.key === 'name' ? 'linked.exe' : 'linked.txt', type: '1', linkname: 'readme.txt' }, data: '' }], 'hard link to a member');
    t(`pax-global-path:${p.key}`, [paxItem([['path', nm]], 'g'), { kind: 'file', header: { name: 'readme.txt' }, data: p.content }], 'pax global header with path=');
    t(`pax-size-override:${p.key}`, [paxItem([['size', String(p.content.length)]]), { kind: 'raw', bytes: Buffer.concat([tarHeader({ name: nm, size: 0 }), pad(p.content)]) }], 'pax size= says there is data, the header says 0');
    t(`gz:${p.key}`, [{ kind: 'file', header: { name: nm }, data: p.content }], 'plain tar.gz', true);
  });
}

function pad(s: string): Buffer {
  const b = Buffer.alloc(Math.ceil(s.length / 512) * 512);
  b.write(s, 'latin1');
  return b;
}

// ---- second round: more variants of classes 1, 2, 5, 7, 8 ------------------------------------

function moreVariants(emit: Emit): void {
  const b = 'b1-more';
  each((p) => {
    const body = multipartBody(b, [textPart(), att(p)]);
    for (const [k, line] of Object.entries({ 'nul-in-value': 'X-Nul: a\x00b', 'whitespace-only-line': '   ', 'cr-in-value': 'X-Cr: a\rb' })) {
      emit('hdr-early', `top-${k}:${p.key}`, 1, message(`hm-${k}`, [line, `Content-Type: multipart/mixed; boundary="${b}"`], body), `top-level header line (${k}) before Content-Type`);
      const part = block([line, `Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${p.name}"`], b64(p.content));
      emit('hdr-early', `part-${k}:${p.key}`, 1, mixed(`hmp-${k}`, [part]), `part-level header line (${k}) before the part's fields`);
    }
    const ct = (variant: string, field: string, note: string, used = b) =>
      emit('conflict', `${variant}:${p.key}`, 2, message('cm-' + variant, [field], multipartBody(used, [textPart(), att(p)])), note);
    ct('type-with-comment', `Content-Type: multipart/mixed (a comment); boundary="${b}"`, 'a comment after the type');
    ct('double-semicolon', `Content-Type: multipart/mixed;; boundary="${b}"`, 'an empty parameter before boundary=');
    ct('boundary-2047-body-decoded', 'Content-Type: multipart/mixed; boundary="=?us-ascii?Q?b1-more?="', 'RFC 2047 encoded boundary; the body uses the decoded value');
    ct('boundary-2047-body-literal', 'Content-Type: multipart/mixed; boundary="=?us-ascii?Q?b1-more?="', 'RFC 2047 encoded boundary; the body uses it literally', '=?us-ascii?Q?b1-more?=');
    ct('boundary-2231', `Content-Type: multipart/mixed; boundary*=us-ascii''b1-more`, 'RFC 2231 encoded boundary');
    ct('boundary-2231-sections', 'Content-Type: multipart/mixed; boundary*0="b1-"; boundary*1="more"', 'boundary in RFC 2231 sections');
    ct('boundary-escaped-quote', 'Content-Type: multipart/mixed; boundary="b1\\"more"', 'boundary with an escaped quote', 'b1"more');
    ct('boundary-folded', `Content-Type: multipart/mixed;\r\n\tboundary=\r\n "${b}"`, 'boundary parameter folded over lines (valid)');
    ct('boundary-case-param', `Content-Type: multipart/mixed; BoUnDaRy="${b}"`, 'mixed-case parameter name (valid)');
    const cteComment = block([`Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64 (encoded)', `Content-Disposition: attachment; filename="${p.name}"`], b64(p.content));
    emit('conflict', `cte-with-comment:${p.key}`, 2, mixed('cm-ctec', [cteComment]), 'CTE value followed by a comment');
    const inner = mixed('inner-more', [att(p)], { boundary: 'b2-more' });
    emit('msgtype', `rfc822-as-attachment:${p.key}`, 5, mixed('mt-att', [block(['Content-Type: message/rfc822; name="fwd.eml"', 'Content-Disposition: attachment; filename="fwd.eml"'], inner)]), 'message/rfc822 with an attachment disposition');
    emit('msgtype', `rfc822-nested-3:${p.key}`, 5, mixed('mt-n3', [block(['Content-Type: message/rfc822'], mixed('n2', [block(['Content-Type: message/rfc822'], inner)], { boundary: 'b3-more' }))]), 'three levels of message/rfc822');
    const nm = p.key === 'name' ? 'payload.exe' : 'payload.txt';
    const z = (variant: string, file: string, data: Uint8Array, note: string) => emit('zip', `${variant}:${p.key}`, 8, mixed('zm-' + variant, [attachmentPart(file, Buffer.from(data).toString('latin1'))]), note);
    z('zip-in-zip', 'outer.zip', zipBuild([{ name: 'inner.zip', data: zipBuild([{ name: nm, data: p.content, method: 8 }]), method: 8 }]), 'a zip inside a zip');
    z('tar-in-zip', 'outer.zip', zipBuild([{ name: 'inner.tar', data: tarBuild([{ kind: 'file', header: { name: nm }, data: p.content }]), method: 8 }]), 'a tar inside a zip');
    z('zip-in-gzip', 'files.zip.gz', gzipBuild(zipBuild([{ name: nm, data: p.content, method: 8 }]), { name: 'files.zip' }), 'a zip inside gzip');
    z('empty-member-name', 'files.zip', zipBuild([{ name: p.key === 'name' ? '.exe' : '', data: p.content, method: 8 }]), 'a member with an empty (or extension-only) name');
    z('descriptor-deflate-cd-only-sizes', 'files.zip', zipBuild([{ name: nm, data: p.content, method: 8, descriptor: 'unsigned' }]), 'deflated entry, unsigned descriptor, sizes only in the central directory');
  });
  const content = b64(P_NAME.content);
  const nameCase = (variant: string, headers: string[], note: string) =>
    emit('names', `${variant}:name`, 7, mixed('nm-' + variant, [block([...headers, 'Content-Transfer-Encoding: base64'], content)]), note);
  const ctype = 'Content-Type: application/octet-stream';
  nameCase('2047-inside-2231', [ctype, `Content-Disposition: attachment; filename*=UTF-8''=?UTF-8?Q?invoice.exe?=`], 'an RFC 2047 word inside an RFC 2231 value');
  nameCase('trailing-tab', [ctype, 'Content-Disposition: attachment; filename="invoice.exe\t"'], 'a tab after the extension');
  nameCase('encoded-crlf', ['Content-Type: application/octet-stream; name="=?UTF-8?Q?invoice.exe=0D=0A.txt?="'], 'an encoded CRLF inside the name');
  nameCase('2231-star-and-sections', [ctype, `Content-Disposition: attachment; filename*=UTF-8''report.pdf; filename*0="invoice"; filename*1=".exe"`], 'filename* beside filename*0/1 sections');
  nameCase('2231-section-0-missing', [ctype, 'Content-Disposition: attachment; filename*1="invoice"; filename*2=".exe"'], 'RFC 2231 sections without section 0');
  nameCase('quoted-2231-value', [ctype, `Content-Disposition: attachment; filename*="UTF-8''invoice.exe"`], 'an RFC 2231 value in quotes');
  nameCase('name-in-ct-and-2231-cd', [`Content-Type: application/octet-stream; name="invoice.exe"`, `Content-Disposition: attachment; filename*=UTF-8''invoice.pdf`], 'banned name= beside an RFC 2231 filename*');
}

// ---- 10 + ordinary: benign controls ----------------------------------------------------------------------

function benignControls(emit: Emit, bz: Buffer[], rnd: () => number): void {
  const ok = (variant: string, cls: number, raw: string | Buffer, note: string) => emit('benign', variant, cls, raw, note, true);
  const text = benignText(3000, 11);
  const pdf = '%PDF-1.4\n' + Buffer.from(Array.from({ length: 4000 }, () => Math.floor(rnd() * 256))).toString('latin1');
  const png = '\x89PNG\r\n\x1a\n' + Buffer.from(Array.from({ length: 2000 }, () => Math.floor(rnd() * 256))).toString('latin1');
  // Class 10: valid files mainstream tools accept.
  ok('gzip-reserved-flag', 10, mixed('bg1', [attachmentPart('minutes.txt.gz', gzipBuild(text, { name: 'minutes.txt', extraFlags: 0x20 }).toString('latin1'))]), 'gzip with a reserved FLG bit');
  ok('bzip2-randomised', 10, mixed('bg2', [attachmentPart('minutes.txt.bz2', bz[2]!.toString('latin1'))]), 'bzip2 block with the randomised bit');
  ok('zip-stored-unsigned-descriptor', 10, mixed('bg3', [attachmentPart('minutes.zip', zipBuild([{ name: 'minutes.txt', data: text, method: 0, descriptor: 'unsigned' }]).toString('latin1'))]), 'stored zip entry with an unsigned data descriptor');
  // Ordinary mail.
  ok('plain-text', 0, message('bp', ['Content-Type: text/plain; charset=us-ascii'], text), 'plain text');
  ok('no-mime', 0, Buffer.from(`From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n${text}\r\n`, 'latin1'), 'no MIME headers at all');
  ok('text-8bit', 0, message('b8', ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'], Buffer.from('Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u00e7a va?\r\n', 'utf8').toString('latin1')), '8-bit UTF-8 text');
  ok('text-qp', 0, message('bq', ['Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable'], 'Gr=FC=DFe, this is a long line that is soft=\r\n broken.\r\n'), 'quoted-printable text');
  ok('alternative', 0, message('ba', ['Content-Type: multipart/alternative; boundary="alt"'], multipartBody('alt', [textPart(text.slice(0, 400)), block(['Content-Type: text/html; charset=us-ascii'], `<html><body><p>${text.slice(0, 400)}</p></body></html>`)])), 'multipart/alternative');
  ok('pdf-attachment', 0, mixed('bpdf', [attachmentPart('report.pdf', pdf, { type: 'application/pdf' })]), 'a PDF-like attachment');
  ok('png-inline', 0, message('bpng', ['Content-Type: multipart/related; boundary="rel"'], multipartBody('rel', [block(['Content-Type: text/html'], '<img src="cid:logo">'), block(['Content-Type: image/png', 'Content-ID: <logo>', 'Content-Transfer-Encoding: base64', 'Content-Disposition: inline; filename="logo.png"'], b64(png))])), 'related HTML with an inline image');
  ok('zip-deflate', 0, mixed('bz', [attachmentPart('docs.zip', zipBuild([{ name: 'a.txt', data: text, method: 8 }, { name: 'dir/b.txt', data: text.slice(0, 500), method: 8 }]).toString('latin1'))]), 'zip with deflated text');
  ok('zip-stored', 0, mixed('bzs', [attachmentPart('docs.zip', zipBuild([{ name: 'a.txt', data: text }]).toString('latin1'))]), 'zip, stored');
  ok('zip-signed-descriptor', 0, mixed('bzd', [attachmentPart('docs.zip', zipBuild([{ name: 'a.txt', data: text, method: 8, descriptor: 'signed' }]).toString('latin1'))]), 'zip with a signed data descriptor');
  ok('zip-with-comment', 0, mixed('bzc', [attachmentPart('docs.zip', zipBuild([{ name: 'a.txt', data: text, method: 8 }], { comment: Buffer.from('archive comment') }).toString('latin1'))]), 'zip with a comment');
  ok('docx-like', 0, mixed('bdx', [attachmentPart('letter.docx', zipBuild([{ name: '[Content_Types].xml', data: '<?xml version="1.0"?><Types/>', method: 8 }, { name: 'word/document.xml', data: `<w:document>${text}</w:document>`, method: 8 }]).toString('latin1'), { type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' })]), 'an Office Open XML document');
  ok('tar', 0, mixed('bt', [attachmentPart('docs.tar', tarBuild([{ kind: 'file', header: { name: 'a.txt' }, data: text }, { kind: 'file', header: { name: 'sub/', type: '5' }, data: '' }]).toString('latin1'))]), 'ustar with a directory');
  ok('tar-gnu', 0, mixed('btg', [attachmentPart('docs.tar', tarBuild([{ kind: 'file', header: { name: 'a.txt', magic: 'gnu' }, data: text }]).toString('latin1'))]), 'GNU tar');
  ok('tgz', 0, mixed('btgz', [attachmentPart('docs.tar.gz', gzipBuild(tarBuild([{ kind: 'file', header: { name: 'a.txt' }, data: text }]), { name: 'docs.tar' }).toString('latin1'))]), 'tar.gz');
  ok('gzip-text', 0, mixed('bgz', [attachmentPart('log.txt.gz', gzipBuild(text, { name: 'log.txt' }).toString('latin1'))]), 'gzip of text');
  ok('bzip2-text', 0, mixed('bbz', [attachmentPart('log.txt.bz2', bz[0]!.toString('latin1'))]), 'bzip2 of text');
  ok('nested-message', 0, mixed('bn', [block(['Content-Type: message/rfc822', 'Content-Disposition: attachment; filename="fwd.eml"'], mixed('inner', [attachmentPart('a.txt', text, { type: 'text/plain' })], { boundary: 'inner-b' }))]), 'forwarded message with an attachment');
  ok('digest', 0, message('bd', ['Content-Type: multipart/digest; boundary="dig"'], multipartBody('dig', [CRLF + message('d1', ['Content-Type: text/plain'], 'first'), CRLF + message('d2', ['Content-Type: text/plain'], 'second')])), 'multipart/digest');
  ok('uuencoded-text-file', 0, message('bu', ['Content-Type: text/plain'], `See below.\r\n\r\n${uuencode(text.slice(0, 300), 'begin 644 notes.txt')}\r\n`), 'uuencoded .txt inside a text body');
  ok('rfc2231-name', 0, mixed('b2231', [block(['Content-Type: application/pdf', `Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`, 'Content-Transfer-Encoding: base64'], b64(pdf))]), 'RFC 2231 non-ASCII .pdf name');
  ok('rfc2047-name', 0, mixed('b2047', [block(['Content-Type: application/pdf; name="=?UTF-8?B?w7xiZXJzaWNodC5wZGY=?="', 'Content-Transfer-Encoding: base64'], b64(pdf))]), 'RFC 2047 .pdf name');
  ok('rfc2231-continued', 0, mixed('b2231c', [block(['Content-Type: application/pdf', 'Content-Disposition: attachment; filename*0="very-long-report-name-"; filename*1="part-two.pdf"', 'Content-Transfer-Encoding: base64'], b64(pdf))]), 'RFC 2231 continuation, .pdf');
  ok('lf-only', 0, mixed('blf', [attachmentPart('a.pdf', pdf, { eol: '\n' })], { eol: '\n' }).replace(/\r\n/g, '\n'), 'LF-only line ends');
  ok('long-lines', 0, message('bll', ['Content-Type: text/plain'], 'x'.repeat(5000) + CRLF + 'y'.repeat(20000) + CRLF), 'very long text lines');
  ok('many-parts', 0, mixed('bmp', Array.from({ length: 25 }, (_, i) => attachmentPart(`part${i}.txt`, `part ${i}\r\n`, { type: 'text/plain' }))), '25 small attachments');
  ok('empty-attachment', 0, mixed('be', [attachmentPart('empty.txt', '', { type: 'text/plain' })]), 'an empty attachment');
  ok('nameless-attachment', 0, mixed('bnl', [attachmentPart(null, pdf)]), 'an attachment without a name');
  ok('calendar', 0, mixed('bcal', [block(['Content-Type: text/calendar; method=REQUEST; charset=utf-8', 'Content-Disposition: attachment; filename="invite.ics"'], 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR')]), 'calendar invite');
  ok('signed', 0, message('bsig', ['Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"'], multipartBody('sig', [textPart(text.slice(0, 300)), attachmentPart('smime.p7s', png.slice(8, 900), { type: 'application/pkcs7-signature' })])), 'S/MIME signed');
  ok('eml-attachment-base64', 0, mixed('beml', [attachmentPart('old.eml', message('old', ['Content-Type: text/plain'], text.slice(0, 500)), { type: 'message/rfc822' })]), 'message/rfc822 attachment (base64)');
  ok('csv-qp', 0, mixed('bcsv', [block(['Content-Type: text/csv; name="figures.csv"', 'Content-Transfer-Encoding: quoted-printable', 'Content-Disposition: attachment; filename="figures.csv"'], 'a,b,c\r\n1,2,3=\r\n4\r\n')]), 'CSV in quoted-printable');
  ok('mixed-line-ends-text', 0, message('bmx', ['Content-Type: text/plain'], 'line one\r\nline two\nline three\r\n'), 'mixed CRLF/LF in a text body');
  ok('attachment-named-like-exe-text', 0, mixed('bex', [attachmentPart('exercise.pdf', pdf)]), '"exe" inside a harmless name');
  ok('dup-harmless-headers', 0, message('bdup', ['Subject: again', 'Content-Type: text/plain', 'Content-Type: text/plain'], text.slice(0, 200)), 'two identical Content-Type fields');
  ok('html-only', 0, message('bh', ['Content-Type: text/html; charset=utf-8'], `<html><body>${text.slice(0, 800)}</body></html>`), 'HTML only');
  ok('preamble-epilogue', 0, mixed('bpe', [attachmentPart('a.pdf', pdf)], { preamble: 'Preamble text here.', epilogue: 'Epilogue text here.' }), 'multipart with preamble and epilogue');
}
