/**
 * name-glob.ts — glob patterns for banned file names and declared MIME types.
 *
 * Input: admin-written patterns (`*.pdf.exe`, `invoice*.zip`, `application/x-ms*`) and a
 * subject string (a normalised file name, a lower-case MIME type). Output: the first
 * pattern that matches, or null.
 * Syntax: `*` any run of characters (dots and slashes included: names are single path
 * components here), `?` one character, `[abc]` / `[a-z]` / `[!a]` one character of a set;
 * `\x` a literal x. Case-insensitive. No braces, no `**`: there are no paths to walk.
 * Limits: patterns are 1–200 characters; matching is the two-pointer glob walk with one
 * backtrack point, O(pattern × subject) in the worst case, never exponential (a regex
 * built from `*a*a*a*b` could backtrack exponentially on a 64 KiB zip member name).
 * Errors: compileGlob throws RangeError(reason) for an empty, overlong or unbalanced
 * pattern (the config layer adds the key).
 * Why our own: picomatch/minimatch compile to regular expressions with path semantics
 * (`*` stops at `/`) that file names inside archives must not have.
 */

type Token = { t: 'lit'; c: string } | { t: 'any' } | { t: 'one' } | { t: 'set'; neg: boolean; ranges: [string, string][] };

export interface Glob {
  readonly source: string;
  matches(subject: string): boolean;
}

const MAX_PATTERN = 200;

export function compileGlob(pattern: string): Glob {
  if (pattern.length === 0) throw new RangeError('empty pattern');
  if (pattern.length > MAX_PATTERN) throw new RangeError(`pattern longer than ${MAX_PATTERN} characters`);
  const p = pattern.toLowerCase();
  const tokens: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\') {
      if (i + 1 >= p.length) throw new RangeError('pattern ends with a lone backslash');
      tokens.push({ t: 'lit', c: p[++i]! });
    } else if (c === '*') {
      // Runs of stars are one star.
      if (tokens.at(-1)?.t !== 'any') tokens.push({ t: 'any' });
    } else if (c === '?') tokens.push({ t: 'one' });
    else if (c === '[') {
      let j = i + 1;
      const neg = p[j] === '!' || p[j] === '^';
      if (neg) j++;
      const ranges: [string, string][] = [];
      // A "]" right after "[" or "[!" is a member, as in fnmatch.
      let first = true;
      for (; j < p.length && (p[j] !== ']' || first); j++) {
        first = false;
        const lo = p[j]!;
        if (p[j + 1] === '-' && j + 2 < p.length && p[j + 2] !== ']') {
          const hi = p[j + 2]!;
          if (hi < lo) throw new RangeError(`bad range ${lo}-${hi} in [...]`);
          ranges.push([lo, hi]);
          j += 2;
        } else ranges.push([lo, lo]);
      }
      if (j >= p.length) throw new RangeError('unclosed [ in pattern');
      tokens.push({ t: 'set', neg, ranges });
      i = j;
    } else tokens.push({ t: 'lit', c });
  }
  return Object.freeze({ source: pattern, matches: (subject: string) => match(tokens, subject.toLowerCase()) });
}

function one(tok: Token, ch: string): boolean {
  switch (tok.t) {
    case 'lit':
      return tok.c === ch;
    case 'one':
      return true;
    case 'set': {
      const hit = tok.ranges.some(([lo, hi]) => ch >= lo && ch <= hi);
      return hit !== tok.neg;
    }
    case 'any':
      return false;
  }
}

/** The classic wildcard walk: on a mismatch, go back to the last star and let it eat one more character. */
function match(tokens: readonly Token[], s: string): boolean {
  let ti = 0;
  let si = 0;
  let starT = -1;
  let starS = 0;
  while (si < s.length) {
    const tok = tokens[ti];
    if (tok && tok.t === 'any') {
      starT = ti++;
      starS = si;
    } else if (tok && one(tok, s[si]!)) {
      ti++;
      si++;
    } else if (starT >= 0) {
      ti = starT + 1;
      si = ++starS;
    } else return false;
  }
  while (ti < tokens.length && tokens[ti]!.t === 'any') ti++;
  return ti === tokens.length;
}

/** A list of globs; `first(subject)` is the first pattern that matches, or null. */
export class GlobList {
  private readonly globs: readonly Glob[];
  constructor(patterns: readonly string[]) {
    this.globs = Object.freeze(patterns.map(compileGlob));
  }
  get size(): number {
    return this.globs.length;
  }
  get patterns(): readonly string[] {
    return this.globs.map((g) => g.source);
  }
  first(subject: string): string | null {
    for (const g of this.globs) if (g.matches(subject)) return g.source;
    return null;
  }
}

export const NO_GLOBS = new GlobList([]);
