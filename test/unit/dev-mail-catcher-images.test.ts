// Reading a caught message in the mail catcher is not the recipient reading it: remote images (the open
// pixel among them) stay blocked until asked for, so viewing a mail records no open.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailCatcher, type MailCatcher } from '../../src/dev/mailcatcher.js';
import { blockRemoteContent } from '../../src/dev/mail-web.js';
import { freePort } from '../../src/dev/ports.js';
import { compileTemplate, loadTemplateSource, renderMessage } from '../../src/render/index.js';
import { aContext, sampleTemplates } from '../fixtures/render/context.js';

let dir: string;
let catcher: MailCatcher;
let tracker: Server;
let trackerUrl: string;
const hits: string[] = [];
let id: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nurture-catcher-'));
  // Stands in for nurture's tracking endpoints and the image CDN: it counts every request.
  tracker = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'image/gif' }).end();
  });
  await new Promise<void>((r) => tracker.listen(0, '127.0.0.1', () => r()));
  trackerUrl = `http://127.0.0.1:${(tracker.address() as { port: number }).port}`;
  catcher = await startMailCatcher({ dir, smtpPort: await freePort(), httpPort: await freePort() });

  const compiled = await compileTemplate(loadTemplateSource(sampleTemplates, 'value-benchmark'));
  const message = renderMessage(compiled, aContext(), {
    trackLink: (l) => `${trackerUrl}/t/c/tok/${l.id}`,
    pixelUrl: `${trackerUrl}/t/o/tok.gif`,
  });
  // A remote image of the template's own too, and a background and a stylesheet, all on the counting host.
  const html = message.html
    .replaceAll('https://cdn.handrail.example', trackerUrl)
    .replace('</head>', `<link rel="stylesheet" href="${trackerUrl}/style.css"><style>@import "${trackerUrl}/more.css"; .x { background: url('${trackerUrl}/bg.png') }</style></head>`)
    .replace('<body', `<body background="${trackerUrl}/body.png"`);
  const transport = nodemailer.createTransport({ url: catcher.url, tls: { rejectUnauthorized: false }, ignoreTLS: true } as never);
  await transport.sendMail({ from: 'maya@handrail.example', to: 'jane@acme.test', subject: message.subject, html, text: message.text });
  transport.close();
  id = (await catcher.waitForMessage()).id;
});

afterAll(async () => {
  await catcher?.stop();
  await new Promise<void>((r) => (tracker ? tracker.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

/** What a browser would fetch for a page: every src, srcset, background, stylesheet link, @import and CSS url(). */
function resources(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/\s(?:src|srcset|background|poster|data)\s*=\s*["']?([^"'\s>]+)/gi)) out.push(m[1]!);
  for (const m of html.matchAll(/<link\b[^>]*href\s*=\s*["']?([^"'\s>]+)/gi)) out.push(m[1]!);
  for (const m of html.matchAll(/url\(\s*["']?([^"')]+)/gi)) out.push(m[1]!);
  for (const m of html.matchAll(/@import\s+["']([^"']+)/gi)) out.push(m[1]!);
  return out;
}

async function view(path: string): Promise<{ html: string; csp: string }> {
  const res = await fetch(`${catcher.webUrl}${path}`);
  expect(res.status).toBe(200);
  const html = await res.text();
  // Load what the page asks for, as a browser would (relative to the catcher, absolute anywhere).
  for (const r of resources(html)) {
    if (r.startsWith('data:') || r.startsWith('cid:')) continue;
    await fetch(new URL(r, `${catcher.webUrl}${path}`)).then((x) => x.arrayBuffer()).catch(() => {});
  }
  return { html, csp: res.headers.get('content-security-policy') ?? '' };
}

describe('the mail catcher', () => {
  it('shows a caught message without fetching its tracking pixel or any remote image', async () => {
    const page = await view(`/messages/${id}`);
    expect(page.html).toContain('Load remote images');
    expect(page.html).toContain(`href="/messages/${id}?images=1"`);
    const part = await view(`/messages/${id}/html`);
    expect(part.html).toContain('The 2025 onboarding benchmark');
    expect(part.html).not.toContain(trackerUrl.replace('http://', '') + '/t/o/');
    // The browser itself is told so too: no remote images, styles or fonts.
    expect(part.csp).toMatch(/img-src data: cid:;/);
    expect(part.csp).not.toMatch(/(img|style|font)-src[^;]*\*/);
    expect(hits).toEqual([]);
  });

  it('loads remote images, pixel and all, when asked to, and says so', async () => {
    const page = await view(`/messages/${id}?images=1`);
    expect(page.html).toContain(`src="/messages/${id}/html?images=1"`);
    expect(page.html).toContain('Block remote images');
    await view(`/messages/${id}/html?images=1`);
    expect(hits).toContain('/t/o/tok.gif');
  });
});

describe('blockRemoteContent', () => {
  it('blocks remote sources in every form, and leaves links, inline data and cid: images alone', () => {
    const { html, blocked } = blockRemoteContent(
      `<img src="https://t.example/o.gif"><img src='//cdn.example/a.png'><img src=http://x.example/b.png>` +
        `<img srcset="a.png 1x, https://cdn.example/a@2x.png 2x"><td background="https://cdn.example/bg.png">` +
        `<div style="background:url( 'https://cdn.example/c.png' )"></div>` +
        `<img src="data:image/png;base64,AAAA"><img src="cid:logo"><a href="https://handrail.example/guide">guide</a>`,
    );
    expect(blocked).toBe(6);
    expect(html).not.toMatch(/(?:src|srcset|background)=["']?(?:https?:)?\/\//);
    expect(html).not.toContain('cdn.example/c.png');
    expect(html).toContain('src="data:image/png;base64,AAAA"');
    expect(html).toContain('src="cid:logo"');
    expect(html).toContain('href="https://handrail.example/guide"');
  });
});
