// Reporting: how each sequence and step performs with people (not machines), how each persona responds,
// how leads move through the stages and which accounts are engaging. One query per section; the rates
// and rounding are pure and live here.
import { parseDuration, isDuration } from '../config/duration.js';
import type { Tx } from '../db/client.js';
import { anyoneEnrolledIn, engagedAccounts, enrolledSequences, funnelByPersona, funnelBySequenceStep, stageFlow, type AccountStatsRow, type FunnelRow, type PersonaRow } from '../db/stats.js';
import { suggest } from '../config/issues.js';
import type { Context } from '../context.js';
import { UseCaseError } from './errors.js';

export interface StatsOptions {
  /** Only messages sent, and stage visits begun, from this moment on. */
  since?: Date;
  /** Only this sequence's messages (and, for personas, leads enrolled in it). */
  sequence?: string;
  /** The funnel's stage order: lists every stage, and decides which moves are forward. */
  stages?: readonly string[];
  /** How many accounts to list, most engaged first (default 50). */
  accounts?: number;
  /** The configuration's sequence ids: one of them with no one enrolled yet is an empty report, not a typo. */
  sequences?: readonly string[];
}

/** One step's (or a sequence's) counts, as the query gives them, with the rates they imply. */
export type StepCounts = Omit<FunnelRow, 'sequence' | 'step'> & {
  /** humanOpens / sent, humanClicks / sent, replies / sent: fractions to 3 decimals, null when nothing was sent. */
  openRate: number | null;
  clickRate: number | null;
  replyRate: number | null;
};

export interface StepStats extends StepCounts {
  step: string;
}

export interface SequenceStats {
  sequence: string;
  steps: StepStats[];
  totals: StepCounts;
}

export type PersonaStats = PersonaRow;

export interface StageStats {
  stage: string;
  leadsNow: number;
  /** Leads that entered the stage (created in it or advanced into it). */
  entered: number;
  /** Of those, leads that left it forward. */
  advanced: number;
  /** advanced / entered, 3 decimals; null when nobody entered. */
  advancementRate: number | null;
  /** Median days from entering the stage to advancing out of it, 3 decimals. */
  medianDaysToAdvance: number | null;
}

export type AccountStats = AccountStatsRow;

export interface Stats {
  since: string | null;
  sequence: string | null;
  sequences: SequenceStats[];
  personas: PersonaStats[];
  stages: StageStats[];
  accounts: AccountStats[];
}

export async function getStats(db: Tx, opts: StatsOptions = {}): Promise<Stats> {
  const scope = { since: opts.since ?? null, sequence: opts.sequence ?? null };
  if (scope.sequence) await assertSequenceKnown(db, scope.sequence, opts.sequences ?? []);
  const [funnel, personas, stages, accounts] = await Promise.all([
    funnelBySequenceStep(db, scope),
    funnelByPersona(db, scope),
    stageFlow(db, scope, opts.stages ?? null),
    engagedAccounts(db, scope, opts.accounts ?? 50),
  ]);
  return {
    since: scope.since?.toISOString() ?? null,
    sequence: scope.sequence,
    sequences: groupSequences(funnel),
    personas,
    stages: stages.map(({ medianSecondsToAdvance, ...s }) => ({
      ...s,
      advancementRate: rate(s.advanced, s.entered),
      medianDaysToAdvance: medianSecondsToAdvance === null ? null : round3(medianSecondsToAdvance / 86_400),
    })),
    accounts,
  };
}

/**
 * A sequence neither in the configuration nor ever enrolled in is most likely a typo, which an empty
 * report would hide. (A sequence since removed from the YAML still has its history to report.)
 */
