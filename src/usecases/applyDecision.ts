// Carries an engine decision into Postgres inside the caller's transaction, and says what to enqueue
// once it commits. Shared by every use case that moves an enrollment, so there is one way to do it.
import { randomUUID } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { insertQueuedMessages, updateEnrollments, type PageMessage } from '../db/pageWrites.js';
import type { Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import { logActivity, type ActivityEntry } from '../db/activity.js';
import type { Tx } from '../db/client.js';
import type { AccountRow, LeadRow } from '../db/facts.js';
import { enrollments } from '../db/schema.js';
import type { Command, Decision } from '../engine/decide.js';
import { describeLocal } from '../engine/time.js';
import { zoneOf } from './engineInput.js';
import { messageIdDomain, newMessageId } from '../mail/message.js';
import { senderFor } from '../mail/sender.js';
import { enqueueDue, enqueueOutbound, enqueueSends, sendJobId, type OutboundJob, type SendJob, type StepJob } from '../queue/index.js';

export type { EnrollmentRow } from '../db/facts.js';
import type { EnrollmentRow } from '../db/facts.js';

export interface Followups {
  steps: { job: StepJob; at: Date | null }[];
  sends: SendJob[];
  /** Messages going out again (released after a hold): their finished job must make way first. */
  resends: SendJob[];
  outbound: OutboundJob[];
}

export const noFollowups = (): Followups => ({ steps: [], sends: [], resends: [], outbound: [] });

/** Adds what a committed transaction queues to what others did, for one enqueue after them all. */
export function addFollowups(into: Followups, from: Followups): void {
  into.steps.push(...from.steps);
  into.sends.push(...from.sends);
  into.resends.push(...from.resends);
  into.outbound.push(...from.outbound);
}

export async function applyDecision(ctx: Context, tx: Tx, row: EnrollmentRow, seq: Pick<Sequence, 'id' | 'version'>, d: Decision, lead: LeadRow, account: AccountRow, out: Followups): Promise<void> {
  await applyDecisions(ctx, tx, [{ row, seq, decision: d, lead, account }], out);
}

export interface DecisionFor {
  row: EnrollmentRow;
  seq: Pick<Sequence, 'id' | 'version'>;
  decision: Decision;
  lead: LeadRow;
  account: AccountRow;
}

/**
 * Decisions for many enrollments (step jobs run together) in a statement per table, as one would be:
 * each enrollment moves only if it is still at the revision it was decided at, and only those moved get
 * their messages and activity.
 */
export async function applyDecisions(ctx: Context, tx: Tx, items: DecisionFor[], out: Followups): Promise<void> {
  if (!items.length) return;
  const now = ctx.now();
  // Optimistic guard: a concurrent writer that moved a row first wins, and that decision is dropped.
  const moved = new Set(await updateEnrollments(tx, items.map(({ row, seq, decision }) => ({ id: row.id, revision: row.revision, ...enrollmentChanges(decision, seq, now) }))));
  const applied = items.filter((i) => moved.has(i.row.id));
  const exited = applied.filter((i) => i.decision.enrollment.state === 'exited');
  // A step queued before the reply, exit or stage move must not go out after it (cancelled before this
  // decision's own messages are written).
  if (exited.length) await cancelQueuedMessages(tx, exited.map((i) => ({ enrollmentId: i.row.id, error: `enrollment ${i.decision.enrollment.state}: ${i.decision.enrollment.exitReason ?? ''}`.trim() })));
  const records = applied.map((i) => decisionRecords(ctx, i.row.id, i.seq, i.decision, i.lead, i.account));
  // The inserts go out together (pipelined on the transaction's connection): one wait, not one each.
  await Promise.all([
    insertQueuedMessages(tx, records.flatMap((r) => r.messages)).then((ids) => out.sends.push(...ids.map((messageId) => ({ messageId })))),
    logActivity(tx, records.flatMap((r) => r.activity)),
  ]);
  for (const { row, decision } of applied) {
    const e = decision.enrollment;
    if (e.state === 'active' && e.nextDueAt) out.steps.push({ job: { enrollmentId: row.id, revision: row.revision + 1 }, at: e.nextDueAt });
  }
}

/** The enrollment's columns after a decision (its revision is the writer's to bump). */
export function enrollmentChanges(d: Decision, seq: Pick<Sequence, 'version'>, now: Date) {
  const e = d.enrollment;
  return {
    state: e.state,
    cursor: e.cursor,
    nextDueAt: e.state === 'active' ? e.nextDueAt : null,
    exitReason: e.exitReason,
    progress: e.progress as unknown as Record<string, unknown>,
    sequenceVersion: seq.version,
    ...(e.state !== 'active' ? { endedAt: now } : {}),
  };
}

/**
 * The rows a decision adds, built in memory: a message to queue per send (its id and Message-ID fixed
 * here, to the lead's address) and an activity entry per command. One enrollment's (applyDecision) or a
 * whole fan-out page's are written the same way.
 */
export function decisionRecords(ctx: Pick<Context, 'config' | 'settings'>, enrollmentId: string, seq: Pick<Sequence, 'id'>, d: Decision, lead: LeadRow, account: AccountRow): { messages: PageMessage[]; activity: ActivityEntry[] } {
  const base = { leadId: lead.id, accountId: account.id, email: lead.email, accountName: account.name, sequenceId: seq.id };
  const rows: PageMessage[] = [];
  const log: ActivityEntry[] = [];
  for (const c of d.commands) {
    if (c.type === 'send') {
      const id = randomUUID();
      // The Message-ID names the domain the message will be from (or MESSAGE_ID_DOMAIN): decided once, here.
      const from = senderFor(ctx.config.funnel, ctx.config.sequences.get(seq.id) ?? { mode: 'segmented' }, c.step, lead.owner)?.from.email ?? null;
      rows.push({
        id,
        enrollmentId,
        leadId: lead.id,
        sequenceId: seq.id,
        stepId: c.step.id,
        messageId: newMessageId(id, messageIdDomain(ctx.settings.messageIdDomain, from)),
        templateName: c.step.template,
        toAddress: lead.email,
        kind: c.step.kind,
      });
    }
    log.push({ ...base, stepId: stepOf(c), kind: activityKind(c), detail: describe(c, zoneOf(ctx, lead, account)), data: dataOf(c) });
  }
  return { messages: rows, activity: log };
}

async function cancelQueuedMessages(tx: Tx, rows: { enrollmentId: string; error: string }[]): Promise<void> {
  await tx.execute(sql`
    update messages m set status = 'cancelled', error = x.error
    from json_to_recordset(${JSON.stringify(rows)}::json) as x("enrollmentId" uuid, error text)
    where m.enrollment_id = x."enrollmentId" and m.status = 'queued'`);
}

export async function enqueueFollowups(ctx: Context, f: Followups): Promise<void> {
  for (const r of f.resends) await ctx.queues.send.remove(sendJobId(r));
  const now = ctx.now();
  const soon = f.steps.filter((s) => !s.at || s.at.getTime() - now.getTime() <= stepJobHorizonMs(ctx.settings));
  // Three queues, no order between them: one round trip's wait, not three.
  await Promise.all([enqueueSends(ctx.queues, [...f.sends, ...f.resends]), enqueueDue(ctx.queues, soon, now), enqueueOutbound(ctx.queues, f.outbound)]);
}

/**
 * How far ahead a step gets its (delayed) job in Redis. One due later waits in Postgres alone (its
 * enrollment's next_due_at), and reconcile, which runs every RECONCILE_EVERY_SECONDS, adds its job, with
 * the same id and the delay left, once it comes within this horizon: at least one reconcile falls in
 * the last stretch before it is due, so it still runs on time. A week's wait after a fan-out's first
 * email is then no longer a hundred thousand delayed jobs held (and written) in Redis for a week.
 */
export const stepJobHorizonMs = (settings: Pick<Context['settings'], 'reconcileEverySeconds'>): number => Math.max(2 * settings.reconcileEverySeconds, 120) * 1000;

function stepOf(c: Command): string | null {
  switch (c.type) {
    case 'send':
      return c.step.id;
    case 'defer':
    case 'hold':
    case 'skip':
    case 'branch':
      return c.step;
    default:
      return null;
  }
}

function activityKind(c: Command): string {
  return c.type === 'send' ? 'queued' : c.type === 'wakeAt' ? 'wait' : c.type;
}

/** A log line for a command; times also as the lead reads them, in their own zone. */
function describe(c: Command, zone: string): string {
  switch (c.type) {
    case 'send':
      return `queued ${c.step.kind} email "${c.step.template}"`;
    case 'wakeAt':
      return `next at ${c.at.toISOString()}, ${describeLocal(c.at, zone)} (${c.why})`;
    case 'defer':
      return `deferred until ${c.until.toISOString()}, ${describeLocal(c.until, zone)} for the lead (${c.why.replace('_', ' ')})`;
    case 'hold':
      return `held until ${c.until.toISOString()}: ${c.reason}`;
    case 'skip':
      return `skipped: ${c.reason}`;
    case 'branch':
      return `branch → ${c.to ?? 'end'} because ${c.because.join('; ')}`;
    case 'exit':
      return `exited: ${c.reason}${c.because ? ` (${c.because})` : ''}`;
  }
}

/** The command's fields as the activity row's data: its insert stringifies them (Dates become ISO strings). */
function dataOf(c: Command): Record<string, unknown> {
  const { type: _t, ...rest } = c;
  return rest;
}

export const lockEnrollment = (tx: Tx, id: string) =>
  tx.select().from(enrollments).where(eq(enrollments.id, id)).for('no key update').then((r) => r[0] ?? null);

/** Active enrollments of a lead, locked: for events that touch all of them (reply, unsubscribe, advance). */
export const lockActiveEnrollments = (tx: Tx, leadId: string) =>
  tx.select().from(enrollments).where(and(eq(enrollments.leadId, leadId), sql`${enrollments.state} = 'active'`)).orderBy(enrollments.id).for('no key update');
