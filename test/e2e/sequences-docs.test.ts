// docs/sequences.md can't rot: every ```yaml block marked `# file: …` is copied into a config folder and
// loaded like `nurture validate` does; the examples must cover every option of the schema; the live-edit
// example (`# edit: …`) loads too, and the docs' claim that comments and written-out defaults make no new
// version holds.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatIssue } from '../../src/config/issues.js';
import { inspectConfig, type Config } from '../../src/config/load.js';
import { FunnelSchema, SequenceSchema, StepSchema, STEP_TYPES, type Condition, type FieldFilter, type Step } from '../../src/config/schema.js';

const DOC = resolve('docs/sequences.md');
const templatesDir = resolve('templates');
const temp: string[] = [];
afterAll(() => temp.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Block {
  kind: 'file' | 'edit';
  path: string;
  text: string;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  for (const m of markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)) {
    const text = m[1]!;
    const head = /^# (file|edit): (\S+)/.exec(text);
    if (head) out.push({ kind: head[1] as Block['kind'], path: head[2]!, text });
  }
  return out;
}

/** funnel.yaml blocks are consecutive parts of one file; a sequence file may appear once per kind. */
function writeConfig(files: Block[]): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'nurture-docs-'));
  temp.push(dir);
  const byPath = new Map<string, string>();
  for (const b of files) {
    if (b.path === 'funnel.yaml') byPath.set(b.path, `${byPath.get(b.path) ?? ''}${b.text}\n`);
    else {
      expect(byPath.has(b.path), `${b.path} appears twice in the docs`).toBe(false);
      byPath.set(b.path, b.text);
    }
  }
  for (const [path, text] of byPath) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function load(dir: string): Config {
  const { config, issues } = inspectConfig(dir, { templatesDir, cwd: dir });
  expect(issues.filter((i) => i.severity === 'error').map(formatIssue)).toEqual([]);
  expect(config).not.toBeNull();
  return config!;
}

const all = blocks(readFileSync(DOC, 'utf8'));
const files = all.filter((b) => b.kind === 'file');
const edits = all.filter((b) => b.kind === 'edit');

/** Every mapping key written anywhere under `value`, with its parent's key: "window.days", "gate.onTimeout". */
function keysIn(value: unknown, parent = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => keysIn(v, parent, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(parent ? `${parent}.${k}` : k);
      keysIn(v, k, out);
    }
  }
  return out;
}

function conditionKeys(c: Condition, out: Set<string>): void {
  for (const k of Object.keys(c)) out.add(k === 'clicked' && typeof (c as { clicked: unknown }).clicked === 'object' ? 'clicked.tag' : k);
  if ('all' in c) c.all.forEach((x) => conditionKeys(x, out));
  if ('any' in c) c.any.forEach((x) => conditionKeys(x, out));
  if ('not' in c) conditionKeys(c.not, out);
  if ('field' in c) filterKeys(c.field, out);
}

function filterKeys(f: FieldFilter, out: Set<string>): void {
  for (const k of Object.keys(f)) if (k !== 'field') out.add(`filter.${k}`);
  if ('all' in f) f.all.forEach((x) => filterKeys(x, out));
  if ('any' in f) f.any.forEach((x) => filterKeys(x, out));
  if ('not' in f) filterKeys(f.not, out);
}

