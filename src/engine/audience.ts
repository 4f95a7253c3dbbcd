// Who belongs in which sequence: audience match, entry trigger, re-entry policy, priority and exclusivity.
import { parseDuration } from '../config/duration.js';
import type { Sequence } from '../config/schema.js';
import { matchesFilter, type Profile } from './conditions.js';

export type Trigger = { on: 'stage_entry' } | { on: 'event'; event: string } | { on: 'manual'; sequenceId: string };

export interface PastEnrollment {
  sequenceId: string;
  state: string;
  enteredAt: Date;
  stageEnteredAt: Date;
}

export interface Candidate {
  lead: { stage: string; persona: string; stageEnteredAt: Date; mailPreference?: string };
  profile: Profile;
  enrollments: PastEnrollment[];
}

export function matchesAudience(seq: Sequence, c: Candidate): boolean {
  if (seq.stage !== c.lead.stage) return false;
  if (seq.personas && !seq.personas.includes(c.lead.persona)) return false;
  return seq.audience ? matchesFilter(c.profile, seq.audience) : true;
}

export function triggeredBy(seq: Sequence, t: Trigger): boolean {
  if (t.on === 'manual') return seq.id === t.sequenceId;
  if (t.on === 'event') return seq.entry.on === 'event' && seq.entry.event === t.event;
  return seq.entry.on === 'stage_entry';
}

/** Why a sequence may not take this lead again, or null when it may. */
export function reentryRefusal(seq: Sequence, c: Candidate, now: Date): string | null {
  const past = c.enrollments.filter((e) => e.sequenceId === seq.id);
  if (past.some((e) => e.state === 'active')) return 'already enrolled';
  const policy = seq.entry.reentry;
  if (policy === 'once') return past.length ? 'enrolls once ever' : null;
  if (policy === 'once_per_stage_entry') {
    return past.some((e) => e.stageEnteredAt.getTime() === c.lead.stageEnteredAt.getTime()) ? 'enrolls once per stage entry' : null;
  }
  const after = parseDuration(policy.after);
  return past.some((e) => now.getTime() - e.enteredAt.getTime() < after) ? `enrolls again only after ${policy.after}` : null;
}

/**
 * The sequences a trigger enrolls a lead in, highest priority first. A sequence whose `exclusive`
 * group is already running for the lead (or was just chosen) waits its turn.
 */
export function sequencesToEnroll(sequences: Iterable<Sequence>, c: Candidate, trigger: Trigger, now: Date): { enroll: Sequence[]; refused: { sequence: string; reason: string }[] } {
  const bySequence = new Map<string, Sequence>();
  for (const s of sequences) bySequence.set(s.id, s);
  const taken = new Set(
    c.enrollments.filter((e) => e.state === 'active').map((e) => bySequence.get(e.sequenceId)?.exclusive).filter((g): g is string => !!g),
  );
  const enroll: Sequence[] = [];
  const refused: { sequence: string; reason: string }[] = [];
  const ordered = [...bySequence.values()].sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
  for (const seq of ordered) {
    if (!triggeredBy(seq, trigger)) continue;
    // A manual enrollment names its sequence: the stage need not match, but personas and filters still do.
    const fits = trigger.on === 'manual'
      ? (!seq.personas || seq.personas.includes(c.lead.persona)) && (!seq.audience || matchesFilter(c.profile, seq.audience))
      : matchesAudience(seq, c);
    if (!fits) {
      if (trigger.on === 'manual') refused.push({ sequence: seq.id, reason: 'lead is not in the sequence audience' });
      // An event names its sequences too: say why this lead is not in one, rather than answer with nothing.
      else if (trigger.on === 'event') refused.push({ sequence: seq.id, reason: seq.stage !== c.lead.stage ? `lead is in stage ${c.lead.stage}; the sequence is for stage ${seq.stage}` : 'lead is not in the sequence audience' });
      continue;
    }
    if (seq.mode === 'segmented' && c.lead.mailPreference === 'rep_only') {
      refused.push({ sequence: seq.id, reason: "the person chose to hear only from their rep (preference page)" });
      continue;
    }
    const refusal = reentryRefusal(seq, c, now);
    if (refusal) {
      refused.push({ sequence: seq.id, reason: refusal });
      continue;
    }
    if (seq.exclusive && taken.has(seq.exclusive)) {
      refused.push({ sequence: seq.id, reason: `another "${seq.exclusive}" sequence is running` });
      continue;
    }
    if (seq.exclusive) taken.add(seq.exclusive);
    enroll.push(seq);
  }
  return { enroll, refused };
}
