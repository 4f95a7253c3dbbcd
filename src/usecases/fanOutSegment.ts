// A segmented send to everyone already in its audience. The fan-out is a row in Postgres before anyone
// is told it started; its pages stream leads in key order (never OFFSET), and each page's enrollments
// and the checkpoint (the last key done) commit in one transaction under the row's lock. A job only
// names the fan-out: a crash, a stalled or failed job, or a Redis wipe loses nothing, because reconcile
// re-enqueues every running fan-out and the next page starts from the row's checkpoint.
//
// A page also takes its new enrollments' first step, in bulk: what runStep would load one lead at a time
// (lead, account, signals, recent sends) is loaded for the page in a constant number of queries, the same
// pure decide() runs for each enrollment in memory, and the page's enrollments (with their decided state),
// message rows and activity are written in a constant number of statements in the page's transaction.
// After commit its send jobs (and step jobs only for those that wait or were deferred) go out with addBulk.
// A page run twice skips leads already enrolled; a crash after commit leaves `queued` messages and due
// enrollments, which reconcile enqueues again with the same deterministic job ids. A job runs several
// pages, each page's jobs going to Redis while the next page's transaction runs.
import { randomUUID } from 'node:crypto';
import { asc, inArray } from 'drizzle-orm';
import type { Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import { logActivity, type ActivityEntry } from '../db/activity.js';
import type { Tx } from '../db/client.js';
import { engagementOf, loadEngagementOfLeads, loadRecentSendsOf, profileOf } from '../db/facts.js';
import { insertLiveEnrollments, insertQueuedMessages, lockPageLeads, type PageLead, type PageMessage } from '../db/pageWrites.js';
import { inIds, isoOnce } from '../db/params.js';
import { audienceWhere, countAudience, failFanout, insertFanout, lockFanout, readFanout, recentFanouts, recordPage, type Fanout } from '../db/fanouts.js';
import { accounts, enrollments, leads } from '../db/schema.js';
import { sequencesToEnroll } from '../engine/audience.js';
import { decide, initialEnrollment, type Decision } from '../engine/decide.js';
import { enqueueFanout } from '../queue/index.js';
import { decisionRecords, enqueueFollowups, noFollowups, type Followups } from './applyDecision.js';
import { factsOf, RecentSends } from './engineInput.js';
import { UseCaseError } from './errors.js';

export const FANOUT_PAGE = 1000;

export interface StartedFanOut {
  fanoutId: string;
  sequence: string;
  status: 'running';
  /** Leads in the audience now: what the fan-out will scan. */
  audience: number;
}

/** Records the fan-out, then queues its first page. Returns once the row exists (whatever Redis says). */
export async function startFanOut(ctx: Context, sequenceId: string, source: 'api' | 'cli' = 'api'): Promise<StartedFanOut> {
  const seq = ctx.config.sequences.get(sequenceId);
  if (!seq) throw new UseCaseError('unknown_sequence', `unknown sequence "${sequenceId}"`, 'sequence');
  // A fan-out sends to a whole audience at once; one-to-one mail goes lead by lead, from the rep.
  if (seq.mode !== 'segmented') {
    throw new UseCaseError('not_segmented', `sequence "${sequenceId}" is ${seq.mode}: only a segmented sequence fans out; enroll leads in a one-to-one sequence one at a time (lead.upsert with "sequence", or an event)`, 'sequence');
  }
  const audience = { stage: seq.stage, personas: seq.personas ?? null };
  const now = ctx.now();
  const fanout = await ctx.db.transaction(async (tx) => {
    const f = await insertFanout(tx, { sequenceId, sequenceVersion: seq.version, audience, total: await countAudience(tx, audience), source, startedAt: now });
    await logActivity(tx, [{ sequenceId, kind: 'fanout', detail: `fan-out ${f.id} started for up to ${f.total} leads in ${seq.stage}`, data: { fanoutId: f.id } }]);
    return f;
  });
  // Accepted is accepted: with Redis away, the row stays running and reconcile queues it once Redis is back.
  await enqueueFanout(ctx.queues, fanout.id, null).catch((err: unknown) =>
    console.error(`fan-out ${fanout.id}: recorded, not yet queued (reconcile will): ${err instanceof Error ? err.message : String(err)}`),
  );
  return { fanoutId: fanout.id, sequence: sequenceId, status: 'running', audience: fanout.total };
}

export interface FanOutPage {
  /** running: another page follows; done: this was the last; finished: nothing to do (done, failed or unknown). */
  status: 'running' | 'done' | 'failed' | 'finished';
  enrolled: number;
  scanned: number;
  /** The checkpoint after this page. */
  next: string | null;
}

/** Runs the fan-out's next page from its checkpoint, with its enrollments' first step, and queues the one after it. */
export async function fanOutPage(ctx: Context, fanoutId: string, pageSize = FANOUT_PAGE): Promise<FanOutPage> {
  return fanOutPages(ctx, fanoutId, { pages: 1, pageSize });
}

/** Pages one fan-out job runs before it hands the rest to the next job (about a second of work each). */
export const FANOUT_PAGES_PER_JOB = 10;

/** A page under way: its last key once it holds its locks (null when no page follows it), and its outcome. */
interface Launched {
  scanned: Promise<string | null>;
  result: Promise<PageRun | 'moved'>;
}

/**
 * Runs up to `pages` pages of the fan-out in turn (each its own transaction and checkpoint, as one page
 * per job would), then queues the job for the rest. Pages overlap: once a page holds its leads' locks,
 * the next page starts on a second connection from that page's last key, locking its own leads and
 * deciding in memory while the first writes and commits. It writes only after it holds the fan-out's row and finds
 * the checkpoint where it expected (else it rolls back and the run starts again from the row's), so pages
 * still commit one after another, in key order. A page's send and step jobs go to Redis while the next
 * page runs; at most one page's jobs are in flight, and they are awaited before the next are added, so an
 * error from Redis stops the run. What it did not add, reconcile does (a queued message, a due
 * enrollment), as after a crash.
 */
export async function fanOutPages(ctx: Context, fanoutId: string, opts: { pages?: number; pageSize?: number } = {}): Promise<FanOutPage> {
  const { pages = FANOUT_PAGES_PER_JOB, pageSize = FANOUT_PAGE } = opts;
  const sum: FanOutPage = { status: 'finished', enrolled: 0, scanned: 0, next: null };
  const launched: Launched[] = [];
  const launch = (from: string | null | undefined, after: Launched | null): Launched => {
    let scannedAs!: (last: string | null) => void;
    const scanned = new Promise<string | null>((resolve) => (scannedAs = resolve));
    // A page started ahead writes only once the page before it has committed and left more to do.
    const before = after?.result.then((r) => r !== 'moved' && r.page.status === 'running', () => false) ?? null;
    const result = runPage(ctx, fanoutId, pageSize, from, scannedAs, before).finally(() => scannedAs(null));
    // Awaited below (or at the end, whatever happens); until then a rejection is held, not reported.
    result.catch(() => {});
    launched.push({ scanned, result });
    return launched.at(-1)!;
  };
  let inFlight: Promise<void> | null = null;
  try {
    let done = 0;
    let cur: Launched | null = launch(undefined, null);
    while (cur && done < pages) {
      const last: string | null = await cur.scanned;
      const next: Launched | null = last !== null && done + 1 < pages ? launch(last, cur) : null;
      const r: PageRun | 'moved' = await cur.result;
      if (r === 'moved') {
        // Another job moved the checkpoint meanwhile: what this page read is stale, and so is the page
        // started after it (which, seeing this one write nothing, writes nothing either). Start again
        // from the row's checkpoint.
        await next?.result;
        cur = launch(undefined, null);
        continue;
      }
      done++;
      if (inFlight) await inFlight;
      inFlight = enqueueFollowups(ctx, r.out);
      inFlight.catch(() => {});
      Object.assign(sum, { status: r.page.status, enrolled: sum.enrolled + r.page.enrolled, scanned: sum.scanned + r.page.scanned, next: r.page.next });
      cur = r.page.status === 'running' ? next : null;
    }
  } finally {
    // No page is left running when the job ends. One started ahead writes nothing when the page before
    // it wrote nothing; when the run stops on an error after that page committed (Redis refusing the
    // jobs before), it may still commit, and its jobs, like that page's, are left to reconcile.
    await Promise.allSettled(launched.map((l) => l.result));
    await inFlight?.catch(() => {});
  }
  await Promise.all([inFlight, sum.status === 'running' ? enqueueFanout(ctx.queues, fanoutId, sum.next) : null]);
  return sum;
}

interface PageRun {
  page: FanOutPage;
  out: Followups;
}

/** Thrown inside a page's transaction to roll it back: the checkpoint is not where the page started. */
class CheckpointMoved extends Error {}

/**
 * One page in one transaction: its enrollments, their first step and the checkpoint; what to enqueue
 * after commit goes in `out`. `from` is the checkpoint the page starts after (undefined: the row's, as
 * read now); `scanned` is told the page's last key as soon as the page holds its leads' locks, or null
 * when it is the last page. `before`, for a page started ahead, says whether the page before it committed and left
 * more to do. Returns 'moved' (and writes nothing) when it did not, or when the row's checkpoint is not
 * `from` once locked.
 */
async function runPage(
  ctx: Context,
  fanoutId: string,
  pageSize: number,
  from: string | null | undefined,
  scanned: (last: string | null) => void,
  before: Promise<boolean> | null,
): Promise<PageRun | 'moved'> {
  const now = ctx.now();
  const out = noFollowups();
  try {
    const page = await ctx.db.transaction(async (tx): Promise<FanOutPage> => {
      // Read without its lock: what the page reads and decides needs only the audience and the start,
      // and the lock, held by the page before until it commits, is taken (and the start checked) to write.
      const seen = await readFanout(tx, fanoutId);
      if (!seen || seen.status !== 'running') return { status: 'finished', enrolled: 0, scanned: 0, next: seen?.afterLeadId ?? null };
      const after = from === undefined ? seen.afterLeadId : from;
      const seq = ctx.config.sequences.get(seen.sequenceId);
      if (!seq) {
        const f = await lockFanout(tx, fanoutId);
        if (!f || f.status !== 'running') return { status: 'finished', enrolled: 0, scanned: 0, next: f?.afterLeadId ?? null };
        const why = `sequence "${f.sequenceId}" is no longer in the configuration`;
        await failFanout(tx, f.id, why, now);
        await logActivity(tx, [{ sequenceId: f.sequenceId, kind: 'fanout', detail: `fan-out ${f.id} failed: ${why}`, data: { fanoutId: f.id } }]);
        return { status: 'failed', enrolled: 0, scanned: 0, next: f.afterLeadId };
      }
      const keys = await tx
        .select({ id: leads.id, accountId: leads.accountId })
        .from(leads)
        .where(audienceWhere(seen.audience, after))
        .orderBy(leads.id)
        .limit(pageSize);
      const last = keys.length < pageSize;
      const lastLeadId = keys.length ? keys[keys.length - 1]!.id : null;
      // The next page starts once this one holds every lock it takes before the row's (its accounts'
      // and leads'): started earlier, it could take an account this page still needs and then wait for
      // this page to commit.
      const decided = keys.length ? await decidePage(ctx, tx, seq, seen.audience, keys, now, () => scanned(last ? null : lastLeadId)) : [];
      scanned(last ? null : lastLeadId);
      // Two jobs for one fan-out (a stalled one given back while its successor runs) take turns on the
      // row's lock; a page whose start another has moved since writes nothing.
      if (before && !(await before)) throw new CheckpointMoved();
      const f = await lockFanout(tx, fanoutId);
      if (!f || f.status !== 'running') return { status: 'finished', enrolled: 0, scanned: 0, next: f?.afterLeadId ?? null };
      if (f.afterLeadId !== after) throw new CheckpointMoved();
      const enrolled = decided.length ? await writePage(tx, seq, decided, now, out) : 0;
      await recordPage(tx, f.id, { lastLeadId, scanned: keys.length, enrolled, last, at: now });
      if (last) await logActivity(tx, [{ sequenceId: f.sequenceId, kind: 'fanout', detail: finishedLine(f, keys.length, enrolled), data: { fanoutId: f.id } }]);
      return { status: last ? 'done' : 'running', enrolled, scanned: keys.length, next: lastLeadId ?? f.afterLeadId };
    });
    return { page, out };
  } catch (err) {
    if (err instanceof CheckpointMoved) return 'moved';
    throw err;
  }
}

type Row = PageLead;

type Decided = { id: string; row: Row; d: Decision; messages: PageMessage[]; activity: ActivityEntry[] };

/**
 * Locks the page's leads that the sequence takes (and, with caps, their accounts first; then says so
 * through `locked`) and decides each one's first step in memory (what a step job's runStep would do, by
 * the same decide()). Nothing is written: writePage does that once the page holds the fan-out's row.
 */
async function decidePage(
  ctx: Context,
  tx: Tx,
  seq: Sequence,
  audience: Fanout['audience'],
  keys: { id: string; accountId: string }[],
  now: Date,
  locked: () => void,
): Promise<Decided[]> {
  const { funnel } = ctx.config;
  // With caps, the page counts its accounts' sends as runStep does, under the accounts' locks (taken, as
  // everywhere, before their leads'), so no step job at those accounts adds one meanwhile.
  if (funnel.caps.lead || funnel.caps.account) {
    const accountIds = [...new Set(keys.map((k) => k.accountId))];
    await tx.select({ id: accounts.id }).from(accounts).where(inArray(accounts.id, accountIds)).orderBy(asc(accounts.id)).for('no key update');
  }
  // The leads, locked (as enroll() has its caller do): a trigger enrolling one of them now waits for this
  // page and then sees its enrollment, which may already be completed. Without the lock it would find no
  // live enrollment once the page commits, and enroll the lead again. Read under the lock, a lead that
  // left the audience since the page's keys were read is left out.
  const ids = keys.map((k) => k.id);
  const page = await lockPageLeads(tx, ids, audienceWhere(audience));
  locked();
  const past = await tx
    .select({ leadId: enrollments.leadId, sequenceId: enrollments.sequenceId, state: enrollments.state, enteredAt: enrollments.enteredAt, stageEnteredAt: enrollments.stageEnteredAt })
    .from(enrollments)
    .where(inIds(enrollments.leadId, ids));
  const pastBy = new Map<string, typeof past>();
  for (const p of past) pastBy.set(p.leadId, [...(pastBy.get(p.leadId) ?? []), p]);
  const chosen = page.filter(({ lead, account }) =>
    sequencesToEnroll([seq], { lead, profile: profileOf(lead, account), enrollments: pastBy.get(lead.id) ?? [] }, { on: 'manual', sequenceId: seq.id }, now).enroll.length > 0,
  );
  if (!chosen.length) return [];

  // What loadFacts reads for one enrollment, for the whole page at once.
  const [signalsBy, recent] = await Promise.all([
    loadEngagementOfLeads(tx, chosen.map((c) => c.lead.id)),
    loadRecentSendsOf(tx, funnel, chosen.map((c) => c.lead), now),
  ]);
  const sends = new RecentSends(recent);

  // One enrollment after another, as step jobs would run: a send decided here counts against the caps
  // of the next person at the account. A new enrollment's run starts now (its entered_at).
  const run = { sequenceId: seq.id, since: now };
  const decided: Decided[] = [];
  for (const row of chosen) {
    const { lead, account } = row;
    const facts = factsOf(ctx, seq, lead, account, {
      engagement: engagementOf(funnel, lead, signalsBy.get(lead.id) ?? [], now, run),
      recentSends: sends.of(lead.id, account.id),
    });
    const d = decide(seq, initialEnrollment(seq, now), { type: 'wake' }, facts, now);
    sends.count(d, lead.id, account.id, now);
    const id = randomUUID();
    decided.push({ id, row, d, ...decisionRecords(ctx, id, seq, d, lead, account) });
  }
  return decided;
}

/**
 * Writes the decided page in a constant number of statements: enrollments (with their decided state),
 * message rows and activity. Returns how many were enrolled; their send and step jobs go into `out`.
 */
async function writePage(tx: Tx, seq: Sequence, decided: Decided[], now: Date, out: Followups): Promise<number> {
  // Inserted live, so the one-live-enrollment index still guards against a second (a lead enrolled since
  // it was read is skipped); those whose first step already ended the run are then marked so.
  const iso = isoOnce();
  const inserted = await insertLiveEnrollments(
    tx,
    decided.map(({ id, row, d }) => {
      const e = d.enrollment;
      // Revision 1: the first transition of a row born at 0, as applyDecision would have bumped it.
      return { id, leadId: row.lead.id, sequenceId: seq.id, sequenceVersion: seq.version, cursor: e.cursor, nextDueAt: e.state === 'active' && e.nextDueAt ? iso(e.nextDueAt) : null, revision: 1, progress: e.progress as unknown as Record<string, unknown>, stageEnteredAt: iso(row.lead.stageEnteredAt) };
    }),
  );
  const kept = new Set(inserted);
  const done = decided.filter((x) => kept.has(x.id));
  const ended = new Map<string, { state: string; exitReason: string | null; ids: string[] }>();
  for (const { id, d } of done) {
    if (d.enrollment.state === 'active') continue;
    const key = `${d.enrollment.state}\u0000${d.enrollment.exitReason ?? ''}`;
    (ended.get(key) ?? ended.set(key, { state: d.enrollment.state, exitReason: d.enrollment.exitReason, ids: [] }).get(key)!).ids.push(id);
  }
  await Promise.all([
    ...[...ended.values()].map((e) => tx.update(enrollments).set({ state: e.state, exitReason: e.exitReason, nextDueAt: null, endedAt: now }).where(inIds(enrollments.id, e.ids))),
    insertQueuedMessages(tx, done.flatMap((x) => x.messages)).then((sent) => out.sends.push(...sent.map((messageId) => ({ messageId })))),
    logActivity(tx, done.flatMap((x) => x.activity)),
  ]);
  for (const { id, d } of done) {
    const e = d.enrollment;
    if (e.state === 'active' && e.nextDueAt) out.steps.push({ job: { enrollmentId: id, revision: 1 }, at: e.nextDueAt });
  }
  return done.length;
}

function finishedLine(f: Fanout, scanned: number, enrolled: number): string {
  return `fan-out ${f.id} finished: ${f.enrolled + enrolled} enrolled of ${f.scanned + scanned} leads scanned`;
}

export interface FanOutSummary {
  id: string;
  sequence: string;
  sequenceVersion: string;
  status: string;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Leads in the audience when it started. */
  total: number;
  scanned: number;
  enrolled: number;
  pages: number;
  /** The last lead id done: where it resumes. */
  checkpoint: string | null;
  source: string;
  error: string | null;
}

/** The most recent fan-outs (every running one among them) and how far each got: `nurture fanout --status`. */
export async function listFanOuts(ctx: Pick<Context, 'db'>, limit = 20): Promise<FanOutSummary[]> {
  return (await recentFanouts(ctx.db, limit)).map((f) => ({
    id: f.id,
    sequence: f.sequenceId,
    sequenceVersion: f.sequenceVersion,
    status: f.status,
    startedAt: f.startedAt.toISOString(),
    updatedAt: f.updatedAt.toISOString(),
    finishedAt: f.finishedAt?.toISOString() ?? null,
    total: f.total,
    scanned: f.scanned,
    enrolled: f.enrolled,
    pages: f.pages,
    checkpoint: f.afterLeadId,
    source: f.source,
    error: f.error,
  }));
}
