// Loads funnel.yaml and sequences/*.yaml into the validated model. Reports every problem at once,
// each with file:line:column, and refuses to return a model that has any error.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { z } from 'zod';
import { closest, ConfigError, suggest, type ConfigIssue } from './issues.js';
import { inspectMailboxes, type Mailboxes } from './mailboxes.js';
import { checkFunnel, checkSequence, type FunnelDraft, type InvalidStep, type SequenceDraft } from './semantics.js';
import { FunnelSchema, SequenceSchema, StepSchema, type Funnel, type Sequence, type Step } from './schema.js';
import { parseYaml, type PositionedYaml } from './yaml.js';

export interface Config {
  dir: string;
  templatesDir: string;
  funnel: Funnel;
  sequences: Map<string, Sequence>;
  /** The reps' own mailboxes (mailboxes.yaml), by owner address in lower case; empty without the file. */
  mailboxes: Mailboxes;
  /** Warnings that do not stop the system (e.g. a sender domain without a DKIM key). */
  warnings: ConfigIssue[];
}

export interface LoadOptions {
  templatesDir: string;
  /** Working directory file names are reported relative to. */
  cwd?: string;
}

export function loadConfig(dir: string, opts: LoadOptions): Config {
  const { config, issues } = inspectConfig(dir, opts);
  if (!config || issues.some((i) => i.severity === 'error')) throw new ConfigError(issues);
  return config;
}

/** Like loadConfig, but returns every issue instead of throwing: what `nurture validate` prints. */
export function inspectConfig(dir: string, opts: LoadOptions): { config: Config | null; issues: ConfigIssue[] } {
  const cwd = opts.cwd ?? process.cwd();
  const show = (p: string) => relative(cwd, p) || p;
  const issues: ConfigIssue[] = [];

  const funnelFile = join(dir, 'funnel.yaml');
  if (!existsSync(funnelFile)) {
    issues.push({ file: show(funnelFile), line: 1, column: 1, code: 'file_missing', message: 'funnel.yaml not found: every configuration needs one', severity: 'error' });
    return { config: null, issues };
  }
  const funnelYaml = parseYaml(show(funnelFile), readFileSync(funnelFile, 'utf8'));
  const funnel = validate(funnelYaml, FunnelSchema, issues);
  // Even a funnel with errors lends its valid parts (stages, personas, senders) to the sequence checks.
  const funnelDraft: FunnelDraft | null = funnel ?? (funnelYaml.data === undefined ? null : (draftOf(FunnelSchema, funnelYaml.data) as FunnelDraft));
  if (funnelDraft) issues.push(...checkFunnel(funnelDraft, funnelYaml));

  const sequences = new Map<string, Sequence>();
  const seqDir = join(dir, 'sequences');
  const files = existsSync(seqDir) ? readdirSync(seqDir).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  for (const f of files) {
    const path = join(seqDir, f);
    const y = parseYaml(show(path), readFileSync(path, 'utf8'));
    const input = validate(y, SequenceSchema, issues);
    if (!input) {
      if (y.data !== undefined && funnelDraft) issues.push(...checkSequence(sequenceDraft(y.data), funnelDraft, y, opts.templatesDir));
      continue;
    }
    const { $schema: _ignored, ...rest } = input;
    const id = input.id ?? basename(f).replace(/\.ya?ml$/, '');
    const seq: Sequence = { ...rest, id, file: y.file, version: sequenceVersion({ ...rest, id }) };
    const prior = sequences.get(id);
    if (prior) {
      const pos = y.at(['id']);
      issues.push({ file: y.file, ...pos, code: 'duplicate_sequence', message: `sequence id "${id}" is already used by ${prior.file}`, severity: 'error' });
      continue;
    }
    if (funnelDraft) issues.push(...checkSequence(seq, funnelDraft, y, opts.templatesDir));
    sequences.set(id, seq);
  }

  const { mailboxes, issues: mailboxIssues } = inspectMailboxes(dir, show, validate);
  issues.push(...mailboxIssues);

  const ok = funnel !== null && mailboxes !== null && !issues.some((i) => i.severity === 'error');
  return {
    config: ok ? { dir, templatesDir: opts.templatesDir, funnel: funnel!, sequences, mailboxes: mailboxes!, warnings: issues.filter((i) => i.severity === 'warning') } : null,
    issues: inFileOrder(issues),
  };
}

