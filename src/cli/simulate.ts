// `nurture simulate <sequence> --lead lead.yaml [--events events.yaml] [--start TIME] [--json]`:
// reads a scripted lead and its events, runs the real engine on a virtual clock, prints the timeline.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import { ConfigError, formatIssue, suggest, type ConfigIssue } from '../config/issues.js';
import { loadConfig } from '../config/load.js';
import { isTimeZone, type Funnel, type Sequence } from '../config/schema.js';
import { LeadInput } from '../usecases/inputs.js';
import { parseYaml, type PositionedYaml } from '../config/yaml.js';
import { matchesAudience } from '../engine/audience.js';
import { SIM_EVENT_TYPES, simulate, type SimEvent, type SimLead, type TimelineEntry } from '../engine/simulate.js';
import { zonedInstant } from '../engine/time.js';

export interface SimulateOptions {
  sequenceId: string;
  leadFile: string;
  eventsFile?: string;
  /** ISO time with an offset, or a local time ("2026-03-02 09:00") read in the lead's zone. Default: now. */
  start?: string;
  json: boolean;
  configDir: string;
  templatesDir: string;
  write?: (line: string) => void;
}

/** `at` and `until`: an ISO time with an offset, a local time in the lead's zone, or "+3d" after the start. */
const when = z.string().refine((s) => parseWhen(s, 'UTC', new Date(0)) !== null, {
  message: 'expected a time such as 2026-03-02T14:00:00Z, "2026-03-02 09:00" (in the lead\'s zone) or +3d (after the start)',
});

const EventsFileSchema = z.strictObject({
  events: z
    .array(
      z.strictObject({
        at: when,
        type: z.enum(SIM_EVENT_TYPES),
        step: z.string().optional(),
        tag: z.string().optional(),
        until: when.optional(),
      }),
    )
    .default([]),
});

export async function simulateCommand(opts: SimulateOptions): Promise<number> {
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const fail = (issues: ConfigIssue[]) => {
    for (const i of issues) write(formatIssue(i));
    return 1;
  };

  let config;
  try {
    config = loadConfig(opts.configDir, { templatesDir: opts.templatesDir });
  } catch (err) {
    if (err instanceof ConfigError) {
      write('configuration is invalid:');
      return fail(err.issues.filter((i) => i.severity === 'error'));
    }
    throw err;
  }
  const { funnel } = config;
  const seq = config.sequences.get(opts.sequenceId);
  if (!seq) {
    write(`unknown sequence "${opts.sequenceId}"${suggest(opts.sequenceId, config.sequences.keys())}; sequences are ${[...config.sequences.keys()].join(', ')}`);
    return 1;
  }

  const leadYaml = readYaml(opts.leadFile);
  if ('issues' in leadYaml) return fail(leadYaml.issues);
  const lead = readLead(leadYaml.y, funnel, seq);
  if ('issues' in lead) return fail(lead.issues);
  const zone = lead.lead.timeZone ?? (lead.lead.account?.timeZone as string | undefined) ?? funnel.defaults.timeZone;

  const start = opts.start ? parseWhen(opts.start, zone, new Date()) : new Date(Math.floor(Date.now() / 60_000) * 60_000);
  if (!start) {
    write(`--start "${opts.start}" is not a time: expected e.g. 2026-03-02T14:00:00Z or "2026-03-02 09:00" (in the lead's zone)`);
    return 1;
  }

  let events: SimEvent[] = [];
  if (opts.eventsFile) {
    const eventsYaml = readYaml(opts.eventsFile);
    if ('issues' in eventsYaml) return fail(eventsYaml.issues);
    const read = readEvents(eventsYaml.y, seq, zone, start);
    if ('issues' in read) return fail(read.issues);
    events = read.events;
  }

  const candidate = { lead: { stage: lead.lead.stage, persona: lead.lead.persona, stageEnteredAt: start }, profile: { lead: { ...lead.lead.fields }, account: { ...lead.lead.account } }, enrollments: [] };
  const notes: string[] = [];
  if (!matchesAudience(seq, candidate)) {
    notes.push(`note: this lead (${lead.lead.persona} in ${lead.lead.stage}) is outside the audience of ${seq.id} (stage ${seq.stage}${seq.personas ? `, personas ${seq.personas.join(', ')}` : ''}${seq.audience ? ', with a filter' : ''}); simulating anyway`);
  }

  const timeline = simulate({ sequence: seq, funnel, lead: lead.lead, events, start });
  if (opts.json) {
    for (const n of notes) write(JSON.stringify({ kind: 'note', detail: n }));
    for (const t of timeline) write(JSON.stringify(toJson(t)));
  } else {
    write(`${seq.id} (${seq.mode}, version ${seq.version}) for a ${lead.lead.persona} in ${lead.lead.stage}, time zone ${zone}`);
    for (const n of notes) write(n);
    for (const t of timeline) write(formatEntry(t));
  }
  return 0;
}

