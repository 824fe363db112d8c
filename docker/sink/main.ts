/**
 * main.ts — the lab sink: `node dist/docker/sink/main.js`. Every mail the lab's MTAs
 * accept ends here; a web view and a JSON API show what arrived (docker/sink/http.ts).
 *
 * Input (env): SINK_SMTP_LISTEN (default 0.0.0.0:1025), SINK_HTTP_LISTEN (0.0.0.0:8025),
 *   SINK_MAX_MESSAGES (1000), SINK_MAX_BYTES (268435456, all stored mails together),
 *   SINK_MAX_MESSAGE_BYTES (52428800, one mail).
 * Output: one line on stdout per stored mail (id, from, size, verdict headers) — never
 *   the body; a start line naming both listeners.
 * Errors: a bad setting or a busy port exits 2 with the reason. SIGTERM/SIGINT close both
 *   listeners and exit 0 (as PID 1 in a container Node would otherwise ignore them).
 * Gaps: a lab tool, not a product part: memory only, no auth, no TLS.
 */
import { MailStore } from './store.js';
import { startSinkSmtp } from './smtp.js';
import { createSinkHttp } from './http.js';

function hostPort(name: string, def: string): { host: string; port: number } {
  const v = process.env[name] || def;
  const m = /^(.*):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new Error(`${name}: want HOST:PORT, got ${JSON.stringify(v)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(m[2]) };
}

function positive(name: string, def: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? def : Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}: want a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

async function main(): Promise<void> {
  const smtpAt = hostPort('SINK_SMTP_LISTEN', '0.0.0.0:1025');
  const httpAt = hostPort('SINK_HTTP_LISTEN', '0.0.0.0:8025');
  const limits = { maxMessages: positive('SINK_MAX_MESSAGES', 1000), maxBytes: positive('SINK_MAX_BYTES', 256 * 1024 * 1024) };
  const store = new MailStore(limits, (rec) => {
    const verdict = rec.verdict.map((h) => `${h.name}: ${h.value}`).join('; ') || '-';
    process.stdout.write(`sink: stored #${rec.id} from=<${rec.from}> size=${rec.size} verdict=${JSON.stringify(verdict)}\n`);
  });
  const smtp = await startSinkSmtp(store, { ...smtpAt, maxMessageBytes: positive('SINK_MAX_MESSAGE_BYTES', 50 * 1024 * 1024) });
  const http = createSinkHttp(store);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(httpAt.port, httpAt.host, () => resolve());
  });
  process.stdout.write(`sink: smtp on ${smtpAt.host}:${smtpAt.port}, web view on ${httpAt.host}:${httpAt.port}\n`);
  const stop = () => {
    http.closeAllConnections();
    http.close();
    smtp.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`sink: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
