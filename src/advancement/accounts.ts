// Buying-committee coverage: an account moves forward when enough of its people, across enough
// personas, are engaged. Pure: the same members give the same answer, whatever order they engaged in.
import type { Funnel } from '../config/schema.js';

export interface Member {
  persona: string;
  stage: string;
  engaged: boolean;
}

export interface AccountAdvance {
  from: string | null;
  to: string;
  rule: string;
  moveLeads: boolean;
  evidence: { engagedLeads: number; personas: string[] };
}

/** The furthest configured stage the account has earned beyond its current one, or null. */
export function evaluateAccount(funnel: Funnel, current: string | null, members: Member[]): AccountAdvance | null {
  const engaged = members.filter((m) => m.engaged);
  const personas = [...new Set(engaged.map((m) => m.persona))].sort();
  const at = current ? funnel.stages.indexOf(current) : -1;
  let best: AccountAdvance | null = null;
  for (const [stage, rule] of Object.entries(funnel.accounts.stages)) {
    const i = funnel.stages.indexOf(stage);
    if (i <= at || (best && i <= funnel.stages.indexOf(best.to))) continue;
    if (engaged.length >= rule.engagedLeads && personas.length >= rule.personas) {
      best = { from: current, to: stage, rule: `accounts.stages.${stage}`, moveLeads: rule.moveLeads, evidence: { engagedLeads: engaged.length, personas } };
    }
  }
  return best;
}

/** Leads an account advance carries along: those still in an earlier stage. */
export function leadsToMove<T extends { stage: string }>(funnel: Funnel, to: string, leads: T[]): T[] {
  const target = funnel.stages.indexOf(to);
  return leads.filter((l) => funnel.stages.indexOf(l.stage) < target);
}
