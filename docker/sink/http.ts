/**
 * http.ts — the lab sink's web view and JSON API (node:http; five routes need no framework).
 *
 *   GET  /                      HTML: received mails, newest first, with their verdict headers
 *   GET  /messages/ID           HTML: envelope, every header field, the raw message
 *   GET  /api/messages          JSON: [{id, receivedAt, from, to, helo, remoteAddress, size, subject, verdict}]
 *   GET  /api/messages/ID       JSON: the same plus `headers` (every field, unfolded)
 *   GET  /api/messages/ID/raw   the message bytes exactly as received (message/rfc822)
 *   DELETE /api/messages        forget every message
 *   GET  /healthz               200 "ok"
 * Output: server-rendered HTML (no script: it reads the same in a browser, curl or
 *   chromium --dump-dom). Everything from a message is HTML-escaped.
 * Limits: the raw view shows the first RAW_VIEW_BYTES; request bodies are not read.
 * Errors: unknown paths 404, other methods 405.
 * Gaps: no paging, no search (the store holds at most a few hundred mails in the lab).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { MailStore, StoredMessage } from './store.js';

const RAW_VIEW_BYTES = 256 * 1024;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function summary(m: StoredMessage) {
  const { id, receivedAt, from, to, helo, remoteAddress, size, subject, verdict } = m;
  return { id, receivedAt, from, to, helo, remoteAddress, size, subject, verdict };
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.verdict{color:#075;font-family:monospace}.none{color:#999}pre{background:#f8f8f8;padding:8px;overflow:auto;white-space:pre-wrap}
tr.v td{background:#eefaf2}`;

function page(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>\n<body>${body}</body></html>\n`;
}

function verdictCell(m: StoredMessage): string {
  if (m.verdict.length === 0) return '<span class="none">no verdict header</span>';
  return m.verdict.map((h) => `<div class="verdict">${escapeHtml(h.name)}: ${escapeHtml(h.value)}</div>`).join('');
}

export function renderList(messages: StoredMessage[]): string {
  const rows = messages
    .map(
      (m) =>
        `<tr id="m${m.id}" class="message"><td><a href="/messages/${m.id}">${m.id}</a></td><td>${escapeHtml(m.receivedAt)}</td>` +
        `<td class="via">${escapeHtml(m.helo)}</td><td>${escapeHtml(m.from)}</td><td>${escapeHtml(m.to.join(', '))}</td>` +
        `<td class="subject"><a href="/messages/${m.id}">${escapeHtml(m.subject) || '<span class="none">(no subject)</span>'}</a></td>` +
        `<td>${verdictCell(m)}</td><td>${m.size}</td></tr>`,
    )
    .join('\n');
  return page(
    'midstream lab sink',
    `<h1>midstream lab sink</h1><p>${messages.length} message(s) received. JSON: <a href="/api/messages">/api/messages</a></p>\n` +
      `<table><thead><tr><th>#</th><th>received</th><th>via (MTA)</th><th>from</th><th>to</th><th>subject</th><th>verdict headers</th><th>bytes</th></tr></thead>\n<tbody>\n${rows}\n</tbody></table>`,
  );
}

export function renderMessage(m: StoredMessage): string {
  const headers = m.headers
    .map((h) => {
      const v = m.verdict.includes(h) ? ' class="v"' : '';
      return `<tr${v}><th>${escapeHtml(h.name)}</th><td>${escapeHtml(h.value)}</td></tr>`;
    })
    .join('\n');
  const raw = m.raw.subarray(0, RAW_VIEW_BYTES).toString('latin1');
  const more = m.raw.length > RAW_VIEW_BYTES ? `\n[… ${m.raw.length - RAW_VIEW_BYTES} more bytes: /api/messages/${m.id}/raw]` : '';
  return page(
    `message ${m.id}`,
    `<p><a href="/">all messages</a></p><h1>${escapeHtml(m.subject) || '(no subject)'}</h1>\n` +
      `<table><tr><th>MAIL FROM</th><td>${escapeHtml(m.from)}</td></tr><tr><th>RCPT TO</th><td>${escapeHtml(m.to.join(', '))}</td></tr>` +
      `<tr><th>from MTA</th><td>${escapeHtml(m.helo)} [${escapeHtml(m.remoteAddress)}]</td></tr><tr><th>received</th><td>${escapeHtml(m.receivedAt)}</td></tr>` +
      `<tr><th>verdict headers</th><td>${verdictCell(m)}</td></tr></table>\n` +
      `<h2>Header fields</h2><table>${headers}</table>\n<h2>Raw message</h2><pre>${escapeHtml(raw)}${escapeHtml(more)}</pre>` +
      `<p><a href="/api/messages/${m.id}/raw">raw bytes</a> · <a href="/api/messages/${m.id}">JSON</a></p>`,
  );
}

function send(res: ServerResponse, code: number, type: string, body: string | Buffer): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
const json = (res: ServerResponse, code: number, v: unknown) => send(res, code, 'application/json', JSON.stringify(v));

export function createSinkHttp(store: MailStore): Server {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://sink').pathname;
    const method = req.method ?? 'GET';
    req.resume();
    if (path === '/api/messages' && method === 'DELETE') {
      store.clear();
      return json(res, 200, { deleted: true });
    }
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n');
    if (path === '/') return send(res, 200, 'text/html; charset=utf-8', renderList(store.list()));
    if (path === '/healthz') return send(res, 200, 'text/plain', 'ok\n');
    if (path === '/api/messages') return json(res, 200, store.list().map(summary));
    const m = /^\/(api\/)?messages\/(\d+)(\/raw)?$/.exec(path);
    const msg = m ? store.get(Number(m[2])) : undefined;
    if (!m || !msg || (m[3] && !m[1])) return send(res, 404, 'text/plain', 'not found\n');
    if (!m[1]) return send(res, 200, 'text/html; charset=utf-8', renderMessage(msg));
    if (m[3]) return send(res, 200, 'message/rfc822', msg.raw);
    return json(res, 200, { ...summary(msg), headers: msg.headers });
  });
}
