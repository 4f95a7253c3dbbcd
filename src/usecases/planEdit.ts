// What a YAML change will do to the enrollments in flight, before it is deployed: for each changed
// sequence, how many active enrollments sit at each step and whether they continue, skip to a later step,
// complete, or keep a wait's due time. Read-only: one grouped query, then the pure plan below.
import { remapCursor } from '../engine/decide.js';
import { sql } from 'drizzle-orm';
import type { Config } from '../config/load.js';
import type { Sequence } from '../config/schema.js';
import type { Db } from '../db/client.js';
import { enrollments, sequenceVersions } from '../db/schema.js';

export type StepEffect = 'continues' | `skips to ${string}` | 'completes' | 'wait keeps due time' | 'exits (sequence removed)';

export interface EditPlan {
  sequence: string;
  version: { from: string; to: string | null };
  inFlight: number;
  byStep: { step: string | null; enrollments: number; effect: StepEffect }[];
}

/** A row of sequence_versions: every version any enrollment may be on. */
export interface StoredVersion {
  sequenceId: string;
  version: string;
  definition: unknown;
  loadedAt?: Date;
}

/** Active enrollments of one sequence version at one cursor; `waiting` when a wait there has started. */
export interface CursorGroup {
  sequenceId: string;
  version: string;
  cursor: string | null;
  waiting: boolean;
  count: number;
}

export async function loadSequenceVersions(db: Db): Promise<StoredVersion[]> {
  return db.select().from(sequenceVersions);
}

export async function planEdit(db: Db, oldVersions: StoredVersion[], newConfig: Pick<Config, 'sequences'>): Promise<EditPlan[]> {
  const rows = await db
    .select({
      sequenceId: enrollments.sequenceId,
      version: enrollments.sequenceVersion,
      cursor: enrollments.cursor,
      waiting: sql<boolean>`coalesce(${enrollments.progress}->>'waiting' = ${enrollments.cursor}, false)`,
      count: sql<number>`count(*)::int`,
    })
    .from(enrollments)
    .where(sql`${enrollments.state} = 'active'`)
    .groupBy(enrollments.sequenceId, enrollments.sequenceVersion, enrollments.cursor, sql`4`);
  return planFromGroups(oldVersions, newConfig.sequences, rows);
}

/** The pure part: groups of enrollments in flight, the stored versions and the new sequences → the plan. */
export function planFromGroups(oldVersions: StoredVersion[], next: ReadonlyMap<string, Sequence>, groups: CursorGroup[]): EditPlan[] {
  const stepsOf = new Map(oldVersions.map((v) => [`${v.sequenceId}\0${v.version}`, stepIdsOf(v.definition)]));
  const plans = new Map<string, EditPlan & { prior: string[] | undefined }>();
  for (const g of groups) {
    const seq = next.get(g.sequenceId);
    if (seq && seq.version === g.version) continue;
    const key = `${g.sequenceId}\0${g.version}`;
    let plan = plans.get(key);
    if (!plan) {
      plan = { sequence: g.sequenceId, version: { from: g.version, to: seq?.version ?? null }, inFlight: 0, byStep: [], prior: stepsOf.get(key) };
      plans.set(key, plan);
    }
    plan.inFlight += g.count;
    const effect = effectAt(seq, plan.prior, g.cursor, g.waiting);
    const same = plan.byStep.find((s) => s.step === g.cursor && s.effect === effect);
    if (same) same.enrollments += g.count;
    else plan.byStep.push({ step: g.cursor, enrollments: g.count, effect });
  }
  // A changed sequence nobody is in yet still shows its version change.
  const latest = new Map<string, StoredVersion>();
  for (const v of oldVersions) {
    const seen = latest.get(v.sequenceId);
    if (!seen || (v.loadedAt && seen.loadedAt && v.loadedAt > seen.loadedAt)) latest.set(v.sequenceId, v);
  }
  for (const [id, v] of latest) {
    const seq = next.get(id);
    if (seq?.version === v.version || [...plans.values()].some((p) => p.sequence === id)) continue;
    plans.set(`${id}\0${v.version}`, { sequence: id, version: { from: v.version, to: seq?.version ?? null }, inFlight: 0, byStep: [], prior: undefined });
  }
  return [...plans.values()]
    .map(({ prior, ...plan }) => ({ ...plan, byStep: plan.byStep.sort((a, b) => rank(prior, a.step) - rank(prior, b.step)) }))
    .sort((a, b) => a.sequence.localeCompare(b.sequence) || a.version.from.localeCompare(b.version.from));
}

/** What the next wake does with an enrollment at `cursor` of the old version (`prior` step ids). */
export function effectAt(seq: Sequence | undefined, prior: string[] | undefined, cursor: string | null, waiting: boolean): StepEffect {
  if (!seq) return 'exits (sequence removed)';
  const index = new Map(seq.steps.map((s, i) => [s.id, i]));
  const to = remapCursor(cursor, index, prior);
  if (to === null) return 'completes';
  if (to !== cursor) return `skips to ${to}`;
  return waiting && seq.steps[index.get(to)!]!.type === 'wait' ? 'wait keeps due time' : 'continues';
}

/** One line per step, for the CLI: `welcome 3f2a…→9c1d…  12 in flight` then `  pause-2  4  wait keeps due time`. */
export function formatPlan(plans: EditPlan[]): string[] {
  if (!plans.length) return ['no sequence changed: nothing in flight is affected'];
  const lines: string[] = [];
  for (const p of plans) {
    lines.push(`${p.sequence}  ${p.version.from} → ${p.version.to ?? '(removed)'}  ${p.inFlight} in flight`);
    for (const s of p.byStep) lines.push(`  ${(s.step ?? '(end)').padEnd(24)} ${String(s.enrollments).padStart(7)}  ${s.effect}`);
  }
  return lines;
}

function stepIdsOf(definition: unknown): string[] | undefined {
  const steps = (definition as { steps?: { id?: unknown }[] } | null)?.steps;
  return Array.isArray(steps) ? steps.flatMap((s) => (typeof s?.id === 'string' ? [s.id] : [])) : undefined;
}

function rank(prior: string[] | undefined, step: string | null): number {
  if (step === null) return Number.MAX_SAFE_INTEGER;
  const i = prior?.indexOf(step) ?? -1;
  return i === -1 ? Number.MAX_SAFE_INTEGER - 1 : i;
}
