// Hands one event (reply, bounce, unsubscribe, advance, out-of-office) to every live enrollment of a lead.
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import type { AccountRow, LeadRow } from '../db/facts.js';
import { decide, type EngineEvent } from '../engine/decide.js';
import { applyDecision, lockActiveEnrollments, type Followups } from './applyDecision.js';
import { loadFacts, stateOf } from './engineInput.js';

export async function notifyEnrollments(ctx: Context, tx: Tx, lead: LeadRow, account: AccountRow, event: EngineEvent, out: Followups): Promise<void> {
  for (const row of await lockActiveEnrollments(tx, lead.id)) {
    const seq = ctx.config.sequences.get(row.sequenceId);
    if (!seq) continue;
    // Only a gate re-check needs the full facts; exits and postponements are decided on the event alone.
    const facts = await loadFacts(ctx, tx, seq, row, lead, account);
    const d = decide(seq, stateOf(row), event, facts, ctx.now());
    if (d.commands.length || d.enrollment.state !== row.state) await applyDecision(ctx, tx, row, seq, d, lead, account, out);
  }
}
