// A fan-out page takes its new enrollments' first step itself, in bulk (message rows, activity and send
// jobs for the whole page), through the same pure decide() a step job's runStep calls: a window still
// defers, an account cap still holds, a wait still waits, exactly as runStep decides for the same leads.
// A page run again sends nothing twice, and a crash between the page's commit and its addBulk is healed
// by reconcile.
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertFanout } from '../../src/db/fanouts.js';
import { lockPageLeads } from '../../src/db/pageWrites.js';
import { accounts, activity, enrollments, fanouts, leads, messages } from '../../src/db/schema.js';
import type { Queues } from '../../src/queue/index.js';
import { sendJobId, stepJobId, wakeJobId, wakeSecondOf } from '../../src/queue/index.js';
import { enrollExisting } from '../../src/usecases/enrollLead.js';
import { fanOutPage, fanOutPages, startFanOut } from '../../src/usecases/fanOutSegment.js';
import { reconcile } from '../../src/usecases/reconcile.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';

// The real clock, until the window test sets it to Saturday 7 March 2026, 12:00 in Berlin (then Monday);
// it runs on in real time from wherever it is set. (Caps count the database's queued_at, so the cap test
// runs on the real clock, as production does.)
const SATURDAY_NOON_BERLIN = Date.parse('2026-03-07T11:00:00Z');
const MONDAY_0900_BERLIN = new Date('2026-03-09T08:00:00Z');
const t0 = Date.now();
let at = t0;
const clock = () => new Date(at + (Date.now() - t0));
const setClock = (to: number) => {
  at = to - (Date.now() - t0);
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configDir: 'test/fixtures/config/fanout-first-step', now: clock });
});
afterAll(async () => h?.close());

const fanoutDone = (id: string) =>
  eventually(`fan-out ${id} done`, async () => {
    const [f] = await h.ctx.db.select().from(fanouts).where(eq(fanouts.id, id));
    return f?.status === 'done' ? f : null;
  }, 30_000);

/** Accounts named `${key}-${i}.test` with leads; `perAccount` leads each. Returns the leads' ids and emails. */
async function seed(key: string, opts: { accounts: number; perAccount: number; persona: string; stage?: string; timeZone?: string }) {
  const accs = await h.ctx.db
    .insert(accounts)
    .values(Array.from({ length: opts.accounts }, (_, i) => ({ key: `${key}-${i}.test`, name: `${key} ${i}`, tier: 'enterprise' })))
    .returning();
  return h.ctx.db
    .insert(leads)
    .values(accs.flatMap((a, i) => Array.from({ length: opts.perAccount }, (_, j) => ({ accountId: a.id, email: `p${j}@${key}-${i}.test`, firstName: `P${j}`, persona: opts.persona, stage: opts.stage ?? 'awareness', timeZone: opts.timeZone ?? null }))))
    .returning({ id: leads.id, email: leads.email, accountId: leads.accountId });
}

const enrollmentsOf = (leadIds: string[]) => h.ctx.db.select().from(enrollments).where(inArray(enrollments.leadId, leadIds));
const messagesOf = (leadIds: string[]) => h.ctx.db.select().from(messages).where(inArray(messages.leadId, leadIds));
const mailsTo = (emails: string[]) => h.smtp.mails.filter((m) => emails.includes(m.envelopeTo[0]!));
/** Every send job done: nothing waiting, delayed or running on the send queue. */
const sendQueueIdle = () =>
  eventually('the send queue idle', async () => {
    const c = await h.ctx.queues.send.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(c).every((n) => n === 0) ? true : null;
  }, 30_000);

/** What a first step left on an enrollment, without its ids and times (due times relative to `from`). */
const shapeOf = (e: typeof enrollments.$inferSelect, from: number) => ({
  state: e.state,
  cursor: e.cursor,
  revision: e.revision,
  progress: e.progress,
  dueInHours: e.nextDueAt ? Math.round((e.nextDueAt.getTime() - from) / 3_600_000) : null,
});
const sortShapes = <T>(xs: T[]) => xs.map((x) => JSON.stringify(x)).sort();

