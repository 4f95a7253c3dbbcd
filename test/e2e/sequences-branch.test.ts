// A branch through real Redis, Postgres and SMTP: the lead who opened step 1 (a person, in Chrome) goes
// down `then` and gets the playbook; the lead who didn't goes down `else` and gets the nudge.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity, enrollments, leads, messages, signals } from '../../src/db/schema.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { eventually, SETTLE_BUDGET_MS, startHarness, type Harness } from '../support/harness.js';

const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
let offset = 0;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/sequences-branch', now: () => new Date(Date.now() + offset) });
});
afterAll(async () => h?.close());

const upsert = (email: string) =>
  h.post('/v1/triggers', {
    type: 'lead.upsert',
    lead: { email, firstName: email.split('@')[0], persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: 'Delta Freight', domain: 'delta.test' } },
  });
const mailsTo = (email: string) => h.smtp.mails.filter((m) => m.envelopeTo.includes(email));

async function templatesOf(email: string): Promise<string[]> {
  const [lead] = await h.ctx.db.select().from(leads).where(eq(leads.email, email));
  const rows = await h.ctx.db.select().from(messages).where(eq(messages.leadId, lead!.id)).orderBy(messages.queuedAt);
  return rows.map((m) => `${m.stepId}:${m.templateName}:${m.status}`);
}

describe('a branch on a human open', () => {
  it('sends the opener down then and the other down else', async () => {
    expect((await upsert('reader@delta.test')).status).toBe(200);
    expect((await upsert('skimmer@delta.test')).status).toBe(200);
    const readerHello = await eventually('hello to the reader', async () => mailsTo('reader@delta.test')[0]);
    await eventually('hello to the skimmer', async () => mailsTo('skimmer@delta.test')[0]);

    // A minute later the reader opens it in a browser-based mail client: a human open of step hello.
    offset += 60_000;
    const pixel = /src="([^"]+\/t\/o\/[^"]+\.gif)"/.exec(String(readerHello.parsed.html))![1]!;
    expect((await fetch(pixel, { headers: { 'user-agent': CHROME } })).status).toBe(200);
    const open = await eventually('the human open', async () => (await h.ctx.db.select().from(signals).where(and(eq(signals.kind, 'open'), eq(signals.human, true))))[0]);
    expect(open.stepId).toBe('hello');
    // It counts for the branch once it has settled: no scanner's walk or re-check followed it.
    await eventually('the open settled', async () => (await h.ctx.db.select().from(signals).where(eq(signals.id, open.id)))[0]!.settledAt, SETTLE_BUDGET_MS);

    // The hour's wait passes on the clock. A wait that long has no job in Redis (it is beyond the step-job
    // horizon): reconcile, which a worker runs every minute, finds both steps due in Postgres and adds them.
    offset += 2 * 3_600_000;
    expect(await h.ctx.queues.step.getJobCounts('delayed')).toEqual({ delayed: 0 });
    expect((await reconcile(h.ctx)).steps).toBe(2);

    const readerNext = await eventually('the playbook to the reader', async () => mailsTo('reader@delta.test')[1]);
    const skimmerNext = await eventually('the nudge to the skimmer', async () => mailsTo('skimmer@delta.test')[1]);
    expect(readerNext.parsed.subject).toBe('The playbook, since you read the guide');
    expect(skimmerNext.parsed.subject).toBe('Did the guide reach you?');

    const done = await eventually('both enrollments completed', async () => {
      const rows = await h.ctx.db.select().from(enrollments);
      return rows.length === 2 && rows.every((r) => r.state === 'completed') ? rows : null;
    });
    expect(done.map((r) => r.exitReason)).toEqual(['completed', 'completed']);
    await eventually('four messages marked sent', async () => (await h.ctx.db.select().from(messages).where(eq(messages.status, 'sent'))).length === 4);
    expect(await templatesOf('reader@delta.test')).toEqual(['hello:intro-note:sent', 'playbook:value-playbook:sent']);
    expect(await templatesOf('skimmer@delta.test')).toEqual(['hello:intro-note:sent', 'nudge:followup-note:sent']);
    expect(mailsTo('reader@delta.test')).toHaveLength(2);
    expect(mailsTo('skimmer@delta.test')).toHaveLength(2);

    // The log says which way each went, and why.
    const branches = await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'branch'), eq(activity.stepId, 'did-they-open')));
    const byEmail = new Map(branches.map((b) => [b.email, b.detail]));
    expect(byEmail.get('reader@delta.test')).toMatch(/^branch → playbook because/);
    expect(byEmail.get('skimmer@delta.test')).toMatch(/^branch → nudge because/);
    // A settle period on the way, so the budget is the work's: the period and its slack, plus mail.
  }, SETTLE_BUDGET_MS + 60_000);
});