export function formatEntry(t: TimelineEntry): string {
  const utc = `${t.at.toISOString().slice(0, 16).replace('T', ' ')}Z`;
  const marker = t.kind === 'command' ? ' ' : t.kind === 'stop' ? '■' : '•';
  return `${utc}  ${t.local.padEnd(26)} ${marker} ${t.detail}`;
}

function toJson(t: TimelineEntry): Record<string, unknown> {
  return {
    at: t.at.toISOString(),
    local: t.local,
    kind: t.kind,
    type: t.type,
    ...(t.step ? { step: t.step } : {}),
    detail: t.detail,
    ...(t.command ? { command: t.command.type === 'send' ? { type: 'send', step: t.command.step.id, kind: t.command.step.kind, template: t.command.step.template } : t.command } : {}),
    ...(t.event ? { event: t.event } : {}),
  };
}

function readYaml(file: string): { y: PositionedYaml } | { issues: ConfigIssue[] } {
  const shown = relative(process.cwd(), file) || file;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { issues: [{ file: shown, line: 1, column: 1, code: 'file_missing', message: `cannot read ${shown}`, severity: 'error' }] };
  }
  const y = parseYaml(shown, text);
  const errors = y.syntaxIssues.filter((i) => i.severity === 'error');
  return errors.length ? { issues: errors } : { y };
}

function zodIssues(y: PositionedYaml, error: z.ZodError): ConfigIssue[] {
  return error.issues.flatMap((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [null];
    return keys.map((k) => {
      const path = k === null ? issue.path : [...issue.path, k];
      const field = path.length ? path.join('.') : '(top level)';
      return {
        file: y.file,
        ...y.at(path, { key: k !== null }),
        code: k !== null ? 'unknown_key' : 'invalid_value',
        message: k !== null ? `unknown key "${k}"${issue.path.length ? ` in ${issue.path.join('.')}` : ''}` : `${field}: ${issue.message}`,
        severity: 'error' as const,
      };
    });
  });
}

