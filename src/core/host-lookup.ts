/**
 * host-lookup.ts — the `lookup` every outgoing connect by host name uses (clamd endpoints,
 * the downstream MTA, Redis, the POP3 upstream): one resolver call per name at a time,
 * and a name that resolved before is not held up by a resolver that has gone slow.
 *
 * Why: dns.lookup runs getaddrinfo on libuv's thread pool, and libuv lets DNS work use
 * only half of it — 2 threads by default. A thread stays busy until the resolver gives
 * up: measured 10–20 s per lookup for a stopped service in Docker where the upstream DNS
 * is silent. In the fleet lab one stopped clamd and a stopped Redis (health checks, scans
 * and reconnects to two dead names) took both DNS threads, so lookups of the healthy
 * clamd and of the downstream MTA queued behind them and every message got 451.
 *
 * What it does, per (host name, lookup options):
 * - coalesces: while a lookup is pending, further callers join it (a dead name holds one
 *   thread, not one per connect attempt);
 * - serves the last good answer at once when it is at most `staleMs` old (30 s), and
 *   refreshes it in the background (joining a pending refresh). Connects to a name that
 *   resolved lately so never wait for the resolver; an address change is seen one
 *   connect later;
 * - forgets the answer when a lookup fails, so a name that stopped resolving fails (after
 *   its lookup) instead of being connected to at its old address for long.
 * Input: what net passes a `lookup` (hostname, dns.LookupOptions — `all: true` under
 * autoSelectFamily — callback). Output: the callback gets (err, address(es), family) as
 * dns.lookup gives them, always asynchronously. Limits: one pending lookup and one answer
 * per distinct (name, options): the configuration's names. Errors: the lookup's, unchanged,
 * to every caller waiting on it. Gaps: no deadline of its own (each connect's timeout
 * bounds its wait); a name never resolved before still waits behind a stalled resolver.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';

export type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type LookupFn = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

export interface HostLookupOptions {
  /** Serve a previous answer up to this old (ms) while its refresh is pending. */
  staleMs?: number;
  now?: () => number;
}

export interface HostLookup extends LookupFn {
  /** Lookups now pending (tests, diagnostics). */
  pending(): number;
}

export function createHostLookup(resolve: LookupFn, o: HostLookupOptions = {}): HostLookup {
  const staleMs = o.staleMs ?? 30_000;
  const now = o.now ?? Date.now;
  const pending = new Map<string, LookupCallback[]>();
  const answers = new Map<string, { address: string | LookupAddress[]; family: number | undefined; at: number }>();

  const lookup = ((hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    const key = `${hostname}\0${JSON.stringify(options ?? {})}`;
    const last = answers.get(key);
    const served = last !== undefined && now() - last.at <= staleMs;
    if (served) process.nextTick(callback, null, last.address, last.family);
    const waiting = pending.get(key);
    if (waiting) {
      if (!served) waiting.push(callback);
      return;
    }
    const waiters: LookupCallback[] = served ? [] : [callback];
    pending.set(key, waiters);
    resolve(hostname, options, (err, address, family) => {
      pending.delete(key);
      if (err) answers.delete(key);
      else answers.set(key, { address, family, at: now() });
      for (const cb of waiters) cb(err, address, family);
    });
  }) as HostLookup;
  lookup.pending = () => pending.size;
  return lookup;
}

/** The process-wide instance, over dns.lookup (getaddrinfo: /etc/hosts, nsswitch, DNS). */
export const hostLookup: HostLookup = createHostLookup(dnsLookup as LookupFn);
