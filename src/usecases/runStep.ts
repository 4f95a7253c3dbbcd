// A step job fired: ask the engine what this enrollment does now, and do it.
import { eq } from 'drizzle-orm';
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { accounts, enrollments, leads } from '../db/schema.js';
import { decide } from '../engine/decide.js';
import type { StepJob } from '../queue/index.js';
import { applyDecision, enqueueFollowups, noFollowups } from './applyDecision.js';
import { loadFacts, stateOf } from './engineInput.js';

export type RunStepResult = 'ran' | 'stale' | 'ended';

export async function runStep(ctx: Context, job: StepJob): Promise<RunStepResult> {
  const out = noFollowups();
  const result = await ctx.db.transaction(async (tx): Promise<RunStepResult> => {
    // With frequency caps, the account's sends are counted and added in one step at a time: two step
    // jobs for people at one account must not both see room under the cap.
    const { caps } = ctx.config.funnel;
    if (caps.lead || caps.account) await lockAccountOfEnrollment(tx, job.enrollmentId);
    // The enrollment, locked, with its lead and account (unlocked), in one round trip.
    const [locked] = await tx
      .select({ row: enrollments, lead: leads, account: accounts })
      .from(enrollments)
      .innerJoin(leads, eq(leads.id, enrollments.leadId))
      .innerJoin(accounts, eq(accounts.id, leads.accountId))
      .where(eq(enrollments.id, job.enrollmentId))
      .for('no key update', { of: enrollments });
    if (!locked || locked.row.state !== 'active') return 'ended';
    const { row, ...la } = locked;
    // Every transition bumps the revision: a job for an older one was superseded and must do nothing.
    if (row.revision !== job.revision) return 'stale';
    const seq = ctx.config.sequences.get(row.sequenceId);
    const decision = seq
      ? decide(seq, stateOf(row), { type: 'wake' }, await loadFacts(ctx, tx, seq, row, la.lead, la.account), ctx.now())
      : null;
    if (!seq || !decision) {
      // The sequence was deleted from the YAML: nothing more can run for it.
      const removed = { id: row.sequenceId, version: row.sequenceVersion };
      await applyDecision(ctx, tx, row, removed, { enrollment: { ...stateOf(row), state: 'exited', exitReason: 'manual', nextDueAt: null }, commands: [{ type: 'exit', reason: 'manual', because: 'sequence removed from configuration' }] }, la.lead, la.account, out);
      return 'ran';
    }
    await applyDecision(ctx, tx, row, seq, decision, la.lead, la.account, out);
    return 'ran';
  });
  await enqueueFollowups(ctx, out);
  return result;
}

async function lockAccountOfEnrollment(tx: Tx, enrollmentId: string): Promise<void> {
  const [ref] = await tx.select({ accountId: leads.accountId }).from(enrollments).innerJoin(leads, eq(leads.id, enrollments.leadId)).where(eq(enrollments.id, enrollmentId));
  if (ref) await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, ref.accountId)).for('no key update');
}