/** Files in the order they were read; within a file, by line and column, as an editor lists them. */
function inFileOrder(issues: ConfigIssue[]): ConfigIssue[] {
  const fileRank = new Map<string, number>();
  for (const i of issues) if (!fileRank.has(i.file)) fileRank.set(i.file, fileRank.size);
  return issues
    .map((issue, n) => ({ issue, n }))
    .sort((a, b) => fileRank.get(a.issue.file)! - fileRank.get(b.issue.file)! || a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.n - b.n)
    .map(({ issue }) => issue);
}

/** Every top-level field that passes its own schema; the rest stays out (and is reported elsewhere). */
function draftOf(schema: z.ZodObject, data: unknown): Record<string, unknown> {
  const raw = isRecord(data) ? data : {};
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema.shape)) {
    const r = (field as z.ZodType).safeParse(raw[key]);
    if (r.success && r.data !== undefined) out[key] = r.data;
  }
  return out;
}

function sequenceDraft(data: unknown): SequenceDraft {
  const draft = draftOf(SequenceSchema, data);
  const raw = isRecord(data) && Array.isArray(data.steps) ? data.steps : [];
  const steps = raw.map((item: unknown): Step | InvalidStep => {
    const r = StepSchema.safeParse(item);
    if (r.success) return r.data;
    const id = isRecord(item) && typeof item.id === 'string' ? item.id : undefined;
    return id === undefined ? { type: 'invalid' } : { type: 'invalid', id };
  });
  return { ...draft, steps } as SequenceDraft;
}

/** A sequence's version is the hash of its meaning, not its text: comments and spacing don't make a new version. */
export function sequenceVersion(seq: object): string {
  return createHash('sha256').update(canonicalJson(seq)).digest('hex').slice(0, 12);
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([k, x]) => x !== undefined && k !== 'file' && k !== 'version')
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function validate<T extends z.ZodType>(y: PositionedYaml, schema: T, issues: ConfigIssue[]): z.infer<T> | null {
  issues.push(...y.syntaxIssues);
  if (y.data === undefined) return null;
  const result = schema.safeParse(y.data ?? {});
  if (result.success) return y.syntaxIssues.some((i) => i.severity === 'error') ? null : result.data;
  const found = result.error.issues.flatMap((issue) => describeZodIssue(y, schema, issue));
  // `temlate: x` is one mistake: the unknown key that suggests "template" covers the missing "template".
  const covered = new Set(found.flatMap((f) => (f.suggested === undefined ? [] : [`${f.parent}\0${f.suggested}`])));
  for (const { parent, missing, suggested: _s, ...issue } of found) {
    if (missing !== undefined && covered.has(`${parent}\0${missing}`)) continue;
    issues.push(issue);
  }
  return null;
}

type Found = ConfigIssue & { parent?: string; missing?: string; suggested?: string };
type Path = readonly PropertyKey[];

const TIME_ZONES = (() => {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return [];
  }
})();

