// Engagement through the real HTTP endpoints, queues and SMTP: machines don't advance anyone, people
// do; an unsubscribe stops everything at once; a refused recipient bounces alone; a segmented send
// reaches its whole audience once.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollments, leads, messages, signals, suppressions } from '../../src/db/schema.js';
import { eventually, runDueStepOf, SETTLE_BUDGET_MS, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
let offset = 0;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', now: () => new Date(Date.now() + offset) });
});
afterAll(async () => h?.close());

const upsert = (email: string, persona = 'champion', account = 'gamma.test') =>
  h.post('/v1/triggers', {
    type: 'lead.upsert',
    lead: { email, firstName: email.split('@')[0], persona, owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: `Co ${account}`, domain: account } },
  });

async function firstMailTo(email: string) {
  return eventually(`mail to ${email}`, async () => h.smtp.mails.find((m) => m.envelopeTo.includes(email)));
}
const links = (html: string) => [...html.matchAll(/href="([^"]+\/t\/c\/[^"]+)"/g)].map((m) => m[1]!);
const pixelOf = (html: string) => /src="([^"]+\/t\/o\/[^"]+\.gif)"/.exec(html)![1]!;

describe('engagement', () => {
  it('records Apple proxy opens and scanner clicks as machine signals that advance nobody', async () => {
    await upsert('mpp@gamma.test');
    const mail = await firstMailTo('mpp@gamma.test');
    const html = String(mail.parsed.html);
    offset += 120_000;
    // Apple Mail Privacy Protection prefetch: bare user agent from Apple's range.
    await fetch(pixelOf(html), { headers: { 'user-agent': 'Mozilla/5.0', 'x-forwarded-for': '17.58.101.4' } });
    // A security gateway checks every link, once by its user agent and once with a bare HEAD request.
    const [link] = links(html);
    await fetch(link!, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (compatible; Barracuda Sentinel)' } });
    offset += 1_000;
    await fetch(link!, { method: 'HEAD', redirect: 'manual', headers: { 'user-agent': CHROME } });
    const rows = await eventually('machine signals', async () => {
      const r = await h.ctx.db.select().from(signals);
      return r.length >= 3 ? r : null;
    });
    expect(rows.every((s) => !s.human)).toBe(true);
    expect(rows.find((s) => s.kind === 'open')!.reason).toBe('apple_mpp');
    expect(rows.filter((s) => s.kind === 'click').map((s) => s.reason).sort()).toEqual(['head_request', 'scanner_ua']);
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'mpp@gamma.test'));
    expect(lead).toMatchObject({ stage: 'awareness', scoreBase: 0, valuePieces: [] });
  });

  it('takes back clicks that turn out to be a scanner clicking every link of a message', async () => {
    await upsert('burst@burst.test', 'economic_buyer', 'burst.test');
    expect((await h.post('/v1/sequences/awareness-newsletter/fanout', {})).status).toBe(200);
    const mail = await firstMailTo('burst@burst.test');
    const urls = links(String(mail.parsed.html));
    expect(urls.length).toBeGreaterThanOrEqual(3);
    offset += 60_000;
    // Each click on its own looks like a person (a browser, a minute after delivery), but a scanner
    // opens every link at once…
    const answers = await Promise.all(urls.map((url) => fetch(url, { redirect: 'manual', headers: { 'user-agent': CHROME } })));
    expect(answers.every((a) => a.status === 302)).toBe(true);
    // …but together they are every link within seconds: all of them are the scanner's.
    const [msg] = await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'burst@burst.test'));
    const clicks = await eventually('burst taken back', async () => {
      const mine = await h.ctx.db.select().from(signals).where(and(eq(signals.kind, 'click'), eq(signals.messageId, msg!.id)));
      // One signal per link (the same link twice in a second is one hit).
      const distinct = new Set(urls.map((u) => u.split('/').pop())).size;
      return mine.length >= distinct && mine.every((r) => !r.human) ? mine : null;
    });
    expect(clicks.every((c) => c.reason === 'link_burst')).toBe(true);
    const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'burst@burst.test'));
    expect(lead!.valuePieces).toEqual([]);
    expect(lead!.scoreBase).toBeCloseTo(0, 6);
    expect(lead!.stage).toBe('awareness');
  });

  it('advances a lead on human clicks on two value pieces', async () => {
    await upsert('clicker@gamma.test');
    const intro = await firstMailTo('clicker@gamma.test');
    offset += 60_000;
    const guide = links(String(intro.parsed.html)).find((u) => u.endsWith('/guide'))!;
    expect((await fetch(guide, { redirect: 'manual', headers: { 'user-agent': CHROME } })).status).toBe(302);
    const followUp = await eventually('follow-up', async () => h.smtp.mails.filter((m) => m.envelopeTo.includes('clicker@gamma.test'))[1]);
    offset += 60_000;
    const checklist = links(String(followUp.parsed.html)).find((u) => u.endsWith('/checklist'))!;
    expect((await fetch(checklist, { redirect: 'manual', headers: { 'user-agent': CHROME } })).status).toBe(302);
    // Once both clicks have settled (no scanner's walk followed them), they count.
    const lead = await eventually('advance to interest', async () => {
      const [l] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'clicker@gamma.test'));
      return l?.stage === 'interest' ? l : null;
    }, SETTLE_BUDGET_MS);
    expect(lead.stage).toBe('interest');
    // A settle period on the way, so the budget is the work's: the period and its slack, plus mail.
  }, SETTLE_BUDGET_MS + 60_000);

  it('stops every sequence at once on a one-click unsubscribe, and a GET changes nothing', async () => {
    // The unsubscribe must come before the follow-up (due 2 s after the intro) is handed to the relay,
    // however slow the machine: step jobs wait while this test runs the intro's step itself.
    const stepper = h.worker('step');
    await stepper.pause();
    await upsert('leaver@gamma.test');
    expect((await runDueStepOf(h, 'leaver@gamma.test')).ran).toBe('ran');
    const mail = await firstMailTo('leaver@gamma.test');
    const url = /<([^>]+\/u\/[^>]+)>/.exec(mail.raw.replace(/\r?\n /g, ' '))![1]!;
    // Scanners follow links: the page only shows a button.
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post"');
    let [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'leaver@gamma.test'));
    expect(lead!.status).toBe('active');

    const post = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(post.status).toBe(200);
    [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'leaver@gamma.test'));
    expect(lead!.status).toBe('unsubscribed');
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'leaver@gamma.test'))).toHaveLength(1);
    const runs = await h.ctx.db.select().from(enrollments).where(eq(enrollments.leadId, lead!.id));
    expect(runs.every((r) => r.state === 'exited' && r.exitReason === 'unsubscribed')).toBe(true);
    // A manual enrollment later is refused and nothing more is sent.
    const again = await h.post('/v1/triggers', { type: 'lead.upsert', sequence: 'awareness-notes', lead: { email: 'leaver@gamma.test', firstName: 'L', persona: 'champion', account: { name: 'Co', domain: 'gamma.test' } } });
    expect(again.json.enrolled).toEqual([]);
    stepper.resume();
    offset += 10_000;
    await new Promise((r) => setTimeout(r, 2500));
    expect(h.smtp.mails.filter((m) => m.envelopeTo.includes('leaver@gamma.test'))).toHaveLength(1);
  });

  it('bounces and suppresses only the recipient the relay refuses with 550 5.1.1', async () => {
    h.smtp.rcptResponse = (a) => (a === 'ghost@gamma.test' ? { code: 550, message: '5.1.1 <ghost@gamma.test>: Recipient address rejected: User unknown' } : null);
    await upsert('ghost@gamma.test');
    await upsert('alive@gamma.test');
    await firstMailTo('alive@gamma.test');
    const bounced = await eventually('bounce recorded', async () => {
      const [m] = await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'ghost@gamma.test'));
      return m?.status === 'bounced' ? m : null;
    });
    expect(bounced.relayResponse).toContain('5.1.1');
    // The bounce is recorded right after the row is marked: wait for it rather than race it.
    const ghost = await eventually('ghost suppressed', async () => {
      const [l] = await h.ctx.db.select().from(leads).where(eq(leads.email, 'ghost@gamma.test'));
      return l?.status === 'bounced' ? l : null;
    });
    expect(ghost.status).toBe('bounced');
    expect(await h.ctx.db.select().from(suppressions).where(eq(suppressions.email, 'ghost@gamma.test'))).toHaveLength(1);
    const alive = await eventually('alive marked sent', async () => {
      const [m] = await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'alive@gamma.test'));
      return m?.status === 'sent' ? m : null;
    });
    expect(alive.relayResponse).toContain('250');
    h.smtp.rcptResponse = () => null;
  });
});
