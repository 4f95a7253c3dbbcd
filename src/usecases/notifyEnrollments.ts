// Hands one event (reply, bounce, unsubscribe, advance, out-of-office, manual exit, release) to the live
// enrollments of a lead, all of them or those of one sequence.
import type { Context } from '../context.js';
import type { Tx } from '../db/client.js';
import { profileOf, type AccountRow, type LeadRow } from '../db/facts.js';
import { NO_ENGAGEMENT } from '../engine/conditions.js';
import { decide, type EngineEvent, type Facts } from '../engine/decide.js';
import { applyDecision, lockActiveEnrollments, type Followups } from './applyDecision.js';
import { loadFacts, preferenceOf, stateOf, zoneOf } from './engineInput.js';

export async function notifyEnrollments(ctx: Context, tx: Tx, lead: LeadRow, account: AccountRow, event: EngineEvent, out: Followups, only?: { sequenceId: string }): Promise<number> {
  let changed = 0;
  for (const row of await lockActiveEnrollments(tx, lead.id)) {
    if (only && row.sequenceId !== only.sequenceId) continue;
    const seq = ctx.config.sequences.get(row.sequenceId);
    if (!seq) continue;
    // Only a run of the steps (a gate re-check, a release) reads the facts; exits and postponements are
    // decided on the event alone.
    const runs = event.type === 'engaged' || event.type === 'release';
    const facts = runs ? await loadFacts(ctx, tx, seq, row, lead, account) : eventOnlyFacts(ctx, lead, account);
    const d = decide(seq, stateOf(row), event, facts, ctx.now());
    if (d.commands.length || d.enrollment.state !== row.state) {
      // Only a run of the steps maps the cursor onto the current YAML; an exit or postponement keeps the
      // version it was on, so the next run can still map a removed step.
      await applyDecision(ctx, tx, row, runs ? seq : { id: seq.id, version: row.sequenceVersion }, d, lead, account, out);
      changed++;
    }
  }
  return changed;
}

function eventOnlyFacts(ctx: Context, lead: LeadRow, account: AccountRow): Facts {
  return {
    timeZone: zoneOf(ctx, lead, account),
    window: null,
    caps: {},
    recentSends: { lead: [], account: [] },
    engagement: NO_ENGAGEMENT,
    profile: profileOf(lead, account),
    preference: preferenceOf(lead),
  };
}
