/**
 * smtp.ts — the lab sink's SMTP side (smtp-server, the library the tests' sink uses too):
 * accepts every message from anyone and stores it.
 *
 * Input: SMTP from the lab's MTAs (Postfix relayhost, Sendmail SMART_HOST).
 * Output: MailStore records; the reply to the final dot is `250 Ok: queued as SINK<id>`.
 * Limits: messages over `maxMessageBytes` get 552 and are not stored (SIZE is advertised).
 * Errors: a connection cut mid-DATA stores nothing.
 * Gaps: no TLS, no AUTH (the lab's MTAs use neither towards the sink).
 */
import { SMTPServer } from 'smtp-server';
import type { MailStore } from './store.js';

export interface SinkSmtpOptions {
  host: string;
  port: number;
  maxMessageBytes: number;
}

export async function startSinkSmtp(store: MailStore, opts: SinkSmtpOptions): Promise<SMTPServer> {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    size: opts.maxMessageBytes,
    logger: false,
    banner: 'midstream lab sink',
    onData(stream, session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        if (!stream.sizeExceeded) parts.push(c);
      });
      stream.on('error', () => {});
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          const e = new Error('message too big for the lab sink') as Error & { responseCode: number };
          e.responseCode = 552;
          cb(e);
          return;
        }
        const rec = store.add({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          helo: session.hostNameAppearsAs ?? '',
          remoteAddress: session.remoteAddress,
          raw: Buffer.concat(parts),
        });
        cb(null, `Ok: queued as SINK${rec.id}`);
      });
    },
  });
  server.on('error', (e) => process.stderr.write(`sink: smtp: ${String(e)}\n`));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}
