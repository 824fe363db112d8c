/**
 * names.ts — every name a mail client could give a MIME part, for the banned checks.
 *
 * Input: the raw values (latin1 strings, bounded by the header-line limit) of every
 * Content-Disposition and Content-Type field of one entity, plus name-bearing headers
 * some clients use (Content-Name, X-Sun-Data-Name). Output: distinct candidate names,
 * at most MAX_NAMES.
 *
 * Clients disagree, so we take them all (tested against Python's email and mailparser):
 * - sources: `filename` and `name` from either header (Exchange once sent `filename` on
 *   Content-Type), every occurrence (first and last win in different clients);
 * - RFC 2231: `name*`, and `name*N[*]` sections assembled three ways: stopping at the
 *   first gap (Python's default policy), sorted with gaps ignored and any count of
 *   sections (compat32, mailparser), and with every section percent-decoded (mailparser);
 *   a plain value beside an RFC 2231 one is a candidate too (which wins differs);
 * - RFC 2047 words decoded and left encoded (clients that don't decode them);
 * - bytes decoded in each plausible charset (charsetVariants: declared, unmarked
 *   UTF-16/32 both ways, UTF-8, windows-1252; UTF-7 is decoded);
 * - each candidate also cut at its first NUL (C clients stop there: `a.exe\0.txt` is a.exe),
 *   CR or LF (line-based readers: ripmime).
 * Never throws. Gaps: charsets outside Node's ICU + UTF-7/32 are read as the fallbacks.
 */
import { rawParams } from './header-parse.js';
import { charsetVariants, latin1Bytes, rawHeaderText } from './charset.js';
import { decodeEncodedWords } from './rfc2047.js';
import { percentDecode, splitExtended } from './rfc2231.js';

const MAX_NAMES = 32;
const MAX_SECTIONS = 10_000;
const BASES = ['filename', 'name'] as const;
/** A parameter written without the `;` before it: `application/x; name="a.exe"` minus the `;`. */
const LOOSE = /(?:^|[\s;])((?:file)?name)(\*\d*\*?)?[ \t]*=[ \t]*("([^"]*)"?|[^\s;"]+)/gi;

interface Section {
  n: number;
  value: string;
  ext: boolean;
}

export class NameCollector {
  private readonly out: string[] = [];

  /** All candidates so far, the primary-looking ones first. */
  get names(): string[] {
    return this.out;
  }

  /** A structured header (Content-Disposition / Content-Type) value. */
  addStructured(v: string): void {
    const raw = rawParams(v);
    LOOSE.lastIndex = 0;
    for (let m = LOOSE.exec(v); m; m = LOOSE.exec(v)) raw.push([m[1]! + (m[2] ?? ''), m[4] ?? m[3]!]);
    for (const base of BASES) this.fromParams(base, raw);
  }

  /** A header whose whole value is a name (Content-Name, X-Sun-Data-Name, Content-Location: its path). */
  addPlain(v: string): void {
    const t = v.trim();
    this.plain(t);
    const path = t.split(/[?#]/, 1)[0]!;
    if (path !== t) this.plain(path);
  }

  add(name: string): void {
    if (this.out.length >= MAX_NAMES || name === '' || this.out.includes(name)) return;
    this.out.push(name);
    // C clients stop at NUL; line-based ones (ripmime) at an (encoded) CR or LF
    const cut = name.search(/[\0\r\n]/);
    if (cut > 0 && this.out.length < MAX_NAMES && !this.out.includes(name.slice(0, cut))) this.out.push(name.slice(0, cut));
  }

  private plain(v: string): void {
    if (v === '') return;
    this.add(decodeEncodedWords(v));
    this.add(rawHeaderText(v));
    if (v.indexOf('=?') >= 0) {
      this.add(decodeEncodedWords(v, 'utf-8'));
      this.add(decodeEncodedWords(v, 'windows-1252'));
    }
    for (const s of charsetVariants(latin1Bytes(v), undefined)) this.add(s);
  }

  private bytes(b: Uint8Array, charset: string | undefined): void {
    for (const s of charsetVariants(b, charset)) {
      this.add(s);
      if (s.indexOf('=?') >= 0) this.add(decodeEncodedWords(s));
    }
  }

  private fromParams(base: string, raw: readonly [string, string][]): void {
    const sections: Section[] = [];
    for (const [rawName, value] of raw) {
      const name = rawName.trim().toLowerCase();
      if (name === base) this.plain(value);
      else if (name === base + '*') {
        const { charset, data } = splitExtended(value);
        this.bytes(percentDecode(data), charset);
      } else if (name.startsWith(base + '*') && sections.length < MAX_SECTIONS) {
        const m = /^\*(\d+)(\*)?$/.exec(name.slice(base.length));
        if (m) sections.push({ n: Number(m[1]), value, ext: m[2] === '*' });
      }
    }
    if (sections.length === 0) return;
    // (a) in order from 0, stopping at the first gap, first occurrence of each number
    const byNum = new Map<number, Section>();
    for (const s of sections) if (!byNum.has(s.n)) byNum.set(s.n, s);
    const run: Section[] = [];
    for (let i = 0; byNum.has(i); i++) run.push(byNum.get(i)!);
    // (b) every section, sorted, gaps ignored
    const all = [...byNum.values()].sort((x, y) => x.n - y.n);
    for (const list of [run, all]) {
      if (list.length === 0) continue;
      let charset: string | undefined;
      const parts: Uint8Array[] = [];
      const allPct: Uint8Array[] = [];
      list.forEach((s, k) => {
        let data = s.value;
        if (k === 0 && s.ext) ({ charset, data } = splitExtended(s.value));
        parts.push(s.ext ? percentDecode(data) : latin1Bytes(data));
        allPct.push(percentDecode(data));
      });
      this.bytes(Buffer.concat(parts), charset);
      // (c) mailparser percent-decodes the plain sections of an extended value too
      if (charset !== undefined) this.bytes(Buffer.concat(allPct), charset);
    }
  }
}