async function assertSequenceKnown(db: Tx, sequence: string, configured: readonly string[]): Promise<void> {
  if (configured.includes(sequence) || (await anyoneEnrolledIn(db, sequence))) return;
  const known = [...new Set([...configured, ...(await enrolledSequences(db))])].sort();
  throw new UseCaseError('invalid_field', `no sequence "${sequence}" in the configuration, and no one has been enrolled in one${suggest(sequence, known)}${known.length ? `; sequences are ${known.join(', ')}` : ''}`, 'sequence');
}

/** The rows come ordered: each sequence's total row, then its steps in sequence order. */
export function groupSequences(rows: FunnelRow[]): SequenceStats[] {
  const out: SequenceStats[] = [];
  const bySequence = new Map<string, SequenceStats>();
  for (const r of rows) {
    let seq = bySequence.get(r.sequence);
    if (!seq) {
      seq = { sequence: r.sequence, steps: [], totals: withRates(r) };
      bySequence.set(r.sequence, seq);
      out.push(seq);
    }
    if (r.step === null) seq.totals = withRates(r);
    else seq.steps.push({ step: r.step, ...withRates(r) });
  }
  return out;
}

export function withRates(r: Omit<FunnelRow, 'sequence' | 'step'>): StepCounts {
  return {
    sent: r.sent,
    bounced: r.bounced,
    humanOpens: r.humanOpens,
    machineOpens: r.machineOpens,
    humanClicks: r.humanClicks,
    botClicks: r.botClicks,
    replies: r.replies,
    unsubscribes: r.unsubscribes,
    openRate: rate(r.humanOpens, r.sent),
    clickRate: rate(r.humanClicks, r.sent),
    replyRate: rate(r.replies, r.sent),
  };
}

/** A fraction to 3 decimals; null when there is nothing to divide by. */
export function rate(part: number, whole: number): number | null {
  return whole > 0 ? round3(part / whole) : null;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * `since` as people write it: an ISO date or time (2026-03-01, 2026-03-01T09:00Z) or a duration back
 * from now (30d, 12h, 2w). The CLI and the JSON endpoint read it the same way.
 */
export function parseSince(text: string, now: Date): Date {
  const t = text.trim();
  const shown = t.length > 40 ? `${t.slice(0, 40)}…` : t;
  if (isDuration(t)) {
    const back = parseDuration(t);
    // Durations are bounded: "99999999999d" is before any date a computer can name, not a question about the data.
    if (!Number.isFinite(back) || back > MAX_SINCE_MS) throw new UseCaseError('invalid_field', `since "${shown}" reaches back more than ${MAX_SINCE_YEARS} years; give a shorter duration or a date`, 'since');
    return new Date(now.getTime() - back);
  }
  const d = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t) ? new Date(t) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new UseCaseError('invalid_field', `since "${shown}" is neither a date (2026-03-01) nor a duration back from now (30d, 12h)`, 'since');
  return d;
}

const MAX_SINCE_YEARS = 100;
const MAX_SINCE_MS = MAX_SINCE_YEARS * 366 * 86_400_000;

/** GET /v1/stats?since=…&sequence=…&accounts=…: the same Stats as `nurture stats --json`. */
export async function statsRoute(ctx: Context, url: URL): Promise<Stats> {
  const q = url.searchParams;
  const since = q.get('since');
  const sequence = q.get('sequence');
  const accounts = q.get('accounts');
  if (sequence !== null && !/^[\w-]{1,200}$/.test(sequence)) throw new UseCaseError('invalid_field', 'sequence must be a sequence id (letters, digits, "-" and "_")', 'sequence');
  if (accounts !== null && !/^\d{1,4}$/.test(accounts)) throw new UseCaseError('invalid_field', `accounts "${accounts}" is not a number of accounts to list (0–9999)`, 'accounts');
  return getStats(ctx.db, {
    ...(since ? { since: parseSince(since, ctx.now()) } : {}),
    ...(sequence ? { sequence } : {}),
    ...(accounts !== null ? { accounts: Number(accounts) } : {}),
    stages: ctx.config.funnel.stages,
    sequences: [...ctx.config.sequences.keys()],
  });
}
