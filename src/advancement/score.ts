// Incremental, order-independent scoring. With a half-life, a signal's weight halves every half-life;
// storing the sum at a fixed reference time makes adding signals commutative, so the same signals in
// any order give the same score, and no history is replayed per event.
import { parseDuration } from '../config/duration.js';
import type { Funnel } from '../config/schema.js';

const REFERENCE = Date.UTC(2026, 0, 1);

export type SignalKind = 'open' | 'click' | 'reply' | 'auto_reply' | 'bounce' | 'complaint' | 'unsubscribe';

export interface ScoredSignal {
  kind: SignalKind;
  human: boolean;
  /** A value piece the signal engaged with (a click on a value link), if any. */
  valuePiece: string | null;
  at: Date;
}

export function signalWeight(funnel: Funnel, s: ScoredSignal): number {
  if (!s.human) return 0;
  const w = funnel.scoring.weights;
  switch (s.kind) {
    case 'open':
      return w.open;
    case 'click':
      return s.valuePiece ? w.value_click : w.click;
    case 'reply':
      return w.reply;
    default:
      return 0;
  }
}

function halfLifeMs(funnel: Funnel): number | null {
  return funnel.scoring.halfLife ? parseDuration(funnel.scoring.halfLife) : null;
}

export function addToScore(funnel: Funnel, scoreBase: number, s: ScoredSignal): number {
  const w = signalWeight(funnel, s);
  const h = halfLifeMs(funnel);
  return scoreBase + (h ? w * 2 ** ((s.at.getTime() - REFERENCE) / h) : w);
}

export function scoreAt(funnel: Funnel, scoreBase: number, now: Date): number {
  const h = halfLifeMs(funnel);
  return h ? scoreBase * 2 ** (-(now.getTime() - REFERENCE) / h) : scoreBase;
}

/**
 * A value piece is a link tagged `value:<name>` in a template, or, untagged, a link in an email step
 * of kind value (the piece is then that step).
 */
export function valuePieceOf(tag: string | null, messageKind: string, sequenceId: string | null, stepId: string | null): string | null {
  if (tag?.startsWith('value:')) return tag;
  if (messageKind === 'value' && sequenceId && stepId) return `step:${sequenceId}/${stepId}`;
  return null;
}
