// Value-first thresholds: does a lead's engagement in its current stage earn the next stage?
import type { Funnel } from '../config/schema.js';
import { evaluate, type Engagement, type Profile } from '../engine/conditions.js';

export interface Advance {
  from: string;
  to: string;
  rule: string;
  evidence: { because: string[]; score: number; valuePieces: number; replied: boolean };
}

export function nextStage(funnel: Funnel, stage: string): string | null {
  const i = funnel.stages.indexOf(stage);
  return i >= 0 && i < funnel.stages.length - 1 ? funnel.stages[i + 1]! : null;
}

export function evaluateAdvance(funnel: Funnel, stage: string, engagement: Engagement, profile: Profile): Advance | null {
  const rule = funnel.advancement[stage];
  const to = nextStage(funnel, stage);
  if (!rule || !to) return null;
  const verdict = evaluate(rule.when, engagement, profile);
  if (!verdict.met) return null;
  return {
    from: stage,
    to,
    rule: `advancement.${stage}`,
    evidence: { because: verdict.because, score: Math.round(engagement.score * 100) / 100, valuePieces: engagement.valuePieces, replied: engagement.replied },
  };
}
