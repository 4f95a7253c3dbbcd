// planEdit's pure part: what a YAML edit does to enrollments in flight, step by step, and that its
// cursor rule is the very rule decide() applies on the next wake.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SequenceSchema, type Sequence } from '../../src/config/schema.js';
import { decide, type Facts } from '../../src/engine/decide.js';
import { NO_ENGAGEMENT } from '../../src/engine/conditions.js';
import { effectAt, formatPlan, planFromGroups, type CursorGroup, type StoredVersion } from '../../src/usecases/planEdit.js';
import { remapCursor } from '../../src/engine/decide.js';

type StepSpec = string | [string, 'email' | 'wait', string?];

function sequence(id: string, version: string, steps: StepSpec[]): Sequence {
  const input = SequenceSchema.parse({
    name: id,
    mode: 'one_to_one',
    stage: 'awareness',
    steps: steps.map((s) => {
      const [stepId, type, extra] = typeof s === 'string' ? [s, s.startsWith('wait') ? 'wait' : 'email', undefined] : s;
      return type === 'wait' ? { id: stepId, type, for: extra ?? '3d' } : { id: stepId, type, template: extra ?? 'intro-note' };
    }),
  });
  return { ...input, id, version, file: `sequences/${id}.yaml` };
}

const stored = (s: Sequence, loadedAt?: Date): StoredVersion => ({ sequenceId: s.id, version: s.version, definition: { ...s }, ...(loadedAt ? { loadedAt } : {}) });
const group = (s: Sequence, cursor: string | null, count: number, waiting = false): CursorGroup => ({ sequenceId: s.id, version: s.version, cursor, waiting, count });

// The docs' example: tips removed, pause-2 lengthened, checklist's template changed.
const v1 = sequence('welcome', 'v1', ['hello', 'wait-1', 'tips', ['wait-2', 'wait', '3d'], ['checklist', 'email', 'value-playbook']]);
const v2 = sequence('welcome', 'v2', ['hello', 'wait-1', ['wait-2', 'wait', '5d'], ['checklist', 'email', 'value-benchmark']]);

describe('effectAt', () => {
  const prior = v1.steps.map((s) => s.id);
  it('continues where the step still exists', () => {
    expect(effectAt(v2, prior, 'hello', false)).toBe('continues');
    expect(effectAt(v2, prior, 'checklist', false)).toBe('continues');
  });
  it('keeps a started wait, even one whose length changed', () => {
    expect(effectAt(v2, prior, 'wait-2', true)).toBe('wait keeps due time');
    expect(effectAt(v2, prior, 'wait-1', true)).toBe('wait keeps due time');
  });
  it('skips a removed step to the next of the old version that still exists', () => {
    expect(effectAt(v2, prior, 'tips', false)).toBe('skips to wait-2');
  });
  it('completes when nothing after a removed step is left', () => {
    const shorter = sequence('welcome', 'v3', ['hello', 'wait-1']);
    expect(effectAt(shorter, prior, 'tips', false)).toBe('completes');
    expect(effectAt(shorter, prior, 'checklist', false)).toBe('completes');
  });
  it('completes when the old version is unknown, as decide does', () => {
    expect(effectAt(v2, undefined, 'tips', false)).toBe('completes');
  });
  it('exits when the sequence itself was removed', () => {
    expect(effectAt(undefined, prior, 'hello', false)).toBe('exits (sequence removed)');
  });
});

