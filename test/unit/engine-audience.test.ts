import { describe, expect, it } from 'vitest';
import { matchesAudience, reentryRefusal, sequencesToEnroll, triggeredBy, type Candidate, type PastEnrollment } from '../../src/engine/audience.js';
import { matchesFilter } from '../../src/engine/conditions.js';
import { at, makeSequence } from '../fixtures/simulate/engine.js';

const steps = [{ id: 'a', type: 'email', template: 't' }];
const now = at('2026-02-01T12:00:00Z');
const stageEnteredAt = at('2026-01-20T00:00:00Z');

function candidate(over: Partial<Candidate['lead']> = {}, profile: Partial<Candidate['profile']> = {}, enrollments: PastEnrollment[] = []): Candidate {
  return {
    lead: { stage: 'interest', persona: 'champion', stageEnteredAt, ...over },
    profile: { lead: { title: 'Head of Onboarding', attributes: { plan: 'trial', seats: 40 } }, account: { tier: 'enterprise', industry: 'SaaS' }, ...profile },
    enrollments,
  };
}
const past = (sequenceId: string, state: string, enteredAt: Date, stageAt = stageEnteredAt): PastEnrollment => ({ sequenceId, state, enteredAt, stageEnteredAt: stageAt });

describe('audience match', () => {
  it('needs the stage, one of the personas, and the filter', () => {
    const seq = makeSequence({ stage: 'interest', personas: ['champion', 'economic_buyer'], audience: { field: 'account.tier', in: ['enterprise', 'mid_market'] }, steps }, 's');
    expect(matchesAudience(seq, candidate())).toBe(true);
    expect(matchesAudience(seq, candidate({ stage: 'awareness' }))).toBe(false);
    expect(matchesAudience(seq, candidate({ persona: 'end_user' }))).toBe(false);
    expect(matchesAudience(seq, candidate({}, { account: { tier: 'smb' } }))).toBe(false);
    expect(matchesAudience(makeSequence({ stage: 'interest', steps }), candidate({ persona: 'anyone' }))).toBe(true);
  });

  it('filters: equals ignores case, in, exists, numeric comparisons, nested attributes, all/any/not', () => {
    const p = candidate().profile;
    expect(matchesFilter(p, { field: 'account.industry', equals: 'saas' })).toBe(true);
    expect(matchesFilter(p, { field: 'account.industry', equals: 'fintech' })).toBe(false);
    expect(matchesFilter(p, { field: 'lead.attributes.plan', in: ['Trial', 'paid'] })).toBe(true);
    expect(matchesFilter(p, { field: 'lead.attributes.region', exists: false })).toBe(true);
    expect(matchesFilter(p, { field: 'lead.title', exists: true })).toBe(true);
    expect(matchesFilter(p, { field: 'lead.attributes.seats', gte: 40, lt: 100 })).toBe(true);
    expect(matchesFilter(p, { field: 'lead.attributes.seats', gt: 40 })).toBe(false);
    expect(matchesFilter(p, { field: 'lead.title', gte: 1 })).toBe(false); // not a number
    expect(matchesFilter(p, { all: [{ field: 'account.tier', equals: 'enterprise' }, { not: { field: 'lead.attributes.plan', equals: 'paid' } }] })).toBe(true);
    expect(matchesFilter(p, { any: [{ field: 'account.tier', equals: 'smb' }, { field: 'lead.attributes.plan', equals: 'paid' }] })).toBe(false);
  });

  it('triggers: stage entry, a named event, or a manual enrollment into the named sequence', () => {
    const onStage = makeSequence({ steps }, 'on-stage');
    const onEvent = makeSequence({ entry: { on: 'event', event: 'webinar-signup' }, steps }, 'on-event');
    expect(triggeredBy(onStage, { on: 'stage_entry' })).toBe(true);
    expect(triggeredBy(onEvent, { on: 'stage_entry' })).toBe(false);
    expect(triggeredBy(onEvent, { on: 'event', event: 'webinar-signup' })).toBe(true);
    expect(triggeredBy(onEvent, { on: 'event', event: 'other' })).toBe(false);
    expect(triggeredBy(onStage, { on: 'manual', sequenceId: 'on-stage' })).toBe(true);
    expect(triggeredBy(onStage, { on: 'manual', sequenceId: 'on-event' })).toBe(false);
  });
});

