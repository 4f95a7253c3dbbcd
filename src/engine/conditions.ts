// Evaluates audience filters and engagement conditions against facts. Pure: the same facts, the same answer.
import type { Comparison, Condition, FieldFilter } from '../config/schema.js';

export interface Profile {
  lead: Record<string, unknown> & { attributes?: Record<string, unknown> };
  account: Record<string, unknown> & { attributes?: Record<string, unknown> };
}

/** Human engagement only: machine opens and scanner clicks never reach these numbers. */
export interface Engagement {
  score: number;
  valuePieces: number;
  replied: boolean;
  openedSteps: string[];
  clickedSteps: string[];
  clickedTags: string[];
}

export const NO_ENGAGEMENT: Engagement = { score: 0, valuePieces: 0, replied: false, openedSteps: [], clickedSteps: [], clickedTags: [] };

export function fieldValue(profile: Profile, path: string): unknown {
  let v: unknown = profile;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function compare(value: unknown, c: Comparison): boolean {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (Number.isNaN(n)) return false;
  return (c.gte === undefined || n >= c.gte) && (c.gt === undefined || n > c.gt) && (c.lte === undefined || n <= c.lte) && (c.lt === undefined || n < c.lt);
}

const same = (a: unknown, b: unknown) => (typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b);

export function matchesFilter(profile: Profile, f: FieldFilter): boolean {
  if ('all' in f) return f.all.every((x) => matchesFilter(profile, x));
  if ('any' in f) return f.any.some((x) => matchesFilter(profile, x));
  if ('not' in f) return !matchesFilter(profile, f.not);
  const v = fieldValue(profile, f.field);
  const present = v !== undefined && v !== null && v !== '';
  if (f.exists !== undefined && f.exists !== present) return false;
  if (f.equals !== undefined && !same(v, f.equals)) return false;
  if (f.in !== undefined && !f.in.some((x) => same(v, x))) return false;
  if ([f.gte, f.gt, f.lte, f.lt].some((x) => x !== undefined) && !compare(v, f)) return false;
  return true;
}

export interface Verdict {
  met: boolean;
  /** Which leaves held, with the numbers they saw: the evidence recorded with an advance or a branch. */
  because: string[];
}

export function evaluate(c: Condition, engagement: Engagement, profile: Profile): Verdict {
  if ('all' in c) {
    const parts = c.all.map((x) => evaluate(x, engagement, profile));
    return { met: parts.every((p) => p.met), because: parts.flatMap((p) => p.because) };
  }
  if ('any' in c) {
    const parts = c.any.map((x) => evaluate(x, engagement, profile));
    const hit = parts.find((p) => p.met);
    return hit ? { met: true, because: hit.because } : { met: false, because: parts.flatMap((p) => p.because) };
  }
  if ('not' in c) {
    const inner = evaluate(c.not, engagement, profile);
    return { met: !inner.met, because: inner.because.map((b) => `not (${b})`) };
  }
  if ('score' in c) {
    const met = compare(engagement.score, c.score);
    return { met, because: [`score ${round(engagement.score)} ${describeComparison(c.score)}${met ? '' : ' (not met)'}`] };
  }
  if ('valuePieces' in c) {
    const met = compare(engagement.valuePieces, c.valuePieces);
    return { met, because: [`${engagement.valuePieces} value pieces ${describeComparison(c.valuePieces)}${met ? '' : ' (not met)'}`] };
  }
  if ('replied' in c) {
    const met = engagement.replied === c.replied;
    return { met, because: [engagement.replied ? 'replied' : 'has not replied'] };
  }
  if ('opened' in c) {
    const met = engagement.openedSteps.includes(c.opened);
    return { met, because: [`${met ? 'opened' : 'did not open'} ${c.opened}`] };
  }
  if ('clicked' in c) {
    if (typeof c.clicked === 'string') {
      const met = engagement.clickedSteps.includes(c.clicked);
      return { met, because: [`${met ? 'clicked in' : 'did not click in'} ${c.clicked}`] };
    }
    const met = engagement.clickedTags.includes(c.clicked.tag);
    return { met, because: [`${met ? 'clicked' : 'did not click'} a link tagged ${c.clicked.tag}`] };
  }
  const met = matchesFilter(profile, c.field);
  return { met, because: [`field filter ${met ? 'matched' : 'did not match'}`] };
}

function describeComparison(c: Comparison): string {
  return Object.entries(c)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${{ gte: '≥', gt: '>', lte: '≤', lt: '<' }[k]} ${v}`)
    .join(' and ');
}

const round = (n: number) => Math.round(n * 100) / 100;
