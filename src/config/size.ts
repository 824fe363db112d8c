/**
 * size.ts — parse and print byte sizes: 1024, "64k", "25MiB", "1GiB", "10MB", "512B".
 *
 * Units: B; k/K, KiB, m/M, MiB, g/G, GiB, t/T, TiB are binary (×1024, as clamd.conf
 * and Postfix admins expect "64k" to mean 65536); KB, MB, GB, TB are decimal (×1000).
 * A bare integer (TOML integer or digit string) is bytes. Result must be a safe integer.
 * Throws RangeError with a reason; the schema turns it into a ConfigError naming the key.
 */
const UNITS: Readonly<Record<string, number>> = Object.freeze({
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
});

const RE = /^([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)$/;

/** "25MiB" → 26214400. Throws RangeError for negatives, fractions of a byte, unknown units. */
export function parseSize(v: unknown): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('a size must be a non-negative whole number of bytes');
    return v;
  }
  if (typeof v !== 'string') throw new RangeError('must be a size like "64KiB", "25MiB" or a number of bytes');
  const m = RE.exec(v.trim());
  if (!m) throw new RangeError('must be a size like "64KiB", "25MiB", "1GiB" or a number of bytes');
  const unit = m[2]!.toLowerCase();
  const f = UNITS[unit];
  if (f === undefined) throw new RangeError(`unknown size unit "${m[2]}" (use B, KiB, MiB, GiB, k, M, G, KB, MB, GB)`);
  const n = Number(m[1]) * f;
  if (!Number.isInteger(n)) throw new RangeError('a size must be a whole number of bytes');
  if (!Number.isSafeInteger(n)) throw new RangeError('size is too large');
  return n;
}

/** 65536 → "64KiB", 26214400 → "25MiB", 1000 → "1000", 0 → "0". */
export function formatSize(n: number): string {
  if (n === 0) return '0';
  for (const [u, f] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n % f === 0) return `${n / f}${u}`;
  }
  return String(n);
}
