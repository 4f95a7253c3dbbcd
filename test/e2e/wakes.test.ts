// Steps planned ahead share a wake job per second (enqueueDue), not a step job each: the wake sweeps the
// enrollments due in its second a page at a time (wakeDue), leaves what one job should not take to the
// next, runs only those still due when it holds them, and what they queue is sent once. A step whose
// wake would fire within a second keeps a step job of its own.
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollments, leads, messages } from '../../src/db/schema.js';
import { enqueueDue, stepJobId, wakeJobId, wakeSecondOf } from '../../src/queue/index.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { runSteps, wakeDue } from '../../src/usecases/runStep.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

// The real clock, except while a test holds it still (so a wait planned now is known to end in one second).
let frozen: number | null = null;
const clock = () => new Date(frozen ?? Date.now());

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/e2e', now: clock });
  // Each test counts what a sweep ran: the background reconcile (at start-up, then every minute) would
  // sweep overdue seconds beside it. The one test about reconcile calls it itself.
  await h.worker('maintenance').pause();
});
afterAll(async () => h?.close());

/** Champions enrolled in the one-to-one notes (intro, a 2-second wait, a follow-up), their intros not yet taken. */
async function enroll(key: string, n: number) {
  const people = Array.from({ length: n }, (_, i) => `${key}${i}@wakes.test`);
  for (const email of people) {
    const r = await h.post('/v1/triggers', { type: 'lead.upsert', lead: { email, firstName: 'W', persona: 'champion', owner: { name: 'Sam Rivera', email: 'sam@handrail.example' }, account: { name: `Wakes ${key}`, domain: `${key}.wakes.test` } } });
    expect(r.status).toBe(200);
  }
  const leadIds = (await h.ctx.db.select({ id: leads.id }).from(leads).where(inArray(leads.email, people))).map((l) => l.id);
  const rows = await eventually(`${n} enrolled`, async () => {
    const rows = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
    return rows.length === n ? rows : null;
  });
  return { people, leadIds, rows };
}

/** Takes the intros with the clock held still: every wait after them ends at the same instant. */
async function takeIntros(rows: (typeof enrollments.$inferSelect)[]) {
  frozen = Date.now();
  try {
    expect(await runSteps(h.ctx, rows.map((e) => ({ enrollmentId: e.id, revision: e.revision })))).toEqual(rows.map(() => 'ran'));
    return wakeSecondOf(new Date(frozen + 2_000));
  } finally {
    frozen = null;
  }
}

const stepper = () => h.worker('step');

