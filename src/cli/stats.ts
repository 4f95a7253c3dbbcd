// `nurture stats [--since 30d|2026-03-01] [--sequence ID] [--accounts N] [--json]`: how sequences, personas,
// stages and accounts are doing, counted in people rather than machines.
import { loadConfig } from '../config/load.js';
import { connectDatabase } from '../db/client.js';
import { getStats, parseSince, type StageStats, type Stats, type StepCounts } from '../usecases/stats.js';

export interface StatsCommandOptions {
  databaseUrl: string;
  json: boolean;
  /** An ISO date or a duration back from now (30d). */
  since?: string;
  sequence?: string;
  accounts?: number;
  /** Where funnel.yaml is, for the stage order; without it stages are ordered as leads first entered them. */
  configDir?: string;
  templatesDir?: string;
  write?: (line: string) => void;
}

export async function statsCommand(o: StatsCommandOptions): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const config = o.configDir ? configured(o.configDir, o.templatesDir ?? 'templates') : undefined;
  const { db, close } = connectDatabase(o.databaseUrl, { max: 4 });
  try {
    const stats = await getStats(db, {
      ...(o.since ? { since: parseSince(o.since, new Date()) } : {}),
      ...(o.sequence ? { sequence: o.sequence } : {}),
      ...(o.accounts !== undefined ? { accounts: o.accounts } : {}),
      ...(config ? { stages: config.stages, sequences: config.sequences } : {}),
    });
    if (o.json) write(JSON.stringify(stats, null, 2));
    else formatStats(stats).forEach((l) => write(l));
    return 0;
  } finally {
    await close();
  }
}

/** The funnel's stages and sequence ids, if the configuration loads (stats read the database alone otherwise). */
function configured(configDir: string, templatesDir: string): { stages: string[]; sequences: string[] } | undefined {
  try {
    const config = loadConfig(configDir, { templatesDir });
    return { stages: config.funnel.stages, sequences: [...config.sequences.keys()] };
  } catch {
    return undefined;
  }
}

export function formatStats(s: Stats): string[] {
  const out: string[] = [];
  const scope = [s.since ? `since ${s.since}` : 'all time', s.sequence ? `sequence ${s.sequence}` : null].filter(Boolean).join(', ');
  out.push(`nurture stats (${scope})`, '');

  out.push('SEQUENCES — distinct messages; opens and clicks by people, machines apart');
  const funnelRow = (name: string, c: StepCounts) => [name, c.sent, c.bounced, c.humanOpens, pct(c.openRate), c.machineOpens, c.humanClicks, pct(c.clickRate), c.botClicks, c.replies, pct(c.replyRate), c.unsubscribes];
  const funnel = s.sequences.flatMap((q) => [...q.steps.map((st) => funnelRow(`${q.sequence}/${st.step}`, st)), funnelRow(`${q.sequence} (total)`, q.totals)]);
  out.push(...table(['sequence/step', 'sent', 'bounced', 'opens', 'open%', 'machine', 'clicks', 'click%', 'bot', 'replies', 'reply%', 'unsubs'], funnel), '');

  out.push('PERSONAS');
  out.push(...table(['persona', 'leads', 'sent', 'opens', 'clicks', 'replies', 'unsubs'], s.personas.map((p) => [p.persona, p.leads, p.sent, p.humanOpens, p.humanClicks, p.replies, p.unsubscribes])), '');

  out.push('STAGES');
  out.push(...table(['stage', 'now', 'entered', 'advanced', 'rate', 'median days'], s.stages.map((st: StageStats) => [st.stage, st.leadsNow, st.entered, st.advanced, pct(st.advancementRate), st.medianDaysToAdvance ?? '-'])), '');

  out.push('ACCOUNTS — most engaged first');
  out.push(...table(['account', 'stage', 'leads', 'engaged', 'engaged by persona'], s.accounts.map((a) => [a.account, a.stage ?? '-', a.leads, a.engagedLeads, Object.entries(a.engagedByPersona).map(([p, n]) => `${p} ${n}`).join(', ') || '-'])));
  return out;
}

const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`);

/** Left-aligned text, right-aligned numbers; an empty table says so. */
export function table(header: string[], rows: (string | number)[][]): string[] {
  if (!rows.length) return ['  (none)'];
  const cells = [header, ...rows.map((r) => r.map(String))];
  const isNumber = (c: string | number | undefined) => typeof c === 'number' || /^[\d.]+%?$/.test(String(c));
  // A column of numbers (a dash standing in for a missing one) is right-aligned.
  const numeric = header.map((_, i) => i > 0 && rows.some((r) => isNumber(r[i])) && rows.every((r) => r[i] === '-' || isNumber(r[i])));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => `  ${r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()}`);
}
