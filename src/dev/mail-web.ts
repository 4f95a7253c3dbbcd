import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { CaughtMessage, MailStore } from './mail-store.js';

// The pages show mail nurture rendered from user data, so nothing in them may run: no scripts on our pages,
// and caught HTML is shown sandboxed (the CSP sandbox also holds when the part is opened on its own).
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:";
// Reading a caught message must not look like the person reading it: a remote image is an open pixel (and
// a remote stylesheet or font can be one too), so by default nothing remote loads, as a careful mail client
// does. Asked for (`?images=1`), remote images load, and tracking fires as it would for the recipient.
const MAIL_HTML_CSP_BLOCKED = "sandbox; default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; font-src data:";
const MAIL_HTML_CSP_REMOTE = "sandbox; default-src 'none'; img-src * data: cid:; style-src * 'unsafe-inline'; font-src * data:";

const MESSAGE_ROUTE = /^\/messages\/([0-9a-f]{8})(?:\/(html|text|raw))?$/;
const API_MESSAGE_ROUTE = /^\/api\/messages\/([0-9a-f]{8})$/;

export function mailWebHandler(store: MailStore, smtpUrl: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'Method not allowed');
      const { pathname, searchParams } = new URL(req.url ?? '/', 'http://catcher');
      const remote = searchParams.get('images') === '1';
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
        case undefined: {
          const html = message.hasHtml ? (await store.parts(message.id))?.html : null;
          const blocked = html == null ? 0 : blockRemoteContent(html).blocked;
          return send(res, 200, 'text/html', messagePage(message, { remote, blocked }), PAGE_CSP);
        }
        case 'html': {
          const html = (await store.parts(message.id))?.html;
          if (html == null) return send(res, 404, 'text/plain', 'This message has no HTML part');
          if (remote) return send(res, 200, 'text/html', html, MAIL_HTML_CSP_REMOTE);
          return send(res, 200, 'text/html', blockRemoteContent(html).html, MAIL_HTML_CSP_BLOCKED);
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
  .images { background: #fff8e1; border: 1px solid #f0d98c; padding: .5rem .75rem; }
  a.button { display: inline-block; margin-left: .5rem; padding: .2rem .7rem; border: 1px solid #888; border-radius: 4px;
    background: #fff; color: #222; text-decoration: none; }
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

function messagePage(m: CaughtMessage, images: { remote: boolean; blocked: number }): string {
  const header = (name: string, value: string) => `<tr><th>${name}</th><td>${escapeHtml(value)}</td></tr>`;
  // A link styled as a button: the page runs no script, and a GET that only shows something is fine.
  const notice = !m.hasHtml
    ? ''
    : images.remote
      ? `<p class="images">Remote images are loaded: their tracking pixels fired, as they would for the recipient. ` +
        `<a class="button" href="/messages/${m.id}">Block remote images</a></p>`
      : images.blocked
        ? `<p class="images">${images.blocked} remote image${images.blocked === 1 ? '' : 's'} and other remote content blocked, so reading ` +
          `this here records no open. <a class="button" href="/messages/${m.id}?images=1">Load remote images</a></p>`
        : '';
  const body = m.hasHtml
    ? `<iframe sandbox src="/messages/${m.id}/html${images.remote ? '?images=1' : ''}" title="HTML part"></iframe>`
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
      `<a href="/messages/${m.id}/raw">raw .eml</a></p>${notice}${body}`,
  );
}

/** A 1×1 transparent GIF: what a blocked image shows instead (an empty src would fetch the page itself). */
const BLANK_IMAGE = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7';
const REMOTE = /^\s*(?:https?:)?\/\//i;
const URL_ATTRIBUTE = /(\s(?:src|srcset|background|poster|data|dynsrc|lowsrc)\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi;
const CSS_URL = /url\(\s*(["']?)\s*(?:https?:)?\/\/[^)]*?\1\s*\)/gi;
const CSS_IMPORT = /@import\s+(["'])\s*(?:https?:)?\/\/[^"']*\1[^;]*;?/gi;
const REMOTE_LINK = /<link\b[^>]*\shref\s*=\s*["']?\s*(?:https?:)?\/\/[^>]*>/gi;

/**
 * The caught HTML with nothing that loads from another host: image sources, backgrounds, CSS url()s,
 * @imports and stylesheet links. The CSP blocks them too; this keeps even a client that ignored it quiet.
 */
export function blockRemoteContent(html: string): { html: string; blocked: number } {
  let blocked = 0;
  const out = html
    .replace(URL_ATTRIBUTE, (whole, name: string, dq?: string, sq?: string, bare?: string) => {
      const value = dq ?? sq ?? bare ?? '';
      // srcset lists several URLs; any remote one blocks the attribute.
      if (!REMOTE.test(value) && !/,\s*(?:https?:)?\/\//i.test(value)) return whole;
      blocked++;
      return `${name}"${BLANK_IMAGE}"`;
    })
    .replace(CSS_URL, () => {
      blocked++;
      return 'url(data:,)';
    })
    .replace(CSS_IMPORT, () => {
      blocked++;
      return '';
    })
    .replace(REMOTE_LINK, () => {
      blocked++;
      return '';
    });
  return { html: out, blocked };
}
