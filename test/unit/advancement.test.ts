import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateAdvance, nextStage } from '../../src/advancement/rules.js';
import { addToScore, scoreAt, valuePieceOf, type ScoredSignal } from '../../src/advancement/score.js';
import { FunnelSchema } from '../../src/config/schema.js';
import { NO_ENGAGEMENT } from '../../src/engine/conditions.js';

const funnel = FunnelSchema.parse({
  stages: ['awareness', 'interest', 'desire'],
  personas: { champion: { label: 'Champion' } },
  senders: {},
  scoring: { weights: { open: 1, click: 3, value_click: 5, reply: 10 }, halfLife: '30d' },
  advancement: {
    awareness: { when: { any: [{ replied: true }, { all: [{ score: { gte: 8 } }, { valuePieces: { gte: 2 } }] }] } },
  },
});
const profile = { lead: {}, account: {} };
const day = 86_400_000;
const t0 = new Date('2026-03-02T10:00:00Z');

describe('scoring', () => {
  it('weighs only human signals, value clicks above plain clicks', () => {
    const s = (kind: ScoredSignal['kind'], human: boolean, valuePiece: string | null = null) => addToScore({ ...funnel, scoring: { ...funnel.scoring, halfLife: undefined } }, 0, { kind, human, valuePiece, at: t0 });
    expect(s('open', true)).toBe(1);
    expect(s('click', true)).toBe(3);
    expect(s('click', true, 'value:guide')).toBe(5);
    expect(s('reply', true)).toBe(10);
    expect(s('click', false, 'value:guide')).toBe(0);
    expect(s('open', false)).toBe(0);
  });

  it('halves a signal every half-life', () => {
    const base = addToScore(funnel, 0, { kind: 'reply', human: true, valuePiece: null, at: t0 });
    expect(scoreAt(funnel, base, t0)).toBeCloseTo(10, 6);
    expect(scoreAt(funnel, base, new Date(t0.getTime() + 30 * day))).toBeCloseTo(5, 6);
    expect(scoreAt(funnel, base, new Date(t0.getTime() + 60 * day))).toBeCloseTo(2.5, 6);
  });

  it('gives the same score for the same signals in any order', () => {
    const signal = fc.record({
      kind: fc.constantFrom('open' as const, 'click' as const, 'reply' as const),
      human: fc.boolean(),
      valuePiece: fc.option(fc.constantFrom('value:a', 'value:b'), { nil: null }),
      at: fc.date({ min: new Date('2026-01-01T00:00:00Z'), max: new Date('2027-01-01T00:00:00Z'), noInvalidDate: true }),
    });
    fc.assert(
      fc.property(fc.array(signal, { maxLength: 30 }), fc.integer(), (signals, seed) => {
        const shuffled = [...signals].sort((a, b) => ((a.at.getTime() ^ seed) % 7) - ((b.at.getTime() ^ seed) % 7));
        const sum = (xs: ScoredSignal[]) => xs.reduce((acc, s) => addToScore(funnel, acc, s), 0);
        const now = new Date('2027-01-02T00:00:00Z');
        expect(scoreAt(funnel, sum(shuffled), now)).toBeCloseTo(scoreAt(funnel, sum(signals), now), 6);
      }),
    );
  });

  it('names value pieces by tag, or by step for links in value emails', () => {
    expect(valuePieceOf('value:guide', 'pitch', 's', 'x')).toBe('value:guide');
    expect(valuePieceOf(null, 'value', 'seq', 'intro')).toBe('step:seq/intro');
    expect(valuePieceOf('pitch:demo', 'pitch', 'seq', 'offer')).toBeNull();
  });
});

describe('value-first thresholds', () => {
  it('advances on a reply, or on score and value pieces together, and records why', () => {
    expect(evaluateAdvance(funnel, 'awareness', NO_ENGAGEMENT, profile)).toBeNull();
    expect(evaluateAdvance(funnel, 'awareness', { ...NO_ENGAGEMENT, score: 20, valuePieces: 1 }, profile)).toBeNull();
    const byScore = evaluateAdvance(funnel, 'awareness', { ...NO_ENGAGEMENT, score: 9, valuePieces: 2 }, profile);
    expect(byScore).toMatchObject({ from: 'awareness', to: 'interest', rule: 'advancement.awareness' });
    expect(byScore!.evidence.because).toEqual(['score 9 ≥ 8', '2 value pieces ≥ 2']);
    const byReply = evaluateAdvance(funnel, 'awareness', { ...NO_ENGAGEMENT, replied: true }, profile);
    expect(byReply!.evidence.because).toEqual(['replied']);
  });

  it('has no rule for a stage without one, and no stage after the last', () => {
    expect(evaluateAdvance(funnel, 'interest', { ...NO_ENGAGEMENT, replied: true }, profile)).toBeNull();
    expect(nextStage(funnel, 'desire')).toBeNull();
    expect(nextStage(funnel, 'awareness')).toBe('interest');
  });
});

describe('account coverage', () => {
  const withAccounts = FunnelSchema.parse({
    stages: ['awareness', 'interest', 'desire', 'action'],
    personas: { champion: { label: 'C' }, economic_buyer: { label: 'E' }, end_user: { label: 'U' } },
    senders: {},
    accounts: { stages: { interest: { engagedLeads: 2, personas: 1 }, desire: { engagedLeads: 3, personas: 2, moveLeads: true } } },
  });
  const m = (persona: string, engaged: boolean, stage = 'awareness') => ({ persona, engaged, stage });

  it('needs both enough engaged people and enough personas, and picks the furthest stage earned', async () => {
    const { evaluateAccount } = await import('../../src/advancement/accounts.js');
    expect(evaluateAccount(withAccounts, null, [m('champion', true), m('champion', false)])).toBeNull();
    expect(evaluateAccount(withAccounts, null, [m('champion', true), m('champion', true), m('champion', true)])).toMatchObject({ to: 'interest' });
    const desire = evaluateAccount(withAccounts, null, [m('champion', true), m('champion', true), m('economic_buyer', true), m('end_user', false)]);
    expect(desire).toMatchObject({ from: null, to: 'desire', rule: 'accounts.stages.desire', moveLeads: true, evidence: { engagedLeads: 3, personas: ['champion', 'economic_buyer'] } });
    // Never backwards, never the same stage again.
    expect(evaluateAccount(withAccounts, 'desire', [m('champion', true), m('champion', true), m('economic_buyer', true)])).toBeNull();
  });

  it('moves only the leads still behind the account', async () => {
    const { leadsToMove } = await import('../../src/advancement/accounts.js');
    const moved = leadsToMove(withAccounts, 'desire', [m('champion', true, 'awareness'), m('champion', true, 'desire'), m('end_user', false, 'action')]);
    expect(moved.map((x) => x.stage)).toEqual(['awareness']);
  });
});
