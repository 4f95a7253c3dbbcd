// Enrolls a lead in the sequences a trigger (stage entry, an event, a manual entry) and the sequences'
// rules call for: shared by every use case that puts a lead somewhere new (enrollLead, advanceLead), so
// neither has to import the other for it.
import { eq, sql } from 'drizzle-orm';
import type { Context } from '../context.js';
import { logActivity } from '../db/activity.js';
import type { Tx } from '../db/client.js';
import { profileOf, type AccountRow, type LeadRow } from '../db/facts.js';
import { enrollments } from '../db/schema.js';
import { sequencesToEnroll, type Trigger } from '../engine/audience.js';
import { initialEnrollment } from '../engine/decide.js';
import type { Followups } from './applyDecision.js';

export interface Enrollment {
  enrolled: { enrollmentId: string; sequence: string }[];
  refused: { sequence: string; reason: string }[];
}

/** Enrolls a lead whose row the caller has locked in `tx`, as the trigger and the sequences' rules say. */
export async function enroll(ctx: Context, tx: Tx, lead: LeadRow, account: AccountRow, trigger: Trigger, out: Followups): Promise<Enrollment> {
  if (lead.status !== 'active') return { enrolled: [], refused: [{ sequence: '*', reason: `lead is ${lead.status}` }] };
  const now = ctx.now();
  const past = await tx
    .select({ sequenceId: enrollments.sequenceId, state: enrollments.state, enteredAt: enrollments.enteredAt, stageEnteredAt: enrollments.stageEnteredAt })
    .from(enrollments)
    .where(eq(enrollments.leadId, lead.id));
  const { enroll: chosen, refused } = sequencesToEnroll(ctx.config.sequences.values(), { lead, profile: profileOf(lead, account), enrollments: past }, trigger, now);
  const enrolled: Enrollment['enrolled'] = [];
  for (const seq of chosen) {
    const start = initialEnrollment(seq, now);
    const [row] = await tx
      .insert(enrollments)
      .values({ leadId: lead.id, sequenceId: seq.id, sequenceVersion: seq.version, state: 'active', cursor: start.cursor, nextDueAt: start.nextDueAt, progress: { ...start.progress }, stageEnteredAt: lead.stageEnteredAt })
      .onConflictDoNothing({ target: [enrollments.leadId, enrollments.sequenceId], where: sql`state = 'active'` })
      .returning({ id: enrollments.id });
    if (!row) {
      refused.push({ sequence: seq.id, reason: 'already enrolled' });
      continue;
    }
    enrolled.push({ enrollmentId: row.id, sequence: seq.id });
    out.steps.push({ job: { enrollmentId: row.id, revision: 0 }, at: now });
  }
  await logActivity(
    tx,
    enrolled.map((e) => ({ leadId: lead.id, accountId: account.id, email: lead.email, accountName: account.name, sequenceId: e.sequence, kind: 'enrolled', detail: `enrolled (${trigger.on.replace('_', ' ')})` })),
  );
  return { enrolled, refused };
}