describe('docs/sequences.md', () => {
  it('has a funnel and sequence examples to check', () => {
    expect(files.filter((b) => b.path === 'funnel.yaml').length).toBeGreaterThanOrEqual(10);
    expect(files.filter((b) => b.path.startsWith('sequences/')).length).toBeGreaterThanOrEqual(15);
    for (const b of files) expect(b.path).toMatch(/^(funnel\.yaml|sequences\/[a-z0-9][a-z0-9_-]*\.yaml)$/);
  });

  it('loads every example without an error', () => {
    const config = load(writeConfig(files));
    const ids = files.filter((b) => b.path.startsWith('sequences/')).length;
    expect(config.sequences.size).toBe(ids);
  });

  it('shows every option of funnel.yaml and of a sequence', () => {
    const funnelText = files.filter((b) => b.path === 'funnel.yaml').map((b) => b.text).join('\n');
    const funnelKeys = keysIn(parse(funnelText));
    const sequenceKeys = new Set<string>();
    for (const b of files.filter((x) => x.path.startsWith('sequences/'))) keysIn(parse(b.text), '', sequenceKeys);

    const missing = (keys: Iterable<string>, seen: Set<string>) => [...keys].filter((k) => !seen.has(k));
    // Top-level keys of both files, and the options inside each nested mapping.
    expect(missing(Object.keys(FunnelSchema.shape).filter((k) => k !== '$schema'), funnelKeys)).toEqual([]);
    expect(
      missing(
        [
          'defaults.timeZone', 'defaults.window', 'window.days', 'window.from', 'window.to', 'caps.lead', 'caps.account',
          'lead.max', 'lead.per', 'attributes.lead', 'attributes.account', 'scoring.weights', 'scoring.halfLife',
          'weights.open', 'weights.click', 'weights.value_click', 'weights.reply', 'accounts.engagedWhen', 'accounts.stages',
          'interest.engagedLeads', 'desire.personas', 'desire.moveLeads', 'webhooks.url', 'webhooks.events',
          'sending.limits', 'sending.warmup', 'sending.dkim', 'sending.suppressAfterSoftBounces', 'sending.maxRetryAge', 'sending.maxRetryDelay',
          'limits.domain', 'limits.perSecond', 'limits.perMinute', 'limits.perDay', 'warmup.domain', 'warmup.start',
          'warmup.dailyStart', 'warmup.dailyGrowth', 'warmup.max', 'dkim.domain', 'dkim.selector', 'dkim.privateKey',
        ],
        funnelKeys,
      ),
    ).toEqual([]);
    expect(missing(Object.keys(SequenceSchema.shape).filter((k) => k !== '$schema'), sequenceKeys)).toEqual([]);
    for (const option of StepSchema.options) {
      expect(missing(Object.keys(option.shape).map((k) => `steps.${k}`), sequenceKeys), `step type ${String(option.shape.type.value)}`).toEqual([]);
    }
    expect(missing(['entry.on', 'entry.event', 'entry.reentry', 'reentry.after', 'tracking.opens', 'tracking.clicks', 'gate.valuePieces', 'gate.timeout', 'gate.onTimeout', 'until.days', 'until.from', 'until.to'], sequenceKeys)).toEqual([]);
  });

  it('shows every value an option can take', () => {
    const config = load(writeConfig(files));
    const seqs = [...config.sequences.values()];
    const steps: Step[] = seqs.flatMap((s) => s.steps);
    expect(new Set(seqs.map((s) => s.mode))).toEqual(new Set(['one_to_one', 'segmented']));
    expect(new Set(seqs.map((s) => s.entry.on))).toEqual(new Set(['stage_entry', 'event', 'manual']));
    expect(new Set(seqs.map((s) => (typeof s.entry.reentry === 'string' ? s.entry.reentry : 'after')))).toEqual(new Set(['once', 'once_per_stage_entry', 'after']));
    expect(new Set(steps.map((s) => s.type))).toEqual(new Set(STEP_TYPES));
    const emails = steps.flatMap((s) => (s.type === 'email' ? [s] : []));
    expect(new Set(emails.map((s) => s.kind))).toEqual(new Set(['value', 'pitch']));
    expect(new Set(emails.map((s) => s.thread))).toEqual(new Set(['continue', 'new']));
    expect(new Set(emails.flatMap((s) => (s.gate ? [s.gate.onTimeout] : [])))).toEqual(new Set(['skip', 'send']));
    expect(new Set(emails.flatMap((s) => (s.sender ? [s.sender === 'owner' ? 'owner' : 'brand'] : [])).concat(seqs.flatMap((s) => (s.sender === 'owner' ? ['owner'] : []))))).toEqual(new Set(['owner', 'brand']));
    const waits = steps.flatMap((s) => (s.type === 'wait' ? [s] : []));
    expect(new Set(waits.map((w) => (w.for ? 'for' : w.businessDays ? 'businessDays' : 'until')))).toEqual(new Set(['for', 'businessDays', 'until']));
    const branches = steps.flatMap((s) => (s.type === 'branch' ? [s] : []));
    expect(branches.some((b) => b.else)).toBe(true);
    expect(branches.some((b) => !b.else)).toBe(true);
    expect(seqs.some((s) => s.priority !== 0) && seqs.some((s) => s.exclusive)).toBe(true);
    expect(seqs.some((s) => !s.tracking.opens) && seqs.some((s) => s.exitOn.length < 4) && seqs.some((s) => s.window)).toBe(true);

    // Conditions: every leaf and combinator in advancement, branches and goals; every filter operator.
    const used = new Set<string>();
    for (const s of steps) if (s.type === 'branch' || s.type === 'goal') conditionKeys(s.when, used);
    for (const { when } of Object.values(config.funnel.advancement)) conditionKeys(when, used);
    conditionKeys(config.funnel.accounts.engagedWhen, used);
    for (const s of seqs) if (s.audience) filterKeys(s.audience, used);
    const leaves = ['score', 'valuePieces', 'replied', 'opened', 'clicked', 'clicked.tag', 'field', 'all', 'any', 'not'];
    const operators = ['equals', 'in', 'exists', 'gte', 'gt', 'lte', 'lt', 'all', 'any', 'not'].map((o) => `filter.${o}`);
    expect([...leaves, ...operators].filter((k) => !used.has(k))).toEqual([]);
    // Branches in a sequence look at opened, clicked (a step and a tag), score and a field.
    const branchUsed = new Set<string>();
    for (const b of branches) conditionKeys(b.when, branchUsed);
    expect(['opened', 'clicked', 'clicked.tag', 'score', 'field'].filter((k) => !branchUsed.has(k))).toEqual([]);
    expect(config.funnel.scoring.halfLife).toBeDefined();
    expect(config.funnel.webhooks.length).toBeGreaterThan(0);
  });

  it('loads the live-edit example, and only a change in meaning makes a new version', () => {
    expect(edits.length).toBeGreaterThan(0);
    const before = load(writeConfig(files));
    const after = load(writeConfig([...files.filter((f) => !edits.some((e) => e.path === f.path)), ...edits]));
    for (const e of edits) {
      const id = e.path.replace(/^sequences\/|\.yaml$/g, '');
      expect(after.sequences.get(id)!.version).not.toBe(before.sequences.get(id)!.version);
    }
    // The docs promise: comments, spacing, key order and a written-out default are not a new version.
    const welcome = files.find((f) => f.path === 'sequences/welcome.yaml')!;
    const restyled = welcome.text
      .replace('mode: one_to_one', '# a comment\nmode:    one_to_one   # and another')
      .replace('{ id: hello, type: email, template: intro-note }', '{ template: "intro-note", type: email, id: hello, kind: value }');
    expect(restyled).not.toBe(welcome.text);
    const same = load(writeConfig([...files.filter((f) => f !== welcome), { ...welcome, text: restyled }]));
    expect(same.sequences.get('welcome')!.version).toBe(before.sequences.get('welcome')!.version);
  });
});