describe('a fan-out page takes the first step itself', () => {
  it('holds an account cap and starts waits exactly as step jobs running runStep do', async () => {
    // Five people at one account reached by the fan-out; five at another enrolled one at a time (each then
    // taken by a step job, runStep), kept out of the fan-out by their stage.
    const paged = await seed('paged', { accounts: 1, perAccount: 5, persona: 'economic_buyer' });
    const stepped = await seed('stepped', { accounts: 1, perAccount: 5, persona: 'economic_buyer', stage: 'interest' });
    const from = clock().getTime();

    const { fanoutId } = await startFanOut(h.ctx, 'capped-news');
    expect(await fanoutDone(fanoutId)).toMatchObject({ enrolled: 5, scanned: 5 });
    for (const l of stepped) await enrollExisting(h.ctx, 'capped-news', l.email);
    const steppedDone = await eventually('runStep took every first step', async () => {
      const rows = await enrollmentsOf(stepped.map((l) => l.id));
      return rows.length === 5 && rows.every((e) => e.revision === 1) ? rows : null;
    });

    // The page wrote no revision-0 rows for a step job to pick up: each is at its first decision already.
    const pagedRows = await enrollmentsOf(paged.map((l) => l.id));
    expect(sortShapes(pagedRows.map((e) => shapeOf(e, from)))).toEqual(sortShapes(steppedDone.map((e) => shapeOf(e, from))));
    // Two sent, three held by the account cap for a week, on both paths.
    const deferred = pagedRows.filter((e) => (e.progress as { deferred?: { why: string } }).deferred?.why === 'cap_account');
    expect(deferred).toHaveLength(3);
    for (const e of deferred) expect(e.nextDueAt!.getTime()).toBeGreaterThan(from + 6 * 86_400_000);
    const waiting = pagedRows.filter((e) => (e.progress as { waiting?: string }).waiting === 'pause');
    expect(waiting).toHaveLength(2);
    // A day's wait and a week's deferral are beyond the step-job horizon: they wait in Postgres alone, with
    // no job in Redis yet (and none ever for revision 0)…
    for (const e of pagedRows) {
      expect(await h.ctx.queues.step.getJob(stepJobId({ enrollmentId: e.id, revision: 1 }))).toBeFalsy();
      expect(await h.ctx.queues.step.getJob(stepJobId({ enrollmentId: e.id, revision: 0 }))).toBeFalsy();
    }
    // …until a reconcile finds the wait within the horizon: it adds the wake job of the second each wait
    // ends in (a minute on; one for both when they end in the same second), and still no step job of its
    // own; the week's deferrals have none.
    const dueAt = Math.min(...waiting.map((e) => e.nextDueAt!.getTime()));
    setClock(dueAt - 60_000);
    expect((await reconcile(h.ctx)).soon).toBeGreaterThanOrEqual(2);
    const wakeIds = [...new Set(waiting.map((e) => wakeJobId({ second: wakeSecondOf(e.nextDueAt!) })))];
    for (const e of waiting) {
      const job = await h.ctx.queues.step.getJob(wakeJobId({ second: wakeSecondOf(e.nextDueAt!) }));
      expect(job?.name).toBe('wake');
      expect(job!.delay).toBeGreaterThan(30_000);
      expect(job!.delay).toBeLessThanOrEqual(wakeSecondOf(e.nextDueAt!) * 1000 - (dueAt - 60_000));
      expect(await h.ctx.queues.step.getJob(stepJobId({ enrollmentId: e.id, revision: 1 }))).toBeFalsy();
    }
    for (const e of deferred) expect(await h.ctx.queues.step.getJob(wakeJobId({ second: wakeSecondOf(e.nextDueAt!) }))).toBeFalsy();
    // Back to the real clock; the jobs just added would run the second step in a minute, which this test doesn't follow.
    at = t0;
    for (const id of wakeIds) await h.ctx.queues.step.remove(id);

    const [pagedMsgs, steppedMsgs] = [await messagesOf(paged.map((l) => l.id)), await messagesOf(stepped.map((l) => l.id))];
    expect(pagedMsgs).toHaveLength(2);
    expect(steppedMsgs).toHaveLength(2);
    expect(pagedMsgs.every((m) => m.stepId === 'first' && m.status !== 'held' && /^[^@\s]+@[^@\s]+$/.test(m.messageId) && paged.some((l) => l.email === m.toAddress))).toBe(true);
    // The same activity on both paths: per lead, what its first step did.
    const kindsOf = async (ids: string[]) => (await h.ctx.db.select({ kind: activity.kind, stepId: activity.stepId }).from(activity).where(and(inArray(activity.leadId, ids), inArray(activity.kind, ['queued', 'wait', 'defer'])))).map((a) => `${a.kind} ${a.stepId}`).sort();
    expect(await kindsOf(paged.map((l) => l.id))).toEqual(await kindsOf(stepped.map((l) => l.id)));

    const mails = await eventually('four emails', async () => (mailsTo([...paged, ...stepped].map((l) => l.email)).length >= 4 ? true : null), 30_000);
    expect(mails).toBe(true);
    await sendQueueIdle();
    expect(mailsTo(paged.map((l) => l.email))).toHaveLength(2);
  });

  it('runs a page again without enrolling or sending anyone twice', async () => {
    const people = await seed('rerun', { accounts: 4, perAccount: 1, persona: 'technical_buyer' });
    const f = await insertFanout(h.ctx.db, { sequenceId: 'rerun-news', sequenceVersion: 'v', audience: { stage: 'awareness', personas: ['technical_buyer'] }, total: 4, source: 'api', startedAt: new Date() });
    expect(await fanOutPage(h.ctx, f.id)).toMatchObject({ status: 'done', enrolled: 4 });
    // The job ran again after its commit (stalled, then retried), with its checkpoint lost too, and twice at once.
    await h.ctx.db.update(fanouts).set({ status: 'running', afterLeadId: null, finishedAt: null }).where(eq(fanouts.id, f.id));
    const again = await Promise.all([fanOutPage(h.ctx, f.id), fanOutPage(h.ctx, f.id)]);
    expect(again.map((p) => p.enrolled)).toEqual([0, 0]);

    const rows = await enrollmentsOf(people.map((l) => l.id));
    expect(rows).toHaveLength(4);
    // One email sequence: the first step sent it and completed the run.
    expect(rows.every((e) => e.state === 'completed' && e.endedAt instanceof Date && e.nextDueAt === null)).toBe(true);
    expect(await messagesOf(people.map((l) => l.id))).toHaveLength(4);
    await eventually('four emails', async () => (mailsTo(people.map((l) => l.email)).length >= 4 ? true : null), 30_000);
    // And a trigger enrolling one of them by hand now finds the completed run (it enrolls once).
    await expect(enrollExisting(h.ctx, 'rerun-news', people[0]!.email)).resolves.toMatchObject({ enrolled: [] });
    expect((await reconcile(h.ctx)).sends).toBe(0);
    await sendQueueIdle();
    expect(mailsTo(people.map((l) => l.email))).toHaveLength(4);
    expect(new Set(mailsTo(people.map((l) => l.email)).map((m) => m.envelopeTo[0])).size).toBe(4);
  });

  it('overlaps pages without breaking a cap across them, and jobs running pages ahead side by side enroll each lead once', async () => {
    // Eight accounts of five: with pages of 7 leads in id order, each account's people fall in several
    // pages, and a page started ahead must still count what the page before it sent at the same account.
    const people = await seed('ahead', { accounts: 8, perAccount: 5, persona: 'evaluator' });
    const f = await insertFanout(h.ctx.db, { sequenceId: 'paged-news', sequenceVersion: 'v', audience: { stage: 'awareness', personas: ['evaluator'] }, total: 40, source: 'api', startedAt: new Date() });
    // Jobs side by side (stalled ones given back beside their successors), each running pages ahead, of
    // different sizes, so their pages' leads and accounts overlap every which way.
    for (;;) {
      const runs = await Promise.all([fanOutPages(h.ctx, f.id, { pages: 4, pageSize: 7 }), fanOutPages(h.ctx, f.id, { pages: 4, pageSize: 7 }), fanOutPages(h.ctx, f.id, { pages: 3, pageSize: 11 }), fanOutPages(h.ctx, f.id, { pages: 4, pageSize: 5 })]);
      if (runs.every((r) => r.status !== 'running')) break;
    }
    const [row] = await h.ctx.db.select().from(fanouts).where(eq(fanouts.id, f.id));
    // Each page recorded once (a page recorded twice would count its leads twice), every lead enrolled once.
    // (Reconcile may hand the fan-out to the harness's own worker meanwhile, whose pages are larger.)
    expect(row).toMatchObject({ status: 'done', scanned: 40, enrolled: 40 });
    const rows = await enrollmentsOf(people.map((l) => l.id));
    expect(rows).toHaveLength(40);
    expect(new Set(rows.map((e) => e.leadId)).size).toBe(40);
    // Two sends per account (the cap), the rest deferred a week, whichever page each person fell in.
    const msgs = await messagesOf(people.map((l) => l.id));
    const byAccount = new Map<string, number>();
    for (const m of msgs) {
      const acc = people.find((l) => l.id === m.leadId)!.accountId;
      byAccount.set(acc, (byAccount.get(acc) ?? 0) + 1);
    }
    expect([...byAccount.values()]).toEqual(Array(8).fill(2));
    expect(rows.filter((e) => (e.progress as { deferred?: { why: string } }).deferred?.why === 'cap_account')).toHaveLength(24);
    await eventually('sixteen emails', async () => (mailsTo(people.map((l) => l.email)).length >= 16 ? true : null), 30_000);
    await sendQueueIdle();
    expect(mailsTo(people.map((l) => l.email))).toHaveLength(16);
  });

  it('reads its leads and their accounts exactly as a drizzle select would, every kind of column included', async () => {
    // In a stage no fan-out here reaches, so the other tests' audiences stay as they are.
    const [acc] = await h.ctx.db
      .insert(accounts)
      .values({ key: 'decoded.test', name: 'Décodé GmbH', domain: 'decoded.test', industry: 'logistics', tier: 'enterprise', country: 'DE', timeZone: 'Europe/Berlin', attributes: { seats: 40, tags: ['a', 'b'] }, stage: 'interest', stageEnteredAt: new Date('2026-01-02T03:04:05.678Z') })
      .returning();
    const rows = await h.ctx.db
      .insert(leads)
      .values([
        { accountId: acc!.id, email: 'full@decoded.test', firstName: 'Zoë', lastName: "O'Neil", title: 'CTO', persona: 'champion', stage: 'interest', owner: { name: 'Rep', email: 'rep@handrail.example' }, timeZone: 'Europe/Berlin', attributes: { plan: 'pro', nested: { n: 1.5 } }, scoreBase: 2.25, valuePieces: ['guide'], repliedAt: new Date('2026-02-03T04:05:06.789Z'), engagedAt: new Date(), mailPreference: 'value_only', pausedUntil: new Date('2027-01-01T00:00:00Z') },
        { accountId: acc!.id, email: 'bare@decoded.test', persona: 'champion', stage: 'interest' },
      ])
      .returning({ id: leads.id });
    const ids = rows.map((r) => r.id);
    const viaDrizzle = await h.ctx.db.select({ lead: leads, account: accounts }).from(leads).innerJoin(accounts, eq(accounts.id, leads.accountId)).where(inArray(leads.id, ids)).orderBy(leads.id);
    const decoded = await h.ctx.db.transaction((tx) => lockPageLeads(tx, ids, eq(leads.stage, 'interest')));
    expect(decoded).toEqual(viaDrizzle);
    expect(decoded[0]!.lead.stageEnteredAt).toBeInstanceOf(Date);
    // Those no longer matching are left out.
    expect(await h.ctx.db.transaction((tx) => lockPageLeads(tx, ids, eq(leads.email, 'bare@decoded.test')))).toEqual(viaDrizzle.filter((r) => r.lead.email === 'bare@decoded.test'));
  });

  it('leaves what a crash between its commit and its addBulk lost to reconcile, which sends it once', async () => {
    // Only this test's reconcile finds what was lost: the background one (at start-up, then every minute) waits.
    const maintenance = h.worker('maintenance');
    await maintenance.pause();
    const people = await seed('crash', { accounts: 3, perAccount: 1, persona: 'user' });
    const f = await insertFanout(h.ctx.db, { sequenceId: 'crash-news', sequenceVersion: 'v', audience: { stage: 'awareness', personas: ['user'] }, total: 3, source: 'api', startedAt: new Date() });
    // Redis goes away right after the page commits: every add fails.
    const gone = () => Promise.reject(new Error('Connection is closed.'));
    const dead = new Proxy(h.ctx.queues, { get: (q, name) => (name === 'settings' ? q.settings : { add: gone, addBulk: gone, remove: gone }) }) as Queues;
    await expect(fanOutPage({ ...h.ctx, queues: dead }, f.id)).rejects.toThrow('Connection is closed.');

    // Committed: the page's enrollments, at their first decision, and its queued messages; no job anywhere.
    const queued = await messagesOf(people.map((l) => l.id));
    expect(queued).toHaveLength(3);
    expect(queued.every((m) => m.status === 'queued')).toBe(true);
    for (const m of queued) expect(await h.ctx.queues.send.getJob(sendJobId({ messageId: m.id }))).toBeFalsy();
    expect(await fanoutDone(f.id)).toMatchObject({ enrolled: 3 });
    const rows = await enrollmentsOf(people.map((l) => l.id));
    expect(rows.every((e) => e.state === 'active' && e.cursor === 'pause' && e.revision === 1)).toBe(true);

    expect((await reconcile(h.ctx)).sends).toBeGreaterThanOrEqual(3);
    await eventually('three emails', async () => (mailsTo(people.map((l) => l.email)).length >= 3 ? true : null), 30_000);
    // A second reconcile while nothing is queued any more adds nothing.
    await eventually('all three sent', async () => ((await messagesOf(people.map((l) => l.id))).every((m) => m.status === 'sent') ? true : null));
    await reconcile(h.ctx);
    await sendQueueIdle();
    expect(mailsTo(people.map((l) => l.email))).toHaveLength(3);
    maintenance.resume();
  });

  it('defers a windowed sequence on a Saturday in each lead\'s zone, as runStep does, and sends on Monday', async () => {
    setClock(SATURDAY_NOON_BERLIN);
    const people = await seed('weekday', { accounts: 4, perAccount: 1, persona: 'champion', timeZone: 'Europe/Berlin' });
    const late = await seed('weekday-late', { accounts: 1, perAccount: 1, persona: 'champion', stage: 'interest', timeZone: 'Europe/Berlin' });
    const from = clock().getTime();
    const { fanoutId } = await startFanOut(h.ctx, 'weekday-news');
    expect(await fanoutDone(fanoutId)).toMatchObject({ enrolled: 4 });
    await enrollExisting(h.ctx, 'weekday-news', late[0]!.email);
    const [byStep] = await eventually('runStep deferred the hand-enrolled lead', async () => {
      const r = await enrollmentsOf([late[0]!.id]);
      return r[0]?.revision === 1 ? r : null;
    });

    const rows = await enrollmentsOf(people.map((l) => l.id));
    for (const e of rows) {
      expect(e).toMatchObject({ state: 'active', cursor: 'news', revision: 1, nextDueAt: MONDAY_0900_BERLIN, progress: { sent: [], deferred: { step: 'news', why: 'window' } } });
      expect(shapeOf(e, from)).toEqual(shapeOf(byStep!, from));
    }
    const deferrals = await h.ctx.db.select().from(activity).where(and(eq(activity.kind, 'defer'), inArray(activity.leadId, people.map((l) => l.id))));
    expect(deferrals).toHaveLength(4);
    expect(deferrals.every((d) => (d.data as { why: string }).why === 'window' && (d.data as { until: string }).until === MONDAY_0900_BERLIN.toISOString())).toBe(true);
    expect(await messagesOf(people.map((l) => l.id))).toHaveLength(0);

    // Monday 09:00:30 in Berlin: the delayed step jobs would fire in two real days; reconcile wakes them.
    setClock(MONDAY_0900_BERLIN.getTime() + 30_000);
    await h.ctx.queues.step.drain(true);
    expect((await reconcile(h.ctx)).steps).toBeGreaterThanOrEqual(5);
    const all = [...people, ...late].map((l) => l.email);
    await eventually('five emails on Monday', async () => (mailsTo(all).length >= 5 ? true : null), 30_000);
    await sendQueueIdle();
    expect(mailsTo(all)).toHaveLength(5);
  });
});