/** The lead file has the shape of a lead.upsert trigger's `lead` (as `nurture preview` reads it); stage defaults to the sequence's. */
function readLead(y: PositionedYaml, funnel: Funnel, seq: Sequence): { lead: SimLead } | { issues: ConfigIssue[] } {
  const parsed = LeadInput.safeParse(y.data ?? {});
  const issues = parsed.success ? [] : zodIssues(y, parsed.error);
  // What the funnel must know and the engine will use, checked on the raw data so every problem shows at once.
  const raw = (y.data ?? {}) as Record<string, unknown>;
  const err = (path: string[], code: string, message: string) => issues.push({ file: y.file, ...y.at(path), code, message, severity: 'error' });
  const personas = Object.keys(funnel.personas);
  if (typeof raw.persona === 'string' && !personas.includes(raw.persona)) err(['persona'], 'unknown_persona', `unknown persona "${raw.persona}"${suggest(raw.persona, personas)}; personas are ${personas.join(', ')}`);
  if (typeof raw.stage === 'string' && !funnel.stages.includes(raw.stage)) err(['stage'], 'unknown_stage', `unknown stage "${raw.stage}"${suggest(raw.stage, funnel.stages)}; stages are ${funnel.stages.join(', ')}`);
  if (typeof raw.timeZone === 'string' && !isTimeZone(raw.timeZone)) err(['timeZone'], 'invalid_value', `timeZone: "${raw.timeZone}" is not an IANA time zone such as Europe/Berlin`);
  const account = raw.account as Record<string, unknown> | undefined;
  if (typeof account?.timeZone === 'string' && !isTimeZone(account.timeZone)) err(['account', 'timeZone'], 'invalid_value', `account.timeZone: "${account.timeZone}" is not an IANA time zone such as Europe/Berlin`);
  if (!parsed.success || issues.length) return { issues: sortIssues(issues) };
  const { persona, stage, timeZone: tz, account: acc, ...fields } = parsed.data;
  return {
    lead: {
      persona,
      stage: stage ?? seq.stage,
      ...(tz ? { timeZone: tz } : {}),
      fields: withoutNulls(fields),
      account: withoutNulls(acc),
    },
  };
}

const withoutNulls = (o: object): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));

function readEvents(y: PositionedYaml, seq: Sequence, zone: string, start: Date): { events: SimEvent[] } | { issues: ConfigIssue[] } {
  const parsed = EventsFileSchema.safeParse(y.data ?? {});
  const issues = parsed.success ? [] : zodIssues(y, parsed.error);
  const emailIds = seq.steps.filter((s) => s.type === 'email').map((s) => s.id);
  const raw = (y.data as { events?: unknown } | null)?.events;
  (Array.isArray(raw) ? raw : []).forEach((e: unknown, i) => {
    if (!e || typeof e !== 'object') return;
    const ev = e as Record<string, unknown>;
    const err = (key: string, code: string, message: string) => issues.push({ file: y.file, ...y.at(['events', i, key]), code, message, severity: 'error' });
    if (typeof ev.step === 'string' && !emailIds.includes(ev.step)) err('step', 'unknown_step', `"${ev.step}" is not an email step of ${seq.id}${suggest(ev.step, emailIds)}; email steps are ${emailIds.join(', ')}`);
    if (ev.type === 'out_of_office' && ev.until === undefined) err('type', 'missing_key', 'an out_of_office event needs until: the date the person is back');
    if (ev.type !== 'out_of_office' && ev.until !== undefined) err('until', 'unknown_key', 'until only applies to out_of_office events');
    if (ev.tag !== undefined && ev.type !== 'click') err('tag', 'unknown_key', 'tag only applies to click events');
  });
  if (!parsed.success || issues.length) return { issues: sortIssues(issues) };
  const events = parsed.data.events.map((e): SimEvent => ({
    at: parseWhen(e.at, zone, start)!,
    type: e.type,
    ...(e.step ? { step: e.step } : {}),
    ...(e.tag ? { tag: e.tag } : {}),
    ...(e.until ? { until: parseWhen(e.until, zone, start)! } : {}),
  }));
  return { events };
}

const sortIssues = (issues: ConfigIssue[]) => [...issues].sort((a, b) => a.line - b.line || a.column - b.column);

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?$/;
const ABSOLUTE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** An ISO time with an offset; a local date or date and time in `zone`; or "+<duration>" after `start`. */
export function parseWhen(text: string, zone: string, start: Date): Date | null {
  const s = text.trim();
  if (s.startsWith('+')) {
    try {
      return new Date(start.getTime() + parseDuration(s.slice(1)));
    } catch {
      return null;
    }
  }
  if (ABSOLUTE.test(s)) {
    const d = new Date(s);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  const m = LOCAL.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi] = m.map(Number) as [number, number, number, number, number | typeof NaN, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || (m[4] !== undefined && (h > 23 || mi > 59))) return null;
  return zonedInstant(y, mo, d, m[4] === undefined ? 0 : h, m[4] === undefined ? 0 : mi, zone);
}

