// Templates at send time: a missing required value holds the send with a reason instead of "Hi ,",
// and the preview page renders a stored lead exactly as a send would, minus tracking.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, enrollments, messages } from '../../src/db/schema.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
});
afterAll(async () => h?.close());

const upsert = (email: string, firstName: string | null) =>
  h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName, persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Delta "Freight" & Co', domain: 'delta.test' } } });

describe('templates at send time', () => {
  it('holds a send whose required value is missing, says why, and sends nothing', async () => {
    const r = await upsert('nameless@delta.test', null);
    expect(r.status).toBe(200);
    const held = await eventually('held message', async () => {
      const [m] = await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'nameless@delta.test'));
      return m?.status === 'held' ? m : null;
    });
    expect(held.error).toContain('firstName');
    const [log] = await h.ctx.db.select().from(activity).where(eq(activity.kind, 'held'));
    expect(log!.detail).toMatch(/held: .*firstName/);
    const [run] = await h.ctx.db.select().from(enrollments).where(eq(enrollments.id, held.enrollmentId));
    // The enrollment waits for a person: no next step is due.
    expect(run!.nextDueAt).toBeNull();
    // The e2e sequence's 2-second wait passes: the held enrollment still sends nothing.
    await new Promise((res) => setTimeout(res, 2500));
    expect(h.smtp.mails.filter((m) => m.envelopeTo.includes('nameless@delta.test'))).toHaveLength(0);
    expect((await h.ctx.db.select().from(messages).where(eq(messages.toAddress, 'nameless@delta.test'))).map((m) => m.stepId)).toEqual(['intro']);

    // The CRM fills the name in: the held note goes out, and the sequence carries on from there.
    await upsert('nameless@delta.test', 'Nadia');
    const sent = await eventually('released intro', async () => h.smtp.mails.find((m) => m.envelopeTo.includes('nameless@delta.test')));
    expect(String(sent.parsed.text)).toContain('Hi Nadia');
    expect(sent.parsed.subject).toBe('Something for the Delta "Freight" & Co onboarding team');
    expect(sent.parsed.inReplyTo).toBeUndefined();
    // The sequence's 2 s wait, then a step and a send: the default budget, not a tighter one.
    const followUp = await eventually('follow-up after release', async () => h.smtp.mails.filter((m) => m.envelopeTo.includes('nameless@delta.test'))[1]);
    expect(followUp.parsed.inReplyTo).toBe(sent.parsed.messageId);
    expect(followUp.parsed.subject).toBe('Re: Something for the Delta "Freight" & Co onboarding team');
  });

  it('previews a template for a stored lead, escaped and untracked', async () => {
    await upsert('preview@delta.test', 'Priya');
    const res = await fetch(`${h.http.url}/preview/intro-note?lead=preview@delta.test`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('Hi Priya');
    expect(html).toContain('Delta &quot;Freight&quot; &amp; Co');
    expect(html).toContain('href="https://handrail.example/guides/first-30-days-of-onboarding"');
    expect(html).not.toContain('/t/o/');
    const text = await (await fetch(`${h.http.url}/preview/intro-note?lead=preview@delta.test&part=text`)).text();
    expect(text).toMatch(/^Subject: Something for the Delta "Freight" & Co onboarding team$/m);
    expect((await fetch(`${h.http.url}/preview/intro-note`)).status).toBe(400);
    // Relayed by a proxy on this host, the request is a visitor's, not the operator's.
    expect((await fetch(`${h.http.url}/preview/intro-note?lead=preview@delta.test`, { headers: { 'x-forwarded-for': '203.0.113.7' } })).status).toBe(403);
    expect((await fetch(`${h.http.url}/v1/stats`, { headers: { forwarded: 'for=203.0.113.7' } })).status).toBe(403);
    expect((await fetch(`${h.http.url}/preview/intro-note?lead=nobody@delta.test`)).status).toBe(404);
    // A template that does not exist is a 404 that names it and says what there is; /preview/ lists them.
    const missing = await fetch(`${h.http.url}/preview/intro-notes?lead=preview@delta.test`);
    expect(missing.status).toBe(404);
    const body = await missing.json();
    expect(body.error).toMatchObject({ code: 'unknown_template', field: 'template' });
    expect(body.error.message).toContain('"intro-notes"');
    expect(body.error.message).toContain('intro-note');
    const list = await (await fetch(`${h.http.url}/preview/`)).json();
    expect(list.templates).toContain('intro-note');
    expect(list.templates).not.toContain('partials');
  });
});
