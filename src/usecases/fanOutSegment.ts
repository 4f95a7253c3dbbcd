// A segmented send to everyone already in its audience. The fan-out is a row in Postgres before anyone
// is told it started; its pages stream leads in key order (never OFFSET), and each page's enrollments
// and the checkpoint (the last key done) commit in one transaction under the row's lock. A job only
// names the fan-out: a crash, a stalled or failed job, or a Redis wipe loses nothing, because reconcile
// re-enqueues every running fan-out and the next page starts from the row's checkpoint.
import { eq, inArray, sql } from 'drizzle-orm';
import type { Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import type { Tx } from '../db/client.js';
import { profileOf } from '../db/facts.js';
import { audienceWhere, countAudience, failFanout, insertFanout, lockFanout, recentFanouts, recordPage, type Fanout } from '../db/fanouts.js';
import { accounts, enrollments, leads } from '../db/schema.js';
import { sequencesToEnroll } from '../engine/audience.js';
import { initialEnrollment } from '../engine/decide.js';
import { enqueueFanout, enqueueSteps } from '../queue/index.js';
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

/** Runs the fan-out's next page from its checkpoint and queues the one after it. */
export async function fanOutPage(ctx: Context, fanoutId: string, pageSize = FANOUT_PAGE): Promise<FanOutPage> {
  const now = ctx.now();
  const page = await ctx.db.transaction(async (tx): Promise<FanOutPage & { inserted: string[] }> => {
    // Two jobs for one fan-out (a stalled one given back while its successor runs) take turns here, and
    // the second reads the checkpoint the first left: no page is enrolled twice, none is skipped.
    const f = await lockFanout(tx, fanoutId);
    if (!f || f.status !== 'running') return { status: 'finished', enrolled: 0, scanned: 0, next: f?.afterLeadId ?? null, inserted: [] };
    const seq = ctx.config.sequences.get(f.sequenceId);
    if (!seq) {
      const why = `sequence "${f.sequenceId}" is no longer in the configuration`;
      await failFanout(tx, f.id, why, now);
      await logActivity(tx, [{ sequenceId: f.sequenceId, kind: 'fanout', detail: `fan-out ${f.id} failed: ${why}`, data: { fanoutId: f.id } }]);
      return { status: 'failed', enrolled: 0, scanned: 0, next: f.afterLeadId, inserted: [] };
    }
    const rows = await tx
      .select({ lead: leads, account: accounts })
      .from(leads)
      .innerJoin(accounts, eq(accounts.id, leads.accountId))
      .where(audienceWhere(f.audience, f.afterLeadId))
      .orderBy(leads.id)
      .limit(pageSize);
    const inserted = rows.length ? await enrollPage(ctx, tx, seq, rows, now) : [];
    const last = rows.length < pageSize;
    const lastLeadId = rows.length ? rows[rows.length - 1]!.lead.id : null;
    await recordPage(tx, f.id, { lastLeadId, scanned: rows.length, enrolled: inserted.length, last, at: now });
    if (last) await logActivity(tx, [{ sequenceId: f.sequenceId, kind: 'fanout', detail: finishedLine(f, rows.length, inserted.length), data: { fanoutId: f.id } }]);
    return { status: last ? 'done' : 'running', enrolled: inserted.length, scanned: rows.length, next: lastLeadId ?? f.afterLeadId, inserted };
  });
  // After commit: each enrollment is due now in Postgres, so a step Redis never got is reconcile's to add.
  await enqueueSteps(ctx.queues, page.inserted.map((id) => ({ job: { enrollmentId: id, revision: 0 }, at: now })), now);
  if (page.status === 'running') await enqueueFanout(ctx.queues, fanoutId, page.next);
  return { status: page.status, enrolled: page.enrolled, scanned: page.scanned, next: page.next };
}

type Row = { lead: typeof leads.$inferSelect; account: typeof accounts.$inferSelect };

async function enrollPage(ctx: Context, tx: Tx, seq: Sequence, page: Row[], now: Date): Promise<string[]> {
  const ids = page.map((p) => p.lead.id);
  const past = await tx
    .select({ leadId: enrollments.leadId, sequenceId: enrollments.sequenceId, state: enrollments.state, enteredAt: enrollments.enteredAt, stageEnteredAt: enrollments.stageEnteredAt })
    .from(enrollments)
    .where(inArray(enrollments.leadId, ids));
  const pastBy = new Map<string, typeof past>();
  for (const p of past) pastBy.set(p.leadId, [...(pastBy.get(p.leadId) ?? []), p]);

  const start = initialEnrollment(seq, now);
  const chosen = page.filter(({ lead, account }) =>
    sequencesToEnroll([seq], { lead, profile: profileOf(lead, account), enrollments: pastBy.get(lead.id) ?? [] }, { on: 'manual', sequenceId: seq.id }, now).enroll.length > 0,
  );
  if (!chosen.length) return [];
  const inserted = await tx
    .insert(enrollments)
    .values(chosen.map(({ lead }) => ({ leadId: lead.id, sequenceId: seq.id, sequenceVersion: seq.version, state: 'active', cursor: start.cursor, nextDueAt: now, progress: { ...start.progress }, stageEnteredAt: lead.stageEnteredAt })))
    .onConflictDoNothing({ target: [enrollments.leadId, enrollments.sequenceId], where: sql`state = 'active'` })
    .returning({ id: enrollments.id });
  return inserted.map((r) => r.id);
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