function describeZodIssue(y: PositionedYaml, root: z.ZodType, issue: z.core.$ZodIssue): Found[] {
  const path = issue.path;
  const where = (p: Path, key = false) => ({ file: y.file, ...y.at(p, { key }) });
  const field = showPath(path);
  const value = valueAt(y.data, path);
  const error = (p: Path, code: string, message: string, extra: Partial<Found> = {}, key = false): Found[] => [
    { ...where(p, key), code, message, severity: 'error', ...extra },
  ];
  const parent = path.slice(0, -1);
  const last = path[path.length - 1];
  // A required key that is absent: the position is the mapping it is missing from.
  const missing = value === undefined && path.length > 0 && isRecord(valueAt(y.data, parent));
  const missingKey = (expected: string) =>
    error(path, 'missing_key', `missing key "${String(last)}" ${showPlace(parent)}: expected ${expected}`, { parent: showPath(parent), missing: String(last) });

  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeys(root, path, y.data);
      const present = new Set(Object.keys(isRecord(value) ? value : {}));
      return issue.keys.flatMap((k) => {
        const near = allowed ? closest(k, allowed.filter((a) => !present.has(a))) : null;
        const hint = near ? ` (did you mean ${near}?)` : allowed ? `; expected one of ${allowed.join(', ')}` : '';
        return error([...path, k], 'unknown_key', `unknown key "${k}" ${showPlace(path)}${hint}`, near ? { parent: field, suggested: near } : {}, true);
      });
    }
    case 'invalid_union': {
      if (issue.discriminator !== undefined) {
        const options = ((issue as { options?: unknown[] }).options ?? []).map(String);
        if (missing) return missingKey(`one of ${options.join(', ')}`);
        const near = typeof value === 'string' ? suggest(value, options) : '';
        return error(path, 'unknown_step_type', `unknown step type ${describe(value)}${near}: expected one of ${options.join(', ')}`);
      }
      if (last === 'clicked') return error(path, 'invalid_value', `${field}: expected an email step id or { tag: "..." }, got ${describe(value)}`);
      const known = unionKeys(root, path, y.data);
      const isCondition = known.includes('score');
      const what = isCondition ? 'condition' : 'filter';
      if (isRecord(value) && known.length) {
        const unknown = Object.keys(value).filter((k) => !known.includes(k));
        if (unknown.length) {
          return unknown.flatMap((k) => {
            const near = closest(k, known);
            return error([...path, k], 'unknown_key', `unknown ${what} "${k}" in ${field}${near ? ` (did you mean ${near}?)` : ''}: expected one of ${known.join(', ')}`, {}, true);
          });
        }
      }
      // The branch the author meant is the one whose keys all fit; report what is wrong inside it.
      const meant = issue.errors.filter((branch) => branch.length && !branch.some((i) => i.path.length === 0 && (i.code === 'unrecognized_keys' || i.code === 'invalid_type')));
      if (meant.length === 1) return meant[0]!.flatMap((inner) => describeZodIssue(y, root, { ...inner, path: [...path, ...inner.path] } as z.core.$ZodIssue));
      if (missing) return missingKey(`a ${what}`);
      const got = isRecord(value) ? `got ${Object.keys(value).join(' and ') || 'an empty mapping'}` : `got ${describe(value)}`;
      return error(path, 'invalid_value', `${field} is not a valid ${what}: ${unionHint(what)}; ${got}`);
    }
    case 'invalid_key': {
      // A name given as a mapping key (a persona, a sender, a stage's rule) that no name may be.
      const why = issue.issues.map((i) => i.message).join('; ') || issue.message;
      return error(path, 'invalid_name', `name "${String(last)}" ${showPlace(parent)}: ${why}`, {}, true);
    }
    case 'invalid_type': {
      if (missing) return missingKey(expectedName(issue.expected));
      return error(path, 'invalid_type', `${field}: expected ${expectedName(issue.expected)}, got ${describe(value)}`);
    }
    case 'invalid_value': {
      const options = issue.values.map(String);
      if (missing) return missingKey(`one of ${options.join(', ')}`);
      const near = typeof value === 'string' ? suggest(value, options) : '';
      return error(path, 'invalid_value', `${field}: expected one of ${options.join(', ')}, got ${describe(value)}${near}`);
    }
    case 'too_small':
    case 'too_big': {
      const min = issue.code === 'too_small';
      const bound = String(min ? issue.minimum : issue.maximum);
      const expected =
        issue.origin === 'array'
          ? `${min ? 'at least' : 'at most'} ${bound} item${bound === '1' ? '' : 's'}`
          : issue.origin === 'string'
            ? min ? 'a non-empty text' : `at most ${bound} characters`
            : `a number ${min ? (issue.inclusive ? 'of at least' : 'greater than') : issue.inclusive ? 'of at most' : 'less than'} ${bound}`;
      return error(path, 'invalid_value', `${field}: expected ${expected}, got ${describe(value)}`);
    }
    default: {
      if (missing) return missingKey('a value');
      const expected = issue.code === 'invalid_format' && issue.format === 'email' ? 'expected an email address' : issue.message;
      const hint = typeof value === 'string' ? (last === 'timeZone' ? suggest(value, TIME_ZONES) : durationHint(value, expected)) : '';
      return error(path, 'invalid_value', `${field}: ${expected}, got ${describe(value)}${hint}`);
    }
  }
}