describe('re-entry', () => {
  it('never while an enrollment in the same sequence is active', () => {
    const seq = makeSequence({ entry: { reentry: { after: '1d' } }, steps }, 's');
    expect(reentryRefusal(seq, candidate({}, {}, [past('s', 'active', at('2025-01-01T00:00:00Z'))]), now)).toBe('already enrolled');
  });

  it('once: never again', () => {
    const seq = makeSequence({ entry: { reentry: 'once' }, steps }, 's');
    expect(reentryRefusal(seq, candidate(), now)).toBeNull();
    expect(reentryRefusal(seq, candidate({}, {}, [past('s', 'completed', at('2024-01-01T00:00:00Z'), at('2023-01-01T00:00:00Z'))]), now)).toBe('enrolls once ever');
    expect(reentryRefusal(seq, candidate({}, {}, [past('other', 'completed', at('2024-01-01T00:00:00Z'))]), now)).toBeNull();
  });

  it('once per stage entry: again after the lead re-entered the stage', () => {
    const seq = makeSequence({ steps }, 's');
    expect(seq.entry.reentry).toBe('once_per_stage_entry');
    const sameEntry = [past('s', 'exited', at('2026-01-21T00:00:00Z'))];
    expect(reentryRefusal(seq, candidate({}, {}, sameEntry), now)).toBe('enrolls once per stage entry');
    const earlierEntry = [past('s', 'exited', at('2025-06-01T00:00:00Z'), at('2025-05-01T00:00:00Z'))];
    expect(reentryRefusal(seq, candidate({}, {}, earlierEntry), now)).toBeNull();
  });

  it('after a duration since the last entry', () => {
    const seq = makeSequence({ entry: { reentry: { after: '30d' } }, steps }, 's');
    expect(reentryRefusal(seq, candidate({}, {}, [past('s', 'completed', at('2026-01-10T00:00:00Z'))]), now)).toBe('enrolls again only after 30d');
    expect(reentryRefusal(seq, candidate({}, {}, [past('s', 'completed', at('2026-01-02T11:00:00Z'))]), now)).toBeNull();
  });
});

describe('choosing sequences', () => {
  const low = makeSequence({ priority: 1, exclusive: 'rep', steps }, 'low');
  const high = makeSequence({ priority: 20, exclusive: 'rep', steps }, 'high');
  const free = makeSequence({ priority: 5, steps }, 'free');
  const elsewhere = makeSequence({ stage: 'awareness', priority: 99, steps }, 'elsewhere');

  it('orders by priority, and one sequence per exclusive group', () => {
    const { enroll, refused } = sequencesToEnroll([low, free, high, elsewhere], candidate(), { on: 'stage_entry' }, now);
    expect(enroll.map((s) => s.id)).toEqual(['high', 'free']);
    expect(refused).toEqual([{ sequence: 'low', reason: 'another "rep" sequence is running' }]);
  });

  it('an exclusive group already running for the lead keeps the others out', () => {
    const { enroll, refused } = sequencesToEnroll([low, high, free], candidate({}, {}, [past('low', 'active', at('2026-01-21T00:00:00Z'))]), { on: 'stage_entry' }, now);
    expect(enroll.map((s) => s.id)).toEqual(['free']);
    expect(refused).toContainEqual({ sequence: 'high', reason: 'another "rep" sequence is running' });
    expect(refused).toContainEqual({ sequence: 'low', reason: 'already enrolled' });
  });

  it('a finished enrollment frees its exclusive group', () => {
    const { enroll } = sequencesToEnroll([low, high], candidate({}, {}, [past('low', 'completed', at('2025-01-21T00:00:00Z'), at('2025-01-01T00:00:00Z'))]), { on: 'stage_entry' }, now);
    expect(enroll.map((s) => s.id)).toEqual(['high']);
  });

  it('a re-entry refusal lets a lower-priority sequence of the same group run', () => {
    const onceHigh = makeSequence({ priority: 20, exclusive: 'rep', entry: { reentry: 'once' }, steps }, 'high');
    const { enroll, refused } = sequencesToEnroll([low, onceHigh], candidate({}, {}, [past('high', 'completed', at('2025-01-01T00:00:00Z'), at('2025-01-01T00:00:00Z'))]), { on: 'stage_entry' }, now);
    expect(enroll.map((s) => s.id)).toEqual(['low']);
    expect(refused).toEqual([{ sequence: 'high', reason: 'enrolls once ever' }]);
  });

  it('manual enrollment ignores the stage but not personas or filters, and says why it refused', () => {
    const ok = sequencesToEnroll([elsewhere], candidate(), { on: 'manual', sequenceId: 'elsewhere' }, now);
    expect(ok.enroll.map((s) => s.id)).toEqual(['elsewhere']);
    const picky = makeSequence({ personas: ['economic_buyer'], steps }, 'picky');
    const no = sequencesToEnroll([picky], candidate(), { on: 'manual', sequenceId: 'picky' }, now);
    expect(no.enroll).toEqual([]);
    expect(no.refused).toEqual([{ sequence: 'picky', reason: 'lead is not in the sequence audience' }]);
  });

  it('an event trigger picks only the sequences entered on that event', () => {
    const onEvent = makeSequence({ entry: { on: 'event', event: 'webinar' }, steps }, 'webinar');
    const { enroll } = sequencesToEnroll([onEvent, free], candidate(), { on: 'event', event: 'webinar' }, now);
    expect(enroll.map((s) => s.id)).toEqual(['webinar']);
  });

  it('an event trigger says why a lead outside a listening sequence\'s stage or audience was not enrolled', () => {
    const later = makeSequence({ stage: 'desire', entry: { on: 'event', event: 'trial_started' }, steps }, 'trial');
    const { enroll, refused } = sequencesToEnroll([later], candidate(), { on: 'event', event: 'trial_started' }, now);
    expect(enroll).toEqual([]);
    expect(refused).toEqual([{ sequence: 'trial', reason: `lead is in stage ${candidate().lead.stage}; the sequence is for stage desire` }]);
  });
});
