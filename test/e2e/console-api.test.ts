// The read API, /metrics and the console's access rules through the real HTTP server, Postgres, Redis
// and SMTP: leads arrive by signed webhook, a person clicks, and what the operator reads (JSON, pages,
// the live stream) says so; a visitor from another address is refused; every form needs its CSRF token.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, leads } from '../../src/db/schema.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const ADMIN = 'console-admin-token-0123456789';
const ELSEWHERE = { 'x-forwarded-for': '203.0.113.9' };
let h: Harness;
// A person clicks a while after delivery (a click within seconds is a scanner's): the clock moves on.
let offset = 0;
const clock = () => new Date(Date.now() + offset);

beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', now: clock, settings: { adminToken: ADMIN } });
});
afterAll(async () => h?.close());

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${h.http.url}${path}`, { headers, redirect: 'manual' });
const getJson = async (path: string, headers: Record<string, string> = {}) => {
  const r = await get(path, headers);
  return { status: r.status, json: (await r.json()) as any };
};
const upsert = async (email: string, extra: Record<string, unknown> = {}) => {
  const r = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Alpha', domain: 'alpha.test' }, ...extra } });
  expect(r.status).toBe(200);
};
const mailTo = (email: string) => eventually(`mail to ${email}`, async () => h.smtp.mails.find((m) => m.envelopeTo.includes(email)));
const links = (html: string) => [...html.matchAll(/href="([^"]+\/t\/c\/[^"]+)"/g)].map((m) => m[1]!);

/** Reads Server-Sent Events until `until` says enough (or the time runs out). */
async function readEvents(path: string, headers: Record<string, string>, until: (events: { id: string; event: string; data: any }[]) => boolean, during?: () => Promise<void>) {
  const ac = new AbortController();
  const res = await fetch(`${h.http.url}${path}`, { headers: { accept: 'text/event-stream', ...headers }, signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: { id: string; event: string; data: any }[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const timer = setTimeout(() => ac.abort(), 20_000);
  const work = during?.();
  try {
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let i: number;
      while ((i = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const f: Record<string, string> = Object.fromEntries(block.split('\n').filter((l) => l && !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
        if (f.data) events.push({ id: f.id ?? '', event: f.event ?? 'message', data: JSON.parse(f.data) });
      }
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
    await work;
  }
  return events;
}

describe('the read API', () => {
  beforeAll(async () => {
    await upsert('ana@alpha.test', { firstName: '<script>alert(1)</script>', timeZone: 'Europe/Berlin' });
    await upsert('bo@alpha.test', { firstName: 'Bo', persona: 'economic_buyer' });
    await upsert('di@alpha.test', { firstName: 'Di' });
    const mail = await mailTo('ana@alpha.test');
    await mailTo('di@alpha.test');
    // The relay's 250 comes before the row is marked sent: wait for the row.
    await eventually('both intros marked sent', async () => (await getJson('/v1/messages?status=sent')).json.messages.length >= 2);
    offset += 60_000;
    const r = await fetch(links(String(mail.parsed.html))[0]!, { redirect: 'manual', headers: { 'user-agent': CHROME, 'x-forwarded-for': '198.51.100.23' } });
    expect(r.status).toBe(302);
    await eventually('the click recorded', async () => (await h.ctx.db.select().from(activity).where(eq(activity.kind, 'click'))).length);
  });

  it('shows a lead with its timeline: enrollment, message with the relay reply, the click as a person with its evidence', async () => {
    const { status, json } = await getJson('/v1/leads/ANA%40alpha.test');
    expect(status).toBe(200);
    expect(json.lead).toMatchObject({ email: 'ana@alpha.test', name: '<script>alert(1)</script>', persona: 'champion', stage: 'awareness', zone: 'Europe/Berlin', status: 'active' });
    expect(json.account).toMatchObject({ name: 'Alpha', key: 'alpha.test' });
    expect(json.enrollments[0]).toMatchObject({ sequence: 'awareness-notes', state: 'active' });
    expect(json.messages.find((m: any) => m.step === 'intro')).toMatchObject({ status: 'sent', relayReply: expect.stringContaining('250') });
    const click = json.signals.find((s: any) => s.kind === 'click');
    expect(click).toMatchObject({ human: true, sequence: 'awareness-notes', step: 'intro' });
    expect(click.evidence).toMatchObject({ userAgent: CHROME, ip: '198.51.100.23' });
    expect(json.activity.events.map((e: any) => e.kind)).toEqual(expect.arrayContaining(['lead_created', 'enrolled', 'queued', 'sent', 'click']));
    expect(json.activity.events.find((e: any) => e.kind === 'click').verdict).toMatchObject({ human: true });
  });

  it('answers 404 for an unknown lead and 400 naming the field for a bad one', async () => {
    expect(await getJson('/v1/leads/nobody%40alpha.test')).toMatchObject({ status: 404, json: { error: { code: 'unknown_lead' } } });
    expect(await getJson('/v1/leads/not-an-email')).toMatchObject({ status: 400, json: { error: { field: 'email' } } });
  });

  it('pages the activity by key, oldest first within a page, and validates every filter', async () => {
    const all = (await getJson('/v1/activity?limit=1000')).json;
    expect(all.events.length).toBeGreaterThan(4);
    const first = (await getJson(`/v1/activity?after=0&limit=2`)).json;
    expect(first.events).toHaveLength(2);
    const second = (await getJson(`/v1/activity?after=${first.next}&limit=2`)).json;
    expect(second.events[0].id).toBeGreaterThan(first.events[1].id);
    expect(first.events.map((e: any) => e.id)).toEqual(all.events.slice(0, 2).map((e: any) => e.id));
    const newest = (await getJson('/v1/activity?limit=2')).json;
    const older = (await getJson(`/v1/activity?before=${newest.older}&limit=2`)).json;
    expect(older.events.at(-1).id).toBeLessThan(newest.events[0].id);
    // By step too: her follow-up, two seconds after the intro, may have gone out too on a busy machine.
    const sentOnly = (await getJson('/v1/activity?kind=sent&lead=ana@alpha.test&step=intro')).json;
    expect(sentOnly.events.map((e: any) => [e.kind, e.lead, e.step])).toEqual([['sent', 'ana@alpha.test', 'intro']]);
    expect((await getJson('/v1/activity?account=alpha.test&kind=enrolled')).json.events.map((e: any) => e.lead)).toEqual(['ana@alpha.test', 'di@alpha.test']);
    for (const [q, field] of [['after=abc', 'after'], ['kind=sent;drop', 'kind'], ['limit=0', 'limit'], ['lead=x', 'lead'], ['sequence=a%20b', 'sequence'], ['after=1&before=5', 'before']]) {
      const r = await getJson(`/v1/activity?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.field, q).toBe(field);
    }
  });

  it('lists messages by status, sequence and since, a page at a time', async () => {
    const page1 = (await getJson('/v1/messages?status=sent&sequence=awareness-notes&since=1h&limit=1')).json;
    expect(page1.messages).toHaveLength(1);
    expect(page1.next).toBeTruthy();
    const page2 = (await getJson(`/v1/messages?status=sent&sequence=awareness-notes&since=1h&limit=1&before=${page1.next}`)).json;
    expect(page2.messages[0].id).not.toBe(page1.messages[0].id);
    for (const [q, field] of [['status=lost', 'status'], ['since=yesterday', 'since'], ['before=zzz', 'before'], ['limit=9999', 'limit'], ['sequence=..', 'sequence']]) {
      const r = await getJson(`/v1/messages?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.field, q).toBe(field);
    }
  });

  it('reports sequences per step, accounts by buying committee, and the queues', async () => {
    const seqs = (await getJson('/v1/sequences')).json.sequences;
    const notes = seqs.find((s: any) => s.id === 'awareness-notes');
    expect(notes.steps.map((s: any) => s.step)).toEqual(['intro', 'pause', 'follow-up', 'pause-again', 'last-note']);
    expect(notes.steps[0]).toMatchObject({ step: 'intro', type: 'email' });
    expect(notes.steps[0].sent).toBeGreaterThanOrEqual(1);
    expect(notes.versions[0]).toMatchObject({ live: true });
    const acct = (await getJson('/v1/accounts/alpha.test')).json;
    expect(acct.account).toMatchObject({ name: 'Alpha', domain: 'alpha.test' });
    expect(acct.personas.map((p: any) => [p.persona, p.leads])).toEqual([['champion', 2], ['economic_buyer', 1]]);
    expect(acct.personas[0].people.map((p: any) => p.email)).toEqual(['ana@alpha.test', 'di@alpha.test']);
    expect((await getJson('/v1/accounts/nowhere.test')).status).toBe(404);
    // The list counts each account's people as its page does.
    const listed = (await getJson('/v1/accounts')).json.accounts.find((a: any) => a.key === acct.account.key);
    expect(listed).toMatchObject({ leads: 3, engaged: acct.personas.flatMap((p: any) => p.people).filter((p: any) => p.engagedAt).length });
    expect(listed.leads).toBe(acct.personas.reduce((n: number, p: any) => n + p.leads, 0));
    const q = (await getJson('/v1/queues')).json;
    expect(q.queues.map((x: any) => x.name)).toEqual(['step', 'send', 'fanout', 'outbound', 'maintenance', 'settle', 'mailbox']);
    await eventually('reconcile has run', async () => (await getJson('/v1/queues')).json.reconcile.last);
  });

  it('streams the activity, resuming after the Last-Event-ID, then live events as they commit', async () => {
    const { json } = await getJson('/v1/activity?lead=ana@alpha.test&limit=1000');
    const fromHere = json.events[1].id;
    const events = await readEvents(
      '/v1/activity/stream?lead=cy@alpha.test',
      { 'last-event-id': String(fromHere) },
      (evs) => evs.some((e) => e.data.kind === 'sent' && e.data.lead === 'cy@alpha.test'),
      () => upsert('cy@alpha.test', { firstName: 'Cy' }),
    );
    expect(events.every((e) => e.event === 'activity' && e.data.lead === 'cy@alpha.test')).toBe(true);
    expect(events.map((e) => e.data.kind)).toEqual(expect.arrayContaining(['lead_created', 'enrolled', 'sent']));
    // Ids only go up, and each event's id is its place to resume from.
    const ids = events.map((e) => Number(e.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    // Resuming from the first of them replays the rest, nothing before it.
    const again = await readEvents('/v1/activity/stream?lead=cy@alpha.test', { 'last-event-id': String(ids[0]) }, (evs) => evs.length >= ids.length - 1);
    expect(again.map((e) => Number(e.id)).slice(0, ids.length - 1)).toEqual(ids.slice(1));
    expect((await getJson('/v1/activity/stream?kind=1')).status).toBe(400);
  });

  it('serves Prometheus metrics', async () => {
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    expect(text).toMatch(/^nurture_messages\{state="sent"\} [1-9]/m);
    expect(text).toMatch(/^nurture_smtp_replies_total\{class="2xx"\} [1-9]/m);
    expect(text).toMatch(/^nurture_signals_total\{kind="click",verdict="human"\} 1$/m);
    expect(text).toMatch(/^nurture_queue_jobs\{queue="send",state="waiting"\} \d+$/m);
    expect(text).toMatch(/^nurture_smtp_send_duration_seconds_bucket\{le="\+Inf",outcome="sent"\} [1-9]/m);
    expect(text).toMatch(/^nurture_render_duration_seconds_count [1-9]/m);
    expect(text).toContain('# TYPE nurture_reconcile_last_run_timestamp_seconds gauge');
  });
});

describe('access', () => {
  it('refuses a visitor from another address everywhere but the sign-in page, and lets the admin token in', async () => {
    expect((await get('/', ELSEWHERE)).status).toBe(401);
    expect(await (await get('/attention', ELSEWHERE)).text()).toContain('Sign in');
    expect((await getJson('/v1/leads/ana%40alpha.test', ELSEWHERE)).status).toBe(403);
    expect((await get('/metrics', ELSEWHERE)).status).toBe(403);
    expect((await get('/v1/stats', ELSEWHERE)).status).toBe(403);
    expect((await getJson('/v1/leads/ana%40alpha.test', { ...ELSEWHERE, authorization: `Bearer ${ADMIN}` })).status).toBe(200);
    expect((await get('/metrics', { ...ELSEWHERE, authorization: `Bearer ${ADMIN}` })).status).toBe(200);
    // Assets carry no data.
    expect((await get('/console.css', ELSEWHERE)).status).toBe(200);
  });

  it('signs in with the admin token into a Secure, HTTP-only session; a wrong token or a forged form gets nothing', async () => {
    const page = await get('/login?next=/attention', ELSEWHERE);
    const csrfCookie = /nurture_csrf=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')![1]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const post = (body: Record<string, string>, cookie = `nurture_csrf=${csrfCookie}`, extra: Record<string, string> = {}) =>
      fetch(`${h.http.url}/login`, { method: 'POST', redirect: 'manual', headers: { ...ELSEWHERE, 'content-type': 'application/x-www-form-urlencoded', cookie, ...extra }, body: new URLSearchParams(body).toString() });
    expect((await post({ _csrf: csrf, token: 'wrong-token-wrong-token', next: '/attention' })).status).toBe(401);
    expect((await post({ _csrf: 'forged', token: ADMIN })).status).toBe(403);
    expect((await post({ _csrf: csrf, token: ADMIN }, `nurture_csrf=${csrfCookie}`, { origin: 'https://evil.example' })).status).toBe(403);
    const ok = await post({ _csrf: csrf, token: ADMIN, next: '//evil.example/' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/');
    const setCookie = ok.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/nurture_session=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=43200/);
    const session = /nurture_session=([^;]+)/.exec(setCookie)![1]!;
    expect((await get('/attention', { ...ELSEWHERE, cookie: `nurture_session=${session}` })).status).toBe(200);
    expect((await getJson('/v1/leads/ana%40alpha.test', { ...ELSEWHERE, cookie: `nurture_session=${session}` })).status).toBe(200);
    // A tampered session is a visitor's.
    expect((await get('/attention', { ...ELSEWHERE, cookie: `nurture_session=${session.slice(0, -2)}xx` })).status).toBe(401);
  });

  it('escapes what leads and mail carry: a lead named <script> is text', async () => {
    const r = await get('/leads/ana%40alpha.test');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toContain("script-src 'self'");
    const page = await r.text();
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).not.toContain('<script>alert(1)');
    const log = await (await get('/?lead=ana@alpha.test')).text();
    expect(log).toContain('data-kind="click"');
    expect(log).toContain('badge human');
  });

  it('takes actions only with the CSRF token, and resubscribes only with a reason', async () => {
    // Unsubscribed by the one-click link in her mail.
    const mail = await mailTo('di@alpha.test');
    const unsubscribe = /<([^>]+\/u\/[^>]+)>/.exec(mail.raw.replace(/\r?\n /g, ' '))![1]!;
    expect((await fetch(unsubscribe, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' })).status).toBe(200);
    await eventually('di unsubscribed', async () => (await h.ctx.db.select().from(leads).where(eq(leads.email, 'di@alpha.test')))[0]?.status === 'unsubscribed');

    const page = await get('/leads/di%40alpha.test');
    const csrfCookie = /nurture_csrf=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')![1]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const resubscribe = (body: Record<string, string>, cookie = `nurture_csrf=${csrfCookie}`) =>
      fetch(`${h.http.url}/leads/di%40alpha.test/resubscribe`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams(body).toString() });
    // From this machine, but without the token: a page elsewhere could have sent it.
    expect((await resubscribe({ reason: 'asked again' }, '')).status).toBe(403);
    expect((await resubscribe({ _csrf: csrf, reason: 'asked again' }, 'nurture_csrf=someone-elses-cookie-value')).status).toBe(403);
    const noReason = await resubscribe({ _csrf: csrf, reason: ' ' });
    expect(noReason.status).toBe(303);
    expect(Buffer.from(/nurture_flash=([^;]+)/.exec(noReason.headers.get('set-cookie')!)![1]!, 'base64url').toString()).toContain('say why');
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'di@alpha.test')))[0]!.status).toBe('unsubscribed');
    expect((await resubscribe({ _csrf: csrf, reason: 'asked on the phone to hear from us again' })).status).toBe(303);
    expect((await h.ctx.db.select().from(leads).where(eq(leads.email, 'di@alpha.test')))[0]!.status).toBe('active');
    const [logged] = await h.ctx.db.select().from(activity).where(eq(activity.kind, 'resubscribed'));
    expect(logged!.detail).toMatch(/^resubscribed by the console \(loopback from 127\.0\.0\.1\) \(was unsubscribe .*\): asked on the phone to hear from us again$/);
  });
});
