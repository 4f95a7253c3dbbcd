// Step jobs that a worker holds at once run in one transaction (runSteps): each job still gets its own
// answer (ran, stale, ended), a job that fails takes only itself down, and what they queue is sent once.
import { randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollments, leads, messages } from '../../src/db/schema.js';
import { sendJobId, type Queues, type StepJob } from '../../src/queue/index.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { stepRunner } from '../../src/usecases/runStep.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e' });
});
afterAll(async () => h?.close());

/** `n` champions at one account, each enrolled in the one-to-one notes by a signed webhook: their lead ids. */
async function champions(key: string, n: number): Promise<string[]> {
  const people = Array.from({ length: n }, (_, i) => `${key}${i}@batch.test`);
  for (const email of people) {
    const r = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: 'B', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: key, domain: `${key}.test` } } });
    expect(r.status).toBe(200);
  }
  return (await h.ctx.db.select({ id: leads.id }).from(leads).where(inArray(leads.email, people))).map((l) => l.id);
}

describe('step jobs in a batch', () => {
  it('answers each job as if it ran alone, lets a failing one fail alone, and queues each step once', async () => {
    // The worker's own step jobs wait, so the ones below are the only ones that run.
    const stepper = h.worker('step');
    await stepper.pause();
    const leadIds = await champions('batch', 4);
    // Each enrollment has a step due (its intro, or the follow-up two seconds after it).
    const due = await eventually('four steps due', async () => {
      const rows = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
      return rows.length === 4 && rows.every((e) => e.state === 'active' && e.nextDueAt && e.nextDueAt <= new Date()) ? rows : null;
    });
    const before = await h.ctx.db.select({ id: messages.id }).from(messages).where(inArray(messages.leadId, leadIds));

    const jobs: StepJob[] = [
      ...due.map((e) => ({ enrollmentId: e.id, revision: e.revision })),
      { enrollmentId: due[0]!.id, revision: due[0]!.revision - 1 }, // superseded
      { enrollmentId: randomUUID(), revision: 0 }, // no such enrollment
      { enrollmentId: 'not-a-uuid', revision: 0 }, // fails its statement: the batch's transaction with it
    ];
    const run = stepRunner(h.ctx, { size: jobs.length });
    const settled = await Promise.allSettled(jobs.map((job) => run(job)));
    expect(settled.slice(0, 6).map((s) => (s.status === 'fulfilled' ? s.value : s.reason))).toEqual(['ran', 'ran', 'ran', 'ran', 'stale', 'ended']);
    expect(settled[6]!.status).toBe('rejected');

    // Each enrollment moved on once, and queued its step's message once.
    const after = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
    for (const e of due) expect(after.find((a) => a.id === e.id)!.revision).toBe(e.revision + 1);
    const added = await h.ctx.db.select().from(messages).where(and(inArray(messages.leadId, leadIds), inArray(messages.status, ['queued', 'sending', 'sent'])));
    expect(added.length - before.length).toBe(4);
    expect(new Set(added.filter((m) => !before.some((b) => b.id === m.id)).map((m) => m.leadId))).toEqual(new Set(leadIds));

    // The same jobs again are stale: nothing more is queued.
    expect(await Promise.all(due.map((e) => run({ enrollmentId: e.id, revision: e.revision })))).toEqual(['stale', 'stale', 'stale', 'stale']);
    // And what they queued goes out once each, the worker's own jobs for the old revisions doing nothing.
    stepper.resume();
    // (Only these: the follow-ups after them may be going out by now too.)
    const sent = await eventually('all sent', async () => {
      const rows = await h.ctx.db.select().from(messages).where(and(inArray(messages.id, added.map((m) => m.id)), eq(messages.status, 'sent')));
      return rows.length === added.length ? rows : null;
    });
    for (const m of sent) expect(h.smtp.mails.filter((x) => x.parsed.messageId === `<${m.messageId}>`)).toHaveLength(1);
  });

  it('fails the batch, not each step again, when Redis refuses what it queues after the commit; reconcile adds it', async () => {
    const stepper = h.worker('step');
    const maintenance = h.worker('maintenance');
    await Promise.all([stepper.pause(), maintenance.pause()]);
    const leadIds = await champions('lost', 2);
    const due = await eventually('two intros due', async () => {
      const rows = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
      return rows.length === 2 && rows.every((e) => e.cursor === 'intro') ? rows : null;
    });
    // Redis goes away between the commit and the adds.
    const gone = () => Promise.reject(new Error('Connection is closed.'));
    const dead = new Proxy(h.ctx.queues, { get: (q, name) => (name === 'settings' ? q.settings : { add: gone, addBulk: gone, remove: gone }) }) as Queues;
    const run = stepRunner({ ...h.ctx, queues: dead }, { size: due.length });
    const settled = await Promise.allSettled(due.map((e) => run({ enrollmentId: e.id, revision: e.revision })));
    // Every job fails with Redis's error: none is run again and answered 'stale' as if all were well.
    expect(settled.map((s) => (s.status === 'rejected' ? String(s.reason) : s.value))).toEqual(due.map(() => 'Error: Connection is closed.'));
    // Committed once each: moved on, one intro queued apiece, no send job.
    const moved = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
    for (const e of due) expect(moved.find((m) => m.id === e.id)!.revision).toBe(e.revision + 1);
    const queued = await h.ctx.db.select().from(messages).where(inArray(messages.leadId, leadIds));
    expect(queued.map((m) => m.status)).toEqual(['queued', 'queued']);
    for (const m of queued) expect(await h.ctx.queues.send.getJob(sendJobId({ messageId: m.id }))).toBeFalsy();

    // Reconcile adds what was lost, and each intro goes out once.
    expect((await reconcile(h.ctx)).sends).toBeGreaterThanOrEqual(2);
    await eventually('both intros sent', async () => {
      const rows = await h.ctx.db.select().from(messages).where(and(inArray(messages.id, queued.map((m) => m.id)), eq(messages.status, 'sent')));
      return rows.length === 2 ? rows : null;
    });
    for (const m of queued) expect(h.smtp.mails.filter((x) => x.parsed.messageId === `<${m.messageId}>`)).toHaveLength(1);
    stepper.resume();
    maintenance.resume();
  });
});
