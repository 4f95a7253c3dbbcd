// Each sequence as it performs with people: per step, sent, human opens and clicks (machines apart),
// replies, unsubscribes and bounces; how many of its leads advanced and how fast; where its enrolled
// leads stand; and its version history from live edits. The console's sequences page and GET /v1/sequences.
import type { Context } from '../context.js';
import { advancementBySequence, enrollmentCounts, sequenceHistory } from '../db/reads.js';
import { funnelBySequenceStep } from '../db/stats.js';
import { groupSequences, rate, withRates, type StepCounts } from './stats.js';

export interface SequenceView {
  id: string;
  name: string | null;
  mode: string | null;
  stage: string | null;
  /** The version live now; null for a sequence only the database still knows (removed from config/). */
  version: string | null;
  steps: (StepCounts & { step: string; type: string | null; activeHere: number })[];
  totals: StepCounts;
  enrollments: { active: number; completed: number; exited: number };
  /** Leads enrolled in it that advanced a stage afterwards, of all it enrolled; median days to that advance. */
  advancement: { enrolled: number; advanced: number; rate: number | null; medianDays: number | null };
  versions: { version: string; loadedAt: string; steps: number; live: boolean }[];
}

const ZERO = withRates({ sent: 0, bounced: 0, humanOpens: 0, machineOpens: 0, humanClicks: 0, botClicks: 0, replies: 0, unsubscribes: 0 });

export async function sequencesView(ctx: Pick<Context, 'db' | 'config'>, opts: { since?: Date; sequence?: string } = {}): Promise<SequenceView[]> {
  const [funnel, counts, advancement, history] = await Promise.all([
    funnelBySequenceStep(ctx.db, { since: opts.since ?? null, sequence: opts.sequence ?? null }),
    enrollmentCounts(ctx.db),
    advancementBySequence(ctx.db),
    sequenceHistory(ctx.db),
  ]);
  const figures = new Map(groupSequences(funnel).map((s) => [s.sequence, s]));
  const ids = new Set([...ctx.config.sequences.keys(), ...figures.keys(), ...counts.map((c) => c.sequence)]);
  const out: SequenceView[] = [];
  for (const id of ids) {
    if (opts.sequence && id !== opts.sequence) continue;
    const seq = ctx.config.sequences.get(id) ?? null;
    const fig = figures.get(id);
    const mine = counts.filter((c) => c.sequence === id);
    const stepIds = [...(seq?.steps.map((s) => s.id) ?? []), ...(fig?.steps.map((s) => s.step) ?? []).filter((s) => !seq?.steps.some((x) => x.id === s))];
    const adv = advancement.find((a) => a.sequence === id);
    out.push({
      id,
      name: seq?.name ?? null,
      mode: seq?.mode ?? null,
      stage: seq?.stage ?? null,
      version: seq?.version ?? null,
      steps: stepIds.map((step) => ({
        step,
        type: seq?.steps.find((s) => s.id === step)?.type ?? null,
        activeHere: mine.filter((c) => c.state === 'active' && c.step === step).reduce((n, c) => n + c.n, 0),
        ...(fig?.steps.find((s) => s.step === step) ?? ZERO),
      })),
      totals: fig?.totals ?? ZERO,
      enrollments: {
        active: mine.filter((c) => c.state === 'active').reduce((n, c) => n + c.n, 0),
        completed: mine.filter((c) => c.state === 'completed').reduce((n, c) => n + c.n, 0),
        exited: mine.filter((c) => c.state === 'exited').reduce((n, c) => n + c.n, 0),
      },
      advancement: {
        enrolled: adv?.enrolled ?? 0,
        advanced: adv?.advanced ?? 0,
        rate: rate(adv?.advanced ?? 0, adv?.enrolled ?? 0),
        medianDays: adv?.medianSeconds == null ? null : Math.round((adv.medianSeconds / 86_400) * 1000) / 1000,
      },
      versions: history.filter((h) => h.sequenceId === id).map((h) => ({ version: h.version, loadedAt: h.loadedAt.toISOString(), steps: Number(h.steps), live: h.version === seq?.version })),
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
