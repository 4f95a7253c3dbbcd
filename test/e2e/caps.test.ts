// An account-wide frequency cap holds even when many people at one account are due at the same moment
// and several step jobs run in parallel: the rest are deferred, never dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, like } from 'drizzle-orm';
import { loadRecentSendsOf } from '../../src/db/facts.js';
import { activity, enrollments, leads, messages } from '../../src/db/schema.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/caps' });
});
afterAll(async () => h?.close());

describe('account cap under concurrency', () => {
  it('sends two emails to one account however many of its people are due at once', async () => {
    const people = Array.from({ length: 8 }, (_, i) => `p${i}@capped.test`);
    // Hold the step worker until every step is due, so they are taken up in parallel.
    const stepper = h.worker('step');
    await stepper.pause();
    const results = await Promise.all(
      people.map((email) => h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: 'P', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Capped', domain: 'capped.test' } } })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    stepper.resume();
    const deferred = await eventually('six deferrals', async () => {
      const rows = await h.ctx.db.select().from(activity).where(eq(activity.kind, 'defer'));
      return rows.length >= 6 ? rows : null;
    });
    // All eight have decided (six deferred, two queued): no other message can come of them. Each of the
    // two goes out once, once its row says sent.
    expect(await h.ctx.db.select().from(messages)).toHaveLength(2);
    await eventually('both sent', async () => {
      const rows = await h.ctx.db.select().from(messages).where(eq(messages.status, 'sent'));
      return rows.length === 2 ? rows : null;
    });
    expect(h.smtp.mails).toHaveLength(2);
    expect(deferred.every((d) => d.detail.includes('cap account'))).toBe(true);
    // Deferred, not dropped: every enrollment is still active with a due time a week on.
    const waiting = (await h.ctx.db.select().from(enrollments)).filter((e) => e.state === 'active');
    expect(waiting).toHaveLength(6);
    for (const e of waiting) expect(e.nextDueAt!.getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
  });
});

describe('what caps read', () => {
  it("reads every send at the account for an account cap, and only the leads' own for a lead cap alone", async () => {
    // The two sends the test above let through, to two of the eight people at Capped.
    const people = await h.ctx.db.select({ id: leads.id, accountId: leads.accountId }).from(leads).where(like(leads.email, '%@capped.test'));
    const sentTo = new Set((await h.ctx.db.select().from(messages)).map((m) => m.leadId));
    expect(sentTo.size).toBe(2);
    const one = people.find((p) => sentTo.has(p.id))!;
    const other = people.find((p) => !sentTo.has(p.id))!;
    const { funnel } = h.ctx.config;
    const now = new Date();
    expect(await loadRecentSendsOf(h.ctx.db, funnel, [other], now)).toHaveLength(2);
    // No account cap: an uncapped account may have sent to thousands of its people, none of which count.
    const leadCapOnly = { ...funnel, caps: { lead: { max: 1, per: '7d' } } };
    expect(await loadRecentSendsOf(h.ctx.db, leadCapOnly, [other], now)).toEqual([]);
    expect((await loadRecentSendsOf(h.ctx.db, leadCapOnly, [one, other], now)).map((r) => r.leadId)).toEqual([one.id]);
  });
});
