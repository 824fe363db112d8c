/**
 * cidr.ts — IPv4/IPv6 address and CIDR parsing and matching, no dependencies.
 *
 * parseIp("10.1.2.3") → 4 bytes, parseIp("2001:db8::1") → 16 bytes, else null.
 * IPv4-mapped IPv6 ("::ffff:10.1.2.3", as Node reports v4 peers on dual-stack
 * sockets) is matched as the IPv4 address it carries; a zone ("fe80::1%eth0") is
 * ignored. parseCidr accepts "a.b.c.d/n", "v6/n" and a bare address (a host
 * route). Host bits beyond the prefix are masked off, not rejected ("10.1.2.3/8"
 * means 10.0.0.0/8, the obvious intent). Throws RangeError with a reason on bad input.
 */
export interface Cidr {
  readonly text: string;
  readonly bytes: Uint8Array; // 4 or 16, already masked
  readonly prefix: number;
}

function parseV4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^[0-9]{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(s: string): Uint8Array | null {
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.length === 0 || s.length > 45) return null;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return null;
  const groups: number[] = [];
  const parseSide = (side: string, allowV4Tail: boolean): number[] | null => {
    if (side === '') return [];
    const out: number[] = [];
    const items = side.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (allowV4Tail && i === items.length - 1 && it.includes('.')) {
        const v4 = parseV4(it);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return null;
      out.push(parseInt(it, 16));
    }
    return out;
  };
  if (dbl >= 0) {
    const head = parseSide(s.slice(0, dbl), false);
    const tail = parseSide(s.slice(dbl + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    const all = parseSide(s, true);
    if (!all || all.length !== 8) return null;
    groups.push(...all);
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** 4 or 16 bytes, or null when `s` is not an IP address. Brackets ("[::1]") are accepted. */
export function parseIp(s: string): Uint8Array | null {
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.includes(':')) return parseV6(s);
  return parseV4(s);
}

function isV4Mapped(b: Uint8Array): boolean {
  if (b.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function mask(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i]! &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/** "10.0.0.0/8", "::1/128", "192.0.2.7" (= /32). Throws RangeError with a reason. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new RangeError('must be a CIDR string like "10.0.0.0/8"');
  const slash = text.indexOf('/');
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  const ip = parseIp(addr);
  if (!ip) throw new RangeError('not an IPv4 or IPv6 address/prefix');
  const max = ip.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) throw new RangeError(`prefix length must be 0..${max}`);
    prefix = Number(p);
  }
  return Object.freeze({ text, bytes: mask(ip, prefix), prefix });
}

/** True when `address` (text, possibly v4-mapped v6) lies inside `cidr`. Unparseable address → false. */
export function cidrContains(cidr: Cidr, address: string): boolean {
  let ip = parseIp(address);
  if (!ip) return false;
  if (cidr.bytes.length === 4 && isV4Mapped(ip)) ip = ip.subarray(12);
  if (ip.length !== cidr.bytes.length) return false;
  const m = mask(ip, cidr.prefix);
  for (let i = 0; i < m.length; i++) if (m[i] !== cidr.bytes[i]) return false;
  return true;
}

/** True when any of `cidrs` contains `address`. */
export function anyCidrContains(cidrs: readonly Cidr[], address: string | undefined): boolean {
  if (!address) return false;
  return cidrs.some((c) => cidrContains(c, address));
}