describe('wakes', () => {
  it('gives follow-ups due in one second one wake job, which sends each once when it comes', async () => {
    await stepper().pause();
    const { people, leadIds, rows } = await enroll('shared', 6);
    const second = await takeIntros(rows);

    // One wake job for the six, delayed to the end of their second; no step job of their own.
    const wake = await h.ctx.queues.step.getJob(wakeJobId({ second }));
    expect(wake?.name).toBe('wake');
    expect(wake!.data).toEqual({ second });
    for (const e of rows) expect(await h.ctx.queues.step.getJob(stepJobId({ enrollmentId: e.id, revision: e.revision + 1 }))).toBeUndefined();
    const waiting = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
    expect(waiting.every((e) => e.cursor === 'pause' && wakeSecondOf(e.nextDueAt!) === second)).toBe(true);

    stepper().resume();
    await eventually('the wake ran', async () => (await wake!.getState()) === 'completed', 30_000);
    expect((await h.ctx.queues.step.getJob(wake!.id!))!.returnvalue).toEqual({ ran: 6, more: false });
    // Intro and follow-up, each once, to each of the six.
    const sent = await eventually('twelve sent', async () => {
      const rows = await h.ctx.db.select().from(messages).where(and(inArray(messages.leadId, leadIds), eq(messages.status, 'sent')));
      return rows.length === 12 ? rows : null;
    }, 30_000);
    expect(sent.filter((m) => m.stepId === 'follow-up')).toHaveLength(6);
    for (const m of sent) expect(h.smtp.mails.filter((x) => x.parsed.messageId === `<${m.messageId}>`)).toHaveLength(1);
    for (const email of people) expect(h.smtp.mails.filter((x) => x.envelopeTo.includes(email))).toHaveLength(2);
  });

  it('sweeps its second a page at a time and runs only what is still due there', async () => {
    await stepper().pause();
    const { leadIds, rows } = await enroll('paged', 5);
    const second = await takeIntros(rows);
    // One of the five ends before its wake (an operator stopped it), one is put off to the next day.
    const [stopped, putOff] = [...rows].sort((a, b) => (a.id < b.id ? -1 : 1));
    await h.ctx.db.update(enrollments).set({ state: 'exited', exitReason: 'manual', nextDueAt: null }).where(eq(enrollments.id, stopped!.id));
    await h.ctx.db.update(enrollments).set({ nextDueAt: new Date(second * 1000 + 86_400_000) }).where(eq(enrollments.id, putOff!.id));
    await eventually('the second is over', async () => Date.now() >= second * 1000);

    // Pages of two, one page a job: the job runs two of the three still due and leaves the rest of its
    // second to a job that starts after the last one it did; that one runs the third.
    expect(await wakeDue(h.ctx, { second }, { page: 2, pages: 1 })).toEqual({ ran: 2, more: true });
    const [rest] = (await h.ctx.queues.step.getJobs(['waiting'])).filter((j) => j.name === 'wake' && j.data.after);
    expect(rest!.id).toBe(wakeJobId(rest!.data));
    expect(rest!.data).toMatchObject({ second, after: { id: expect.any(String) } });
    expect(await wakeDue(h.ctx, rest!.data, { page: 2, pages: 1 })).toEqual({ ran: 1, more: false });
    // A sweep of the whole second again finds nothing left.
    expect(await wakeDue(h.ctx, { second }, { page: 2 })).toEqual({ ran: 0, more: false });
    const after = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
    const moved = after.filter((e) => e.cursor === 'pause-again');
    expect(moved).toHaveLength(3);
    expect(moved.map((e) => e.id)).not.toContain(stopped!.id);
    expect(moved.map((e) => e.id)).not.toContain(putOff!.id);
    const followUps = await h.ctx.db.select().from(messages).where(and(inArray(messages.leadId, leadIds), eq(messages.stepId, 'follow-up')));
    expect(followUps).toHaveLength(3);

    // The queued wakes for that second (its own, and the rest's) then run with nothing left to do.
    stepper().resume();
    for (const wake of [(await h.ctx.queues.step.getJob(wakeJobId({ second })))!, rest!]) {
      await eventually('the queued wake ran', async () => (await wake.getState()) === 'completed', 30_000);
      expect((await h.ctx.queues.step.getJob(wake.id!))!.returnvalue).toEqual({ ran: 0, more: false });
    }
  });

  it('runs a page that fails again step by step: one enrollment that cannot move holds back only itself', async () => {
    await stepper().pause();
    const { rows } = await enroll('broken', 3);
    const second = await takeIntros(rows);
    // Due together, they go in id order: pages of two, one page a job, the broken one in the first page.
    const [broken, beside, behind] = [...rows].sort((a, b) => (a.id < b.id ? -1 : 1)) as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    const small = { page: 2, pages: 1 };
    // Real Postgres refuses to move one of them (as a constraint or a lost connection might).
    await h.ctx.database.sql.unsafe(`
      create or replace function wakes_refuse() returns trigger language plpgsql as $$
      begin if new.id = '${broken.id}' then raise exception 'refused for the test'; end if; return new; end $$;
      create trigger wakes_refuse before update on enrollments for each row execute function wakes_refuse();`);
    try {
      await eventually('the second is over', async () => Date.now() >= second * 1000);
      await expect(wakeDue(h.ctx, { second }, small)).rejects.toThrow(/1 step\(s\) due at .* failed: refused for the test/);
      const after = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.id, rows.map((e) => e.id)));
      expect(after.filter((e) => e.cursor === 'pause-again').map((e) => e.id)).toEqual([beside.id]);
      // The one behind was handed on all the same, and its job runs it while the broken one still fails.
      const next = (await h.ctx.queues.step.getJob(wakeJobId({ second, after: { at: beside.nextDueAt!.toISOString(), id: beside.id } })))!;
      expect(next.name).toBe('wake');
      await h.ctx.queues.step.remove(wakeJobId({ second })); // the queued wake this test stands in for
      stepper().resume();
      await eventually('the next job ran', async () => (await next.getState()) === 'completed');
      expect((await h.ctx.queues.step.getJob(next.id!))!.returnvalue).toEqual({ ran: 1, more: false });
      expect((await h.ctx.db.select().from(enrollments).where(eq(enrollments.id, behind.id)))[0]!.cursor).toBe('pause-again');
    } finally {
      await h.ctx.database.sql.unsafe('drop trigger wakes_refuse on enrollments; drop function wakes_refuse()');
    }
    // Its retry finds only the one still due.
    expect(await wakeDue(h.ctx, { second }, small)).toEqual({ ran: 1, more: false });
  });

  it('sweeps again, a job per second, what reconcile finds overdue after Redis lost its wake', async () => {
    await stepper().pause();
    const { rows } = await enroll('lost', 3);
    const second = await takeIntros(rows);
    await h.ctx.queues.step.remove(wakeJobId({ second }));
    await eventually('the second is over', async () => Date.now() >= second * 1000);
    expect((await reconcile(h.ctx)).steps).toBeGreaterThanOrEqual(3);
    // One job sweeps the three again; none of them has a step job of its own.
    const moved = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.id, rows.map((e) => e.id)));
    for (const e of moved) expect(await h.ctx.queues.step.getJob(stepJobId({ enrollmentId: e.id, revision: e.revision }))).toBeUndefined();
    const sweeps = (await h.ctx.queues.step.getJobs(['waiting', 'prioritized'])).filter((j) => j.name === 'wake' && j.data.second === second);
    expect(sweeps.map((j) => j.id)).toEqual([wakeJobId({ second, again: sweeps[0]!.data.again })]);
    stepper().resume();
    await eventually('the sweep ran', async () => (await sweeps[0]!.getState()) === 'completed');
    expect((await h.ctx.queues.step.getJob(sweeps[0]!.id!))!.returnvalue).toEqual({ ran: 3, more: false });
    const after = await h.ctx.db.select().from(enrollments).where(inArray(enrollments.id, rows.map((e) => e.id)));
    expect(after.map((e) => e.cursor)).toEqual(['pause-again', 'pause-again', 'pause-again']);
  });

  it("runs what is due at its second's very end, on a worker whose clock is a little behind the one that promoted it", async () => {
    await stepper().pause();
    const { rows } = await enroll('skew', 1);
    await takeIntros(rows);
    // Due exactly on a whole second, as a send window's opening is; this worker's clock is short of it.
    const second = Math.ceil(Date.now() / 1000) + 1;
    await h.ctx.db.update(enrollments).set({ nextDueAt: new Date(second * 1000) }).where(eq(enrollments.id, rows[0]!.id));
    expect(Date.now()).toBeLessThan(second * 1000);
    expect(await wakeDue(h.ctx, { second })).toEqual({ ran: 1, more: false });
    expect((await h.ctx.db.select().from(enrollments).where(eq(enrollments.id, rows[0]!.id)))[0]!.cursor).toBe('pause-again');
    stepper().resume();
  });

  it('gives a step due now, or whose wake fires within a second, a step job of its own', async () => {
    // At .100 of a second: a step 400 ms on is due in this second, whose wake fires 900 ms from now.
    const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 100);
    const soon = { job: { enrollmentId: '6f9619ff-8b86-4d11-b42d-00c04fc964ff', revision: 3 }, at: new Date(now.getTime() + 400) };
    const due = { job: { enrollmentId: '7f9619ff-8b86-4d11-b42d-00c04fc964ff', revision: 1 }, at: null };
    const later = { job: { enrollmentId: '8f9619ff-8b86-4d11-b42d-00c04fc964ff', revision: 2 }, at: new Date(now.getTime() + 5_000) };
    await stepper().pause();
    await enqueueDue(h.ctx.queues, [soon, due, later], now);
    expect((await h.ctx.queues.step.getJob(stepJobId(soon.job)))?.name).toBe('step');
    expect((await h.ctx.queues.step.getJob(stepJobId(due.job)))?.name).toBe('step');
    expect(await h.ctx.queues.step.getJob(stepJobId(later.job))).toBeUndefined();
    expect((await h.ctx.queues.step.getJob(wakeJobId({ second: wakeSecondOf(later.at) })))?.name).toBe('wake');
    // At .700, the same 400 ms is due in the second after next: its wake is 1.3 s away, and it shares it.
    const late = new Date(now.getTime() + 600);
    const next = { job: { enrollmentId: '9f9619ff-8b86-4d11-b42d-00c04fc964ff', revision: 1 }, at: new Date(late.getTime() + 400) };
    await enqueueDue(h.ctx.queues, [next], late);
    expect(await h.ctx.queues.step.getJob(stepJobId(next.job))).toBeUndefined();
    expect(wakeSecondOf(next.at) * 1000 - late.getTime()).toBe(1300);
    expect((await h.ctx.queues.step.getJob(wakeJobId({ second: wakeSecondOf(next.at) })))?.name).toBe('wake');
    await h.ctx.queues.step.remove(wakeJobId({ second: wakeSecondOf(next.at) }));
    for (const id of [stepJobId(soon.job), stepJobId(due.job), wakeJobId({ second: wakeSecondOf(later.at) })]) await h.ctx.queues.step.remove(id);
    stepper().resume();
  });
});
