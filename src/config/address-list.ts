/**
 * address-list.ts — lists of envelope addresses as admins write them, and their matching:
 * `user@example.org` (one address), `example.org` or `@example.org` (that domain),
 * `.example.org` (the domain and its subdomains), `<>` (the null sender), and, where the
 * list is about senders, a CIDR or IP (`192.0.2.0/24`: the sending client's address).
 *
 * Input: list items (validated and normalised by checkAddressItem: lower case, no angle
 * brackets), an address as it arrives (`<User@Example.ORG>` or bare) and the client's IP.
 * Output: does any item match. Comparison is case-insensitive for the whole address
 * (mail systems treat local parts case-insensitively in practice; amavisd-new's lookups do).
 * Errors: checkAddressItem throws RangeError(reason).
 * Gaps: IDNs must be written in A-label (xn--) form; no regular expressions.
 */
import { isHostname } from '../core/address.js';
import { anyCidrContains, parseCidr, type Cidr } from './cidr.js';

export interface CompiledAddressList {
  readonly addresses: ReadonlySet<string>;
  /** Exact domains. */
  readonly domains: ReadonlySet<string>;
  /** ".example.org" items, stored without the leading dot. */
  readonly suffixes: readonly string[];
  readonly cidrs: readonly Cidr[];
  readonly nullSender: boolean;
}

const looksLikeIp = (s: string) => /^[0-9a-f:.]+(\/[0-9]{1,3})?$/i.test(s) && (s.includes(':') || /^[0-9.]+(\/[0-9]{1,3})?$/.test(s));

/** Validate and normalise one item. `cidr`: IPs/CIDRs allowed (sender lists: the client's address). */
export function checkAddressItem(raw: string, cidr: boolean): string {
  const s = raw.trim().toLowerCase();
  if (s === '<>') return s;
  if (cidr && looksLikeIp(s)) {
    parseCidr(s);
    return s;
  }
  const t = s.replace(/^<(.*)>$/, '$1');
  const at = t.lastIndexOf('@');
  if (at > 0) {
    const domain = t.slice(at + 1).replace(/\.$/, '');
    if (!/^[\x21-\x7e]{1,64}$/.test(t.slice(0, at))) throw new RangeError('not an address: bad local part');
    if (!isHostname(domain)) throw new RangeError('not an address: bad domain');
    return `${t.slice(0, at)}@${domain}`;
  }
  const d = (at === 0 ? t.slice(1) : t).replace(/\.$/, '');
  const bare = d.startsWith('.') ? d.slice(1) : d;
  if (bare === '' || !isHostname(bare)) throw new RangeError(cidr ? 'not an address, domain, ".domain", "<>" or CIDR' : 'not an address, domain, ".domain" or "<>"');
  return d;
}

export function compileAddressList(items: readonly string[]): CompiledAddressList {
  const addresses = new Set<string>();
  const domains = new Set<string>();
  const suffixes: string[] = [];
  const cidrs: Cidr[] = [];
  let nullSender = false;
  for (const i of items) {
    if (i === '<>') nullSender = true;
    else if (looksLikeIp(i)) cidrs.push(parseCidr(i));
    else if (i.includes('@')) addresses.add(i);
    else if (i.startsWith('.')) suffixes.push(i.slice(1));
    else domains.add(i);
  }
  return Object.freeze({ addresses, domains, suffixes: Object.freeze(suffixes), cidrs: Object.freeze(cidrs), nullSender });
}

/** "<User@Example.ORG.>" → "user@example.org"; "<>" → "". */
export function normaliseAddress(a: string): string {
  return a.trim().replace(/^<(.*)>$/, '$1').toLowerCase().replace(/\.$/, '');
}

/** Does the list match this envelope address (and, for CIDR items, this client address)? */
export function addressListMatches(l: CompiledAddressList, address: string | undefined, client?: string): boolean {
  if (l.cidrs.length > 0 && anyCidrContains(l.cidrs, client)) return true;
  if (address === undefined) return false;
  const a = normaliseAddress(address);
  if (a === '') return l.nullSender;
  if (l.addresses.has(a)) return true;
  const at = a.lastIndexOf('@');
  if (at < 0 || at === a.length - 1) return false;
  const d = a.slice(at + 1);
  if (l.domains.has(d)) return true;
  return l.suffixes.some((s) => d === s || d.endsWith('.' + s));
}
