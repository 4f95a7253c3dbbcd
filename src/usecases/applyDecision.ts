// Carries an engine decision into Postgres inside the caller's transaction, and says what to enqueue
// once it commits. Shared by every use case that moves an enrollment, so there is one way to do it.
import { randomUUID } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import type { Sequence } from '../config/schema.js';
import type { Context } from '../context.js';
import { logActivity, type ActivityEntry } from '../db/activity.js';
import type { Tx } from '../db/client.js';
import type { AccountRow, LeadRow } from '../db/facts.js';
import { enrollments, messages } from '../db/schema.js';
import type { Command, Decision } from '../engine/decide.js';
import { describeLocal } from '../engine/time.js';
import { zoneOf } from './engineInput.js';
import { messageIdDomain, newMessageId } from '../mail/message.js';
import { senderFor } from '../mail/sender.js';
import { enqueueOutbound, enqueueSends, enqueueSteps, sendJobId, type OutboundJob, type SendJob, type StepJob } from '../queue/index.js';

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

export async function applyDecision(ctx: Context, tx: Tx, row: EnrollmentRow, seq: Pick<Sequence, 'id' | 'version'>, d: Decision, lead: LeadRow, account: AccountRow, out: Followups): Promise<void> {
  const now = ctx.now();
  const e = d.enrollment;
  const revision = row.revision + 1;
  const updated = await tx
    .update(enrollments)
    .set({ ...enrollmentChanges(d, seq, now), revision })
    // Optimistic guard: a concurrent writer that moved the row first wins, and this decision is dropped.
    .where(and(eq(enrollments.id, row.id), eq(enrollments.revision, row.revision)))
    .returning({ id: enrollments.id });
  if (!updated.length) return;

  if (e.state === 'exited') {
    // A step queued before the reply, exit or stage move must not go out after it.
    await tx
      .update(messages)
      .set({ status: 'cancelled', error: `enrollment ${e.state}: ${e.exitReason ?? ''}`.trim() })
      .where(and(eq(messages.enrollmentId, row.id), eq(messages.status, 'queued')));
  }
  const records = decisionRecords(ctx, row.id, seq, d, lead, account);
  // The inserts go out together (pipelined on the transaction's connection): one wait, not one each.
  await Promise.all([insertMessages(tx, records.messages).then((ids) => out.sends.push(...ids.map((messageId) => ({ messageId })))), logActivity(tx, records.activity)]);
  if (e.state === 'active' && e.nextDueAt) out.steps.push({ job: { enrollmentId: row.id, revision }, at: e.nextDueAt });
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

export type NewMessage = typeof messages.$inferInsert;

/**
 * The rows a decision adds, built in memory: a queued message per send (its id and Message-ID fixed
 * here, to the lead's address) and an activity entry per command. One enrollment's (applyDecision) or a
 * whole fan-out page's are written the same way.
 */
export function decisionRecords(ctx: Pick<Context, 'config' | 'settings'>, enrollmentId: string, seq: Pick<Sequence, 'id'>, d: Decision, lead: LeadRow, account: AccountRow): { messages: NewMessage[]; activity: ActivityEntry[] } {
  const base = { leadId: lead.id, accountId: account.id, email: lead.email, accountName: account.name, sequenceId: seq.id };
  const rows: NewMessage[] = [];
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
        status: 'queued',
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

/** Inserts queued messages, one per enrollment and step (a second is dropped): the ids of those inserted, to send. */
export async function insertMessages(tx: Tx, rows: NewMessage[]): Promise<string[]> {
  if (!rows.length) return [];
  const inserted = await tx.insert(messages).values(rows).onConflictDoNothing({ target: [messages.enrollmentId, messages.stepId] }).returning({ id: messages.id });
  return inserted.map((r) => r.id);
}

export async function enqueueFollowups(ctx: Context, f: Followups): Promise<void> {
  for (const r of f.resends) await ctx.queues.send.remove(sendJobId(r));
  const now = ctx.now();
  const soon = f.steps.filter((s) => !s.at || s.at.getTime() - now.getTime() <= stepJobHorizonMs(ctx.settings));
  // Three queues, no order between them: one round trip's wait, not three.
  await Promise.all([enqueueSends(ctx.queues, [...f.sends, ...f.resends]), enqueueSteps(ctx.queues, soon, now), enqueueOutbound(ctx.queues, f.outbound)]);
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
