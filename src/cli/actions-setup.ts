/**
 * actions-setup.ts — [headers] and [notify] from the config into what the fronts take:
 * HeaderSettings (X-Virus-Scanned expanded with our version and host name) and a Notifier
 * (or null when no relay is configured).
 *
 * Errors: a bad relay address is caught by the config schema first; createNotifier only
 * builds the transport (nodemailer connects lazily, so a relay that is down costs nothing
 * until the first notice, which then fails, is logged and counted).
 */
import { hostname as osHostname } from 'node:os';
import type { FrozenConfig } from '../config/load-config.js';
import { parseAddress } from '../core/index.js';
import { expandScanned, type HeaderSettings } from '../actions/message-edits.js';
import { Notifier } from '../actions/notifier.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { VERSION } from '../version.js';

/** The host name we call ourselves in headers and notices. */
export function ourHostname(c: FrozenConfig): string {
  return c.headers.hostname || c.proxy.hostname || osHostname();
}

export function headerSettings(c: FrozenConfig): HeaderSettings {
  const h = c.headers;
  return Object.freeze({
    scanned: h.scanned === '' ? '' : expandScanned(h.scanned, { version: VERSION, hostname: ourHostname(c) }),
    status: h.status,
    incoming: h.incoming,
    subjectPrefix: h.subjectPrefix,
  });
}

/** A Notifier for `c`, or null when [notify] relay is "" (or nobody would be notified). */
export function createNotifier(c: FrozenConfig, logger: Logger, metrics: Metrics | null): Notifier | null {
  const n = c.notify;
  if (n.relay === '' || (n.admin.length === 0 && !n.recipients && !n.sender)) return null;
  const relay = parseAddress(n.relay, 'connect');
  if (relay.kind !== 'tcp') throw new RangeError('notify.relay must be host:port');
  const host = ourHostname(c);
  return new Notifier(
    {
      relay: { host: relay.host, port: relay.port },
      from: n.from || `midstream <postmaster@${host}>`,
      envelopeFrom: n.envelopeFrom,
      admin: n.admin,
      recipients: n.recipients,
      sender: n.sender,
      on: n.on,
      maxPerMinute: n.maxPerMinute,
      queueSize: n.queue,
      timeoutMs: n.timeoutMs,
      hostname: host,
    },
    logger,
    metrics ? (r, target) => metrics.notice(r, target) : undefined,
  );
}
