// Loads funnel.yaml and sequences/*.yaml into the validated model. Reports every problem at once,
// each with file:line:column, and refuses to return a model that has any error.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from './issues.js';
import { checkFunnel, checkSequence } from './semantics.js';
import { FunnelSchema, SequenceSchema, type Funnel, type Sequence } from './schema.js';
import { parseYaml, type PositionedYaml } from './yaml.js';

export interface Config {
  dir: string;
  templatesDir: string;
  funnel: Funnel;
  sequences: Map<string, Sequence>;
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
  if (funnel) issues.push(...checkFunnel(funnel, funnelYaml));

  const sequences = new Map<string, Sequence>();
  const seqDir = join(dir, 'sequences');
  const files = existsSync(seqDir) ? readdirSync(seqDir).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  for (const f of files) {
    const path = join(seqDir, f);
    const y = parseYaml(show(path), readFileSync(path, 'utf8'));
    const input = validate(y, SequenceSchema, issues);
    if (!input) continue;
    const { $schema: _ignored, ...rest } = input;
    const id = input.id ?? basename(f).replace(/\.ya?ml$/, '');
    const seq: Sequence = { ...rest, id, file: y.file, version: sequenceVersion({ ...rest, id }) };
    const prior = sequences.get(id);
    if (prior) {
      const pos = y.at(['id']);
      issues.push({ file: y.file, ...pos, code: 'duplicate_sequence', message: `sequence id "${id}" is already used by ${prior.file}`, severity: 'error' });
      continue;
    }
    if (funnel) issues.push(...checkSequence(seq, funnel, y, opts.templatesDir));
    sequences.set(id, seq);
  }

  const ok = funnel !== null && !issues.some((i) => i.severity === 'error');
  return {
    config: ok ? { dir, templatesDir: opts.templatesDir, funnel: funnel!, sequences, warnings: issues.filter((i) => i.severity === 'warning') } : null,
    issues,
  };
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

function validate<T extends z.ZodType>(y: PositionedYaml, schema: T, issues: ConfigIssue[]): z.infer<T> | null {
  if (y.syntaxIssues.length) {
    issues.push(...y.syntaxIssues);
    if (y.syntaxIssues.some((i) => i.severity === 'error')) return null;
  }
  const result = schema.safeParse(y.data ?? {});
  if (result.success) return result.data;
  for (const issue of result.error.issues) issues.push(...describeZodIssue(y, issue));
  return null;
}

function describeZodIssue(y: PositionedYaml, issue: z.core.$ZodIssue): ConfigIssue[] {
  const path = issue.path;
  const where = (p: readonly PropertyKey[], key = false) => ({ file: y.file, ...y.at(p, { key }) });
  const field = path.length ? path.join('.') : '(top level)';
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({
        ...where([...path, k], true),
        code: 'unknown_key',
        message: `unknown key "${k}" in ${field}`,
        severity: 'error' as const,
      }));
    case 'invalid_union': {
      if (issue.discriminator === 'type') {
        const value = valueAt(y.data, [...path, 'type']);
        return [{ ...where([...path, 'type']), code: 'unknown_step_type', message: `unknown step type "${String(value)}" at ${field}: expected one of email, wait, branch, goal`, severity: 'error' }];
      }
      // The branch the author meant is the one whose keys all fit; report what is wrong inside it.
      const meant = issue.errors.filter((branch) => branch.length && !branch.some((i) => i.code === 'unrecognized_keys' || (i.code === 'invalid_type' && i.path.length === 0)));
      if (meant.length === 1) return meant[0]!.flatMap((inner) => describeZodIssue(y, { ...inner, path: [...path, ...inner.path] } as z.core.$ZodIssue));
      return [{ ...where(path), code: 'invalid_value', message: `${field} is not a valid ${unionName(path)}: ${unionHint(path)}`, severity: 'error' }];
    }
    case 'invalid_type': {
      const value = valueAt(y.data, path);
      const missing = value === undefined;
      return [{
        ...where(path),
        code: missing ? 'missing_key' : 'invalid_type',
        message: missing ? `${field} is required (expected ${issue.expected})` : `${field}: expected ${issue.expected}, got ${describe(value)}`,
        severity: 'error',
      }];
    }
    case 'invalid_value':
      return [{ ...where(path), code: 'invalid_value', message: `${field}: expected one of ${issue.values.map(String).join(', ')}, got ${describe(valueAt(y.data, path))}`, severity: 'error' }];
    default:
      return [{ ...where(path), code: 'invalid_value', message: `${field}: ${issue.message}`, severity: 'error' }];
  }
}

function unionName(path: readonly PropertyKey[]): string {
  return path.some((p) => p === 'audience' || p === 'field') ? 'filter' : 'condition';
}

function unionHint(path: readonly PropertyKey[]): string {
  return unionName(path) === 'filter'
    ? 'expected { field, equals | in | exists | gte | gt | lte | lt } or { all | any: [...] } or { not: ... }'
    : 'expected one of score, valuePieces, replied, opened, clicked, field, all, any, not';
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
