// The console's pure parts: escaping by default, sessions and CSRF tokens, the activity query's
// validation, and the pages rendering what leads and mail carry as text.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { cookiesOf, csrfFor, makeSession, operatorOf, sameOrigin, validCsrf, validSession } from '../../src/http/access.js';
import { activityRow, verdictBadge } from '../../src/http/console/views.js';
import { html, jsonScript } from '../../src/http/html.js';
import { activityQuery } from '../../src/usecases/activityFeed.js';
import { UseCaseError } from '../../src/usecases/errors.js';

const req = (headers: Record<string, string>, remoteAddress = '203.0.113.9') => ({ headers, socket: { remoteAddress } }) as unknown as IncomingMessage;
function res() {
  const headers: Record<string, unknown> = {};
  return { headers, getHeader: (n: string) => headers[n], setHeader: (n: string, v: unknown) => (headers[n] = v) } as unknown as ServerResponse & { headers: Record<string, unknown> };
}

describe('html', () => {
  it('escapes every value and keeps only its own markup', () => {
    const name = '<script>alert("x")</script>';
    expect(html`<p title="${name}">${name}</p>`.text).toBe('<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>');
    expect(html`<ul>${['a', '<b>'].map((x) => html`<li>${x}</li>`)}</ul>`.text).toBe('<ul><li>a</li><li>&lt;b&gt;</li></ul>');
    expect(html`${null}${undefined}${false}${0}`.text).toBe('0');
    expect(jsonScript({ x: '</script><!--' }).text).not.toContain('</script>');
  });

  it('renders a log row with the lead, the verdict and its rule as text', () => {
    const row = activityRow({ id: 7, at: '2026-03-02T09:00:00.000Z', kind: 'click', detail: 'clicked <img src=x onerror=alert(1)>', lead: 'a@b.test', account: '<b>Acme</b>', sequence: 'notes', step: 'intro', verdict: { human: false, reason: 'gateway_render', provisional: false }, zone: 'Europe/Berlin', data: {} }).text;
    expect(row).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(row).toContain('&lt;b&gt;Acme&lt;/b&gt;');
    expect(row).toContain('machine · gateway_render');
    expect(row).toContain('Mon 2 Mar, 10:00 · Europe/Berlin');
    expect(verdictBadge({ human: true, reason: 'human', provisional: true }).text).toContain('provisional');
  });
});

describe('access', () => {
  const token = 'an-admin-token-of-some-length';

  it('lets in loopback that nothing relayed, the Bearer token, or a valid session', () => {
    expect(operatorOf(req({}, '127.0.0.1'), { adminToken: null })).toEqual({ via: 'loopback' });
    expect(operatorOf(req({ 'x-forwarded-for': '1.2.3.4' }, '127.0.0.1'), { adminToken: null })).toBeNull();
    expect(operatorOf(req({}), { adminToken: token })).toBeNull();
    expect(operatorOf(req({ authorization: `Bearer ${token}` }), { adminToken: token })).toEqual({ via: 'token' });
    expect(operatorOf(req({ authorization: `Bearer ${token}x` }), { adminToken: token })).toBeNull();
    const session = makeSession(token, 1_000_000);
    expect(operatorOf(req({ cookie: `a=b; nurture_session=${session}` }), { adminToken: token }, 1_000_000)).toEqual({ via: 'session' });
    expect(validSession(session, token, 1_000_000 + 13 * 3600_000)).toBe(false);
    expect(validSession(session, `${token}-rotated`, 1_000_000)).toBe(false);
    expect(validSession(session.replace(/\.(\d+)\./, (_, n) => `.${Number(n) + 9999}.`), token, 1_000_000)).toBe(false);
  });

  it('issues a CSRF cookie and accepts only the form token made from it', () => {
    const r = res();
    const t = csrfFor(req({}), r, 'secret-secret-secret');
    const cookie = /nurture_csrf=([^;]+)/.exec(String((r.headers['set-cookie'] as string[])[0]))![1]!;
    expect(String((r.headers['set-cookie'] as string[])[0])).toMatch(/HttpOnly; Secure; SameSite=Strict/);
    expect(validCsrf(req({ cookie: `nurture_csrf=${cookie}` }), t, 'secret-secret-secret')).toBe(true);
    expect(validCsrf(req({ cookie: `nurture_csrf=${cookie}` }), t, 'another-secret-here')).toBe(false);
    expect(validCsrf(req({ cookie: 'nurture_csrf=someone-elses-value-here' }), t, 'secret-secret-secret')).toBe(false);
    expect(validCsrf(req({}), t, 'secret-secret-secret')).toBe(false);
    expect(cookiesOf(req({ cookie: 'x=1; x=2; y=3' }))).toEqual({ x: '1', y: '3' });
  });

  it('refuses a POST whose Origin is another site', () => {
    expect(sameOrigin(req({ host: 'nurture.example', origin: 'https://nurture.example' }))).toBe(true);
    expect(sameOrigin(req({ host: 'nurture.example' }))).toBe(true);
    expect(sameOrigin(req({ host: 'nurture.example', origin: 'https://evil.example' }))).toBe(false);
    expect(sameOrigin(req({ host: 'nurture.example', origin: 'null' }))).toBe(false);
  });
});

describe('the activity query', () => {
  const parse = (q: string) => activityQuery(new URLSearchParams(q));
  const fieldOf = (q: string) => {
    try {
      parse(q);
      return null;
    } catch (e) {
      return e instanceof UseCaseError ? e.field : String(e);
    }
  };

  it('reads filters and a page', () => {
    expect(parse('after=12&limit=50&lead=ADA@Example.com&account=Example.com&sequence=notes&step=intro&kind=sent,click')).toEqual({
      filter: { lead: 'ada@example.com', account: 'example.com', sequence: 'notes', step: 'intro', kinds: ['sent', 'click'] },
      page: { after: 12, limit: 50 },
    });
    expect(parse('lead=&kind=')).toEqual({ filter: {}, page: {} });
  });

  it('names the field at fault', () => {
    expect(fieldOf('after=-1')).toBe('after');
    expect(fieldOf('before=1e3')).toBe('before');
    expect(fieldOf('limit=1001')).toBe('limit');
    expect(fieldOf('lead=nobody')).toBe('lead');
    expect(fieldOf('account=a b')).toBe('account');
    expect(fieldOf('sequence=../x')).toBe('sequence');
    expect(fieldOf('kind=Sent')).toBe('kind');
  });
});