/** "3 days" → " (did you mean 3d?)": the spelled-out durations people write first. */
function durationHint(value: string, expected: string): string {
  if (!expected.includes('duration')) return '';
  const m = /^\s*(\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\s*$/i.exec(value);
  return m ? ` (did you mean ${m[1]}${m[2]![0]!.toLowerCase()}?)` : '';
}

function expectedName(expected: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'text',
    number: 'a number',
    int: 'a whole number',
    boolean: 'true or false',
  };
  return names[expected] ?? expected;
}

function unionHint(what: string): string {
  return what === 'filter'
    ? 'expected { field, equals | in | exists | gte | gt | lte | lt } or { all | any: [...] } or { not: ... }'
    : 'expected exactly one of score, valuePieces, replied, opened, clicked, field, all, any, not';
}

/** `steps[2].when.score`: the path as a reader finds it in the file. */
function showPath(path: Path): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function showPlace(path: Path): string {
  return path.length ? `in ${showPath(path)}` : 'at the top level';
}

type Def = Record<string, unknown> & { type: string };
const defOf = (s: z.core.$ZodType): Def => s._zod.def as unknown as Def;

/** The schema for the value at `path`, with wrappers (optional, default, lazy) taken off; unions resolved by the data on the way. */
function schemaAt(root: z.ZodType, path: Path, data: unknown): z.core.$ZodType | undefined {
  const unwrap = (s: z.core.$ZodType | undefined, v: unknown, unions: boolean): z.core.$ZodType | undefined => {
    for (let guard = 0; s && guard < 20; guard++) {
      const def = defOf(s);
      if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault') s = def.innerType as z.core.$ZodType;
      else if (def.type === 'lazy') s = (def.getter as () => z.core.$ZodType)();
      else if (def.type === 'pipe') s = def.in as z.core.$ZodType;
      else if (def.type === 'union' && unions) s = pickOption(def.options as z.core.$ZodType[], def.discriminator as string | undefined, v);
      else return s;
    }
    return s;
  };
  let schema: z.core.$ZodType | undefined = root;
  let value: unknown = data;
  for (const seg of path) {
    schema = unwrap(schema, value, true);
    if (!schema) return undefined;
    const def = defOf(schema);
    if (def.type === 'object') schema = (def.shape as Record<string, z.core.$ZodType>)[String(seg)];
    else if (def.type === 'array') schema = def.element as z.core.$ZodType;
    else if (def.type === 'record') schema = def.valueType as z.core.$ZodType;
    else return undefined;
    value = isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[seg] : undefined;
  }
  return unwrap(schema, value, false);
}

/** The keys the schema allows in the mapping at `path`, or null where the schema there is not one mapping. */
function allowedKeys(root: z.ZodType, path: Path, data: unknown): string[] | null {
  const s = schemaAt(root, path, data);
  const def = s && defOf(s);
  const object = def?.type === 'union' ? pickOption(def.options as z.core.$ZodType[], def.discriminator as string | undefined, valueAt(data, path)) : s;
  const od = object && defOf(object);
  return od?.type === 'object' ? Object.keys(od.shape as object) : null;
}

/** Every key any member of the union at `path` allows: what a condition or filter may start with. */
function unionKeys(root: z.ZodType, path: Path, data: unknown): string[] {
  const s = schemaAt(root, path, data);
  const def = s && defOf(s);
  if (def?.type !== 'union') return [];
  const keys = new Set<string>();
  for (const o of def.options as z.core.$ZodType[]) {
    const od = defOf(o);
    if (od.type === 'object') for (const k of Object.keys(od.shape as object)) keys.add(k);
  }
  return [...keys];
}

/** The union member the data is meant for: by discriminator, else the mapping that knows most of its keys. */
function pickOption(options: z.core.$ZodType[], discriminator: string | undefined, value: unknown): z.core.$ZodType | undefined {
  const keys = Object.keys(isRecord(value) ? value : {});
  let best: z.core.$ZodType | undefined;
  let bestScore = -1;
  for (const o of options) {
    const def = o._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type !== 'object') continue;
    const shape = def.shape as Record<string, z.core.$ZodType>;
    if (discriminator !== undefined && isRecord(value)) {
      const lit = shape[discriminator]?._zod.def as unknown as { values?: unknown[] } | undefined;
      if (lit?.values?.includes(value[discriminator])) return o;
      continue;
    }
    const score = keys.filter((k) => k in shape).length;
    if (score > bestScore) {
      best = o;
      bestScore = score;
    }
  }
  return best;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}
