// A step job fired: ask the engine what this enrollment does now, and do it.
import type { Context } from '../context.js';
import { decide } from '../engine/decide.js';
import type { StepJob } from '../queue/index.js';
import { applyDecision, enqueueFollowups, lockEnrollment, noFollowups } from './applyDecision.js';
import { loadFacts, loadLeadAndAccount, stateOf } from './engineInput.js';

export type RunStepResult = 'ran' | 'stale' | 'ended';

export async function runStep(ctx: Context, job: StepJob): Promise<RunStepResult> {
  const out = noFollowups();
  const result = await ctx.db.transaction(async (tx): Promise<RunStepResult> => {
    const row = await lockEnrollment(tx, job.enrollmentId);
    if (!row || row.state !== 'active') return 'ended';
    // Every transition bumps the revision: a job for an older one was superseded and must do nothing.
    if (row.revision !== job.revision) return 'stale';
    const la = await loadLeadAndAccount(tx, row.leadId);
    if (!la) return 'ended';
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
