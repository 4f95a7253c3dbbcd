import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { CaughtMessage, MailStore } from './mail-store.js';

// The pages show mail nurture rendered from user data, so nothing in them may run: no scripts on our pages,
// and caught HTML is shown sandboxed (the CSP sandbox also holds when the part is opened on its own).
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:";
const MAIL_HTML_CSP = "sandbox; default-src 'none'; img-src * data: cid:; style-src * 'unsafe-inline'; font-src * data:";

const MESSAGE_ROUTE = /^\/messages\/([0-9a-f]{8})(?:\/(html|text|raw))?$/;
const API_MESSAGE_ROUTE = /^\/api\/messages\/([0-9a-f]{8})$/;

export function mailWebHandler(store: MailStore, smtpUrl: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'Method not allowed');
      const { pathname } = new URL(req.url ?? '/', 'http://catcher');
      if (pathname === '/') return send(res, 200, 'text/html', listingPage(store.list(), smtpUrl, store.dir), PAGE_CSP);
      if (pathname === '/api/messages') return sendJson(res, 200, store.list());

      const api = API_MESSAGE_ROUTE.exec(pathname);
      if (api?.[1]) {
        const message = store.get(api[1]);
        const parts = message && (await store.parts(message.id));
        if (!message || !parts) return sendJson(res, 404, { error: 'not found' });
        return sendJson(res, 200, { ...message, ...parts });
      }

      const route = MESSAGE_ROUTE.exec(pathname);
      const message = route?.[1] ? store.get(route[1]) : undefined;
      if (!route || !message) return send(res, 404, 'text/plain', 'Not found');
      switch (route[2]) {
        case undefined:
          return send(res, 200, 'text/html', messagePage(message), PAGE_CSP);
        case 'html': {
          const html = (await store.parts(message.id))?.html;
          if (html == null) return send(res, 404, 'text/plain', 'This message has no HTML part');
          return send(res, 200, 'text/html', html, MAIL_HTML_CSP);
        }
        case 'text': {
          const text = (await store.parts(message.id))?.text;
          if (text == null) return send(res, 404, 'text/plain', 'This message has no text part');
          return send(res, 200, 'text/plain', text);
        }
        default: {
          const raw = await store.raw(message.id);
          if (!raw) return send(res, 404, 'text/plain', 'The .eml file is gone');
          const filename = path.basename(message.file).replace(/[^\w.-]/g, '_');
          res.setHeader('Content-Disposition', `inline; filename="${filename}"`);
          return send(res, 200, 'text/plain', raw);
        }
      }
    } catch (error) {
      send(res, 500, 'text/plain', `Mail catcher error: ${(error as Error).message}`);
    }
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, csp?: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', `${type}; charset=utf-8`);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  if (csp) res.setHeader('Content-Security-Policy', csp);
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', JSON.stringify(body, null, 2));
}

export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f5f5f5; } td.time { white-space: nowrap; color: #666; }
  .muted { color: #666; } iframe { width: 100%; height: 70vh; border: 1px solid #ccc; }
`;

function layout(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<style>${STYLE}</style></head><body>${body}</body></html>`;
}

function listingPage(messages: CaughtMessage[], smtpUrl: string, dir: string): string {
  const rows = messages
    .map((m) => {
      const links = [
        m.hasHtml ? `<a href="/messages/${m.id}/html">html</a>` : '',
        m.hasText ? `<a href="/messages/${m.id}/text">text</a>` : '',
        `<a href="/messages/${m.id}/raw">.eml</a>`,
      ].filter(Boolean);
      return `<tr><td class="time">${escapeHtml(m.receivedAt)}</td><td>${escapeHtml(m.from)}</td>` +
        `<td>${escapeHtml(m.to || m.envelopeTo.join(', '))}</td>` +
        `<td><a href="/messages/${m.id}">${escapeHtml(m.subject || '(no subject)')}</a></td>` +
        `<td>${links.join(' · ')}</td></tr>`;
    })
    .join('');
  const table = messages.length
    ? `<table><thead><tr><th>Received</th><th>From</th><th>To</th><th>Subject</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
    : '<p>No mail caught yet.</p>';
  return layout(
    'nurture mail catcher',
    `<h1>Caught mail (${messages.length})</h1>` +
      `<p class="muted">SMTP ${escapeHtml(smtpUrl)} · stored in ${escapeHtml(dir)} · <a href="/api/messages">JSON</a></p>${table}`,
  );
}

function messagePage(m: CaughtMessage): string {
  const header = (name: string, value: string) => `<tr><th>${name}</th><td>${escapeHtml(value)}</td></tr>`;
  const body = m.hasHtml
    ? `<iframe sandbox src="/messages/${m.id}/html" title="HTML part"></iframe>`
    : '<p class="muted">No HTML part.</p>';
  return layout(
    m.subject || '(no subject)',
    `<p><a href="/">← all mail</a></p><h1>${escapeHtml(m.subject || '(no subject)')}</h1><table>` +
      header('Received', m.receivedAt) +
      header('From', m.from) +
      header('To', m.to) +
      header('Envelope', `${m.envelopeFrom || '<>'} → ${m.envelopeTo.join(', ')}`) +
      header('Message-ID', m.messageId ?? '') +
      `</table><p>${m.hasText ? `<a href="/messages/${m.id}/text">text part</a> · ` : ''}` +
      `<a href="/messages/${m.id}/raw">raw .eml</a></p>${body}`,
  );
}
