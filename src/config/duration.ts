/**
 * duration.ts — parse and print human durations: "250ms", "90s", "5m", "1h", "1.5s", "2d".
 *
 * parseDuration returns whole milliseconds. A unit is required (a bare number is
 * ambiguous: seconds or milliseconds?), except for 0. Throws RangeError with a
 * reason; the schema turns it into a ConfigError naming the key.
 * formatDuration picks the largest unit that represents the value exactly.
 */
const UNITS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
});

const RE = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)$/;

/** "90s" → 90000. Accepts the number 0 and the string "0". Throws RangeError otherwise-invalid. */
export function parseDuration(v: unknown): number {
  if (v === 0 || v === '0') return 0;
  if (typeof v === 'number') throw new RangeError('a duration needs a unit, e.g. "90s", "5m", "250ms"');
  if (typeof v !== 'string') throw new RangeError('must be a duration string like "90s"');
  const m = RE.exec(v.trim());
  if (!m) throw new RangeError('must be a duration like "250ms", "90s", "5m", "1h" or "1d"');
  const ms = Math.round(Number(m[1]) * UNITS[m[2]!]!);
  if (!Number.isSafeInteger(ms)) throw new RangeError('duration is too large');
  return ms;
}

/** 90000 → "90s", 300000 → "5m", 1500 → "1500ms", 0 → "0s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const u of ['d', 'h', 'm', 's'] as const) {
    const f = UNITS[u]!;
    if (ms % f === 0) return `${ms / f}${u}`;
  }
  return `${ms}ms`;
}
