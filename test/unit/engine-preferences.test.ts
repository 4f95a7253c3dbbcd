// The person's choices on the preference page, as the pure engine honours them: only the rep's mail
// (segmented sequences end and are not entered), or a pause (every step waits until it ends).
import { describe, expect, it } from 'vitest';
import { sequencesToEnroll } from '../../src/engine/audience.js';
import { decide, initialEnrollment } from '../../src/engine/decide.js';
import { at, makeFacts, makeSequence } from '../fixtures/simulate/engine.js';

const steps = [
  { id: 'intro', type: 'email', template: 't' },
  { id: 'pause', type: 'wait', for: '3d' },
  { id: 'follow-up', type: 'email', template: 't' },
];
const newsletter = makeSequence({ mode: 'segmented', stage: 'awareness', steps }, 'newsletter');
const notes = makeSequence({ mode: 'one_to_one', stage: 'awareness', steps }, 'notes');
const t0 = at('2026-01-12T15:00:00Z');
const WAKE = { type: 'wake' } as const;

describe('only the rep\'s mail', () => {
  const repOnly = makeFacts({ preference: { repOnly: true, pausedUntil: null } });
  it('ends a segmented sequence before its next email, and lets a one-to-one sequence send', () => {
    const d = decide(newsletter, initialEnrollment(newsletter, t0), WAKE, repOnly, t0);
    expect(d.commands.map((c) => c.type)).toEqual(['exit']);
    expect(d.enrollment).toMatchObject({ state: 'exited', exitReason: 'preference' });
    const one = decide(notes, initialEnrollment(notes, t0), WAKE, repOnly, t0);
    expect(one.commands.find((c) => c.type === 'send')).toBeTruthy();
  });

  it('keeps the person out of segmented sequences when they are chosen', () => {
    const candidate = { lead: { stage: 'awareness', persona: 'champion', stageEnteredAt: t0, mailPreference: 'rep_only' }, profile: { lead: {}, account: {} } as never, enrollments: [] };
    const r = sequencesToEnroll([newsletter, notes], candidate, { on: 'stage_entry' }, t0);
    expect(r.enroll.map((s) => s.id)).toEqual(['notes']);
    expect(r.refused).toEqual([{ sequence: 'newsletter', reason: expect.stringMatching(/only from their rep/) }]);
  });
});

describe('a pause', () => {
  it('defers every email until the pause ends, then sends', () => {
    const until = at('2026-02-11T15:00:00Z');
    const paused = makeFacts({ preference: { repOnly: false, pausedUntil: until } });
    const d = decide(notes, initialEnrollment(notes, t0), WAKE, paused, t0);
    expect(d.commands).toEqual([{ type: 'defer', step: 'intro', until, why: 'paused' }]);
    expect(d.enrollment.nextDueAt).toEqual(until);
    // Not even an operator's release sends during the person's pause.
    expect(decide(notes, d.enrollment, { type: 'release' }, paused, t0).commands.some((c) => c.type === 'send')).toBe(false);
    const later = decide(notes, d.enrollment, WAKE, paused, until);
    expect(later.commands.find((c) => c.type === 'send')).toMatchObject({ step: { id: 'intro' } });
  });
});