describe('planFromGroups', () => {
  it('groups enrollments in flight by step, in the old order, with what the edit does to each', () => {
    const plans = planFromGroups([stored(v1), stored(v2)], new Map([['welcome', v2]]), [
      group(v1, 'checklist', 1),
      group(v1, 'wait-2', 4, true),
      group(v1, 'tips', 2),
      group(v1, 'hello', 3),
      group(v1, 'wait-1', 5, true),
      // Already on the new version: the edit changes nothing for them.
      group(v2, 'wait-2', 7, true),
    ]);
    expect(plans).toEqual([
      {
        sequence: 'welcome',
        version: { from: 'v1', to: 'v2' },
        inFlight: 15,
        byStep: [
          { step: 'hello', enrollments: 3, effect: 'continues' },
          { step: 'wait-1', enrollments: 5, effect: 'wait keeps due time' },
          { step: 'tips', enrollments: 2, effect: 'skips to wait-2' },
          { step: 'wait-2', enrollments: 4, effect: 'wait keeps due time' },
          { step: 'checklist', enrollments: 1, effect: 'continues' },
        ],
      },
    ]);
  });

  it('plans each old version separately, and a removed sequence exits everyone in it', () => {
    const v0 = sequence('welcome', 'v0', ['hello', 'tips', 'extra', 'checklist']);
    const gone = sequence('retired', 'r1', ['hello']);
    const plans = planFromGroups([stored(v0), stored(v1), stored(v2), stored(gone)], new Map([['welcome', v2]]), [
      group(v0, 'extra', 2),
      group(v1, 'tips', 1),
      group(gone, 'hello', 6),
    ]);
    expect(plans.map((p) => [p.sequence, p.version, p.inFlight, p.byStep])).toEqual([
      ['retired', { from: 'r1', to: null }, 6, [{ step: 'hello', enrollments: 6, effect: 'exits (sequence removed)' }]],
      ['welcome', { from: 'v0', to: 'v2' }, 2, [{ step: 'extra', enrollments: 2, effect: 'skips to checklist' }]],
      ['welcome', { from: 'v1', to: 'v2' }, 1, [{ step: 'tips', enrollments: 1, effect: 'skips to wait-2' }]],
    ]);
  });

  it('shows a changed sequence nobody is in, and leaves out unchanged ones', () => {
    const other = sequence('other', 'o1', ['hello']);
    const plans = planFromGroups([stored(v1, new Date('2026-01-01')), stored(v2, new Date('2025-01-01')), stored(other)], new Map([['welcome', v2], ['other', other]]), []);
    // v1 is the latest loaded version; the new config has v2.
    expect(plans).toEqual([{ sequence: 'welcome', version: { from: 'v1', to: 'v2' }, inFlight: 0, byStep: [] }]);
    expect(planFromGroups([stored(v2)], new Map([['welcome', v2]]), [group(v2, 'hello', 3)])).toEqual([]);
    expect(formatPlan([])).toEqual(['no sequence changed: nothing in flight is affected']);
    expect(formatPlan(plans)[0]).toBe('welcome  v1 → v2  0 in flight');
  });
});

describe('the cursor rule is decide()\'s', () => {
  const now = new Date('2026-03-04T15:00:00Z');
  const facts = (prior: string[]): Facts => ({
    timeZone: 'UTC',
    window: null,
    caps: {},
    recentSends: { lead: [], account: [] },
    engagement: NO_ENGAGEMENT,
    profile: { lead: {}, account: {} },
    priorStepIds: prior,
  });
  // Sequences of waits only: a wait stops decide() at once, so the cursor it leaves is where it remapped to.
  const waits = (ids: string[], length = '1h') => sequence('w', `v-${ids.join('.')}-${length}`, ids.map((id): StepSpec => [id, 'wait', length]));

  it('agrees with decide() on every edit of a sequence', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 8 }).chain((old) =>
          fc.record({
            old: fc.constant(old.map((n) => `s${n}`)),
            kept: fc.subarray(old.map((n) => `s${n}`)),
            added: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
            at: fc.nat({ max: old.length - 1 }),
          }),
        ),
        ({ old, kept, added, at }) => {
          const next = [...kept];
          added.forEach((n, i) => next.splice(Math.min(i * 2, next.length), 0, `new${n}`));
          if (!next.length) return;
          const cursor = old[at]!;
          const seq = waits(next, '2h');
          const d = decide(seq, { state: 'active', cursor, nextDueAt: new Date(now.getTime() + 1_800_000), exitReason: null, progress: { sent: [], waiting: cursor } }, { type: 'wake' }, facts(old), now);
          const index = new Map(seq.steps.map((s, i) => [s.id, i]));
          const planned = remapCursor(cursor, index, old);
          expect(d.enrollment.state === 'completed' ? null : d.enrollment.cursor).toBe(planned);
          expect(effectAt(seq, old, cursor, true)).toBe(planned === null ? 'completes' : planned === cursor ? 'wait keeps due time' : `skips to ${planned}`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a started wait\'s due time in decide(), as the plan says', () => {
    const due = new Date(now.getTime() + 1_800_000);
    const seq = waits(['a', 'b'], '5d');
    const d = decide(seq, { state: 'active', cursor: 'a', nextDueAt: due, exitReason: null, progress: { sent: [], waiting: 'a' } }, { type: 'wake' }, facts(['a', 'b']), now);
    expect(d.enrollment.nextDueAt).toEqual(due);
    expect(effectAt(seq, ['a', 'b'], 'a', true)).toBe('wait keeps due time');
  });
});
