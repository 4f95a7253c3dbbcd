// Checks that need more than one field: names that must exist, steps that must be reachable, windows
// that must be possible. Each finding carries the position of the offending value.
// They run on drafts: whatever parts of a file passed the schema, so a file with a wrong type still
// has its unknown stage or missing branch target reported in the same run.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { suggest, type ConfigIssue } from './issues.js';
import type { Condition, Funnel, SequenceInput, Step, Window } from './schema.js';
import type { PositionedYaml } from './yaml.js';

type Path = (string | number)[];
type Report = (path: Path, code: string, message: string, opts?: { key?: boolean }) => void;

/** The parts of funnel.yaml that passed the schema (all of it, when the file is valid). */
export type FunnelDraft = Partial<Funnel>;
/** A step that failed the schema (already reported): kept so its id still counts as a target. */
export interface InvalidStep {
  type: 'invalid';
  id?: string;
}
/** The parts of a sequence that passed the schema; steps keep their index, invalid ones as placeholders. */
export type SequenceDraft = Partial<Omit<SequenceInput, 'steps'>> & { steps: (Step | InvalidStep)[] };

function reporter(y: PositionedYaml, out: ConfigIssue[]): Report {
  return (path, code, message, opts) => out.push({ file: y.file, ...y.at(path, opts), code, message, severity: 'error' });
}

export function checkFunnel(funnel: FunnelDraft, y: PositionedYaml): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const err = reporter(y, out);
  const stages = funnel.stages ?? [];
  const seen = new Set<string>();
  stages.forEach((s, i) => {
    if (seen.has(s)) err(['stages', i], 'duplicate_stage', `stage "${s}" is listed twice`);
    seen.add(s);
  });
  if (funnel.stages) {
    for (const stage of Object.keys(funnel.advancement ?? {})) {
      const at: Path = ['advancement', stage];
      if (!seen.has(stage)) err(at, 'unknown_stage', `advancement names unknown stage "${stage}"${suggest(stage, stages)}; stages are ${stages.join(', ')}`, { key: true });
      else if (stages.indexOf(stage) === stages.length - 1) err(at, 'last_stage', `"${stage}" is the last stage: there is no stage to advance to`, { key: true });
    }
  }
  if (funnel.defaults?.window) checkWindow(funnel.defaults.window, ['defaults', 'window'], y, err);
  if (funnel.stages) {
    for (const stage of Object.keys(funnel.accounts?.stages ?? {})) {
      if (!seen.has(stage)) err(['accounts', 'stages', stage], 'unknown_stage', `accounts.stages names unknown stage "${stage}"${suggest(stage, stages)}; stages are ${stages.join(', ')}`, { key: true });
    }
  }
  return out;
}

export function checkSequence(seq: SequenceDraft, funnel: FunnelDraft, y: PositionedYaml, templatesDir: string): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const err = reporter(y, out);

  const stages = funnel.stages;
  if (stages && seq.stage !== undefined && !stages.includes(seq.stage)) {
    err(['stage'], 'unknown_stage', `unknown stage "${seq.stage}"${suggest(seq.stage, stages)}; stages are ${stages.join(', ')}`);
  }
  const personas = funnel.personas ? Object.keys(funnel.personas) : null;
  if (personas) {
    seq.personas?.forEach((p, i) => {
      if (!personas.includes(p)) err(['personas', i], 'unknown_persona', `unknown persona "${p}"${suggest(p, personas)}; personas are ${personas.join(', ')}`);
    });
  }
  if (seq.entry?.on === 'event' && !seq.entry.event) err(['entry'], 'missing_key', 'entry.event is required when entry.on is "event"');
  if (seq.window) checkWindow(seq.window, ['window'], y, err);

  const senders = funnel.senders ? Object.keys(funnel.senders) : null;
  const checkSender = (sender: string | undefined, path: Path) => {
    if (sender === undefined) return;
    if (sender === 'owner') {
      if (seq.mode === 'segmented') err(path, 'owner_in_segmented', 'a segmented sequence is sent from a brand sender, not the lead\'s owner');
      return;
    }
    if (senders && !senders.includes(sender)) err(path, 'unknown_sender', `unknown sender "${sender}"${suggest(sender, [...senders, 'owner'])}; senders are owner, ${senders.join(', ')}`);
  };
  checkSender(seq.sender, ['sender']);
  if (seq.mode === 'segmented' && seq.sender === undefined && senders?.length === 0) err(['mode'], 'no_sender', 'a segmented sequence needs a brand sender: add one under senders in funnel.yaml');
  // Bulk mail must show where the sender can be reached by post (CAN-SPAM; the footer shows it).
  if (seq.mode === 'segmented' && !funnel.postalAddress?.trim()) err(['mode'], 'no_postal_address', 'a segmented sequence\'s mail must carry your postal address: set postalAddress in funnel.yaml');

  const index = new Map<string, number>();
  seq.steps.forEach((step, i) => {
    if (step.id === undefined) return;
    if (index.has(step.id)) err(['steps', i, 'id'], 'duplicate_step', `step id "${step.id}" is already used by step ${index.get(step.id)! + 1}; step ids must be unique within a sequence`);
    else index.set(step.id, i);
  });
  // An invalid step may be the email a condition means: it is reported already, don't add a second error.
  const emailIds = seq.steps.filter((s) => s.type === 'email' || s.type === 'invalid').flatMap((s) => (s.id === undefined ? [] : [s.id]));

  seq.steps.forEach((step, i) => {
    const at = (...rest: Path): Path => ['steps', i, ...rest];
    switch (step.type) {
      case 'email':
        if (!existsSync(join(templatesDir, `${step.template}.mjml`))) err(at('template'), 'unknown_template', `template "${step.template}" not found in ${templatesDir}${suggest(step.template, listTemplates(templatesDir))}`);
        checkSender(step.sender, at('sender'));
        if (step.gate && step.kind !== 'pitch') err(at('gate'), 'gate_on_value', 'a value-first gate only applies to kind: pitch');
        break;
      case 'wait': {
        const given = y.keysAt(at()).filter((k) => k === 'for' || k === 'businessDays' || k === 'until');
        if (given.length === 0) err(at(), 'wait_ambiguous', 'a wait step needs one of for, businessDays or until, and has none');
        // Point at the second one: the first is a fine wait on its own.
        else if (given.length > 1) err(at(given[1]!), 'wait_ambiguous', `a wait step takes exactly one of for, businessDays or until, but this one has ${given.join(' and ')}`, { key: true });
        if (step.until) checkWindow(step.until, at('until'), y, err);
        break;
      }
      case 'branch':
        for (const key of ['then', 'else'] as const) {
          const target = step[key];
          if (target === undefined) continue;
          const t = index.get(target);
          if (t === undefined) err(at(key), 'unknown_step', `branch ${key} goes to unknown step "${target}"${suggest(target, index.keys())}`);
          else if (t <= i) err(at(key), 'cycle', `branch ${key} goes back to step "${target}": steps only go forward, so a sequence always ends (move the branch or the target)`);
        }
        checkCondition(step.when, at('when'), emailIds, err);
        break;
      case 'goal':
        checkCondition(step.when, at('when'), emailIds, err);
        break;
      case 'invalid':
        break;
    }
  });
  return out;
}

function checkCondition(c: Condition, path: Path, emailIds: string[], err: Report): void {
  if ('opened' in c && !emailIds.includes(c.opened)) err([...path, 'opened'], 'unknown_step', `"${c.opened}" is not an email step of this sequence${suggest(c.opened, emailIds)}`);
  if ('clicked' in c && typeof c.clicked === 'string' && !emailIds.includes(c.clicked)) err([...path, 'clicked'], 'unknown_step', `"${c.clicked}" is not an email step of this sequence${suggest(c.clicked, emailIds)}`);
  if ('all' in c) c.all.forEach((x, i) => checkCondition(x, [...path, 'all', i], emailIds, err));
  if ('any' in c) c.any.forEach((x, i) => checkCondition(x, [...path, 'any', i], emailIds, err));
  if ('not' in c) checkCondition(c.not, [...path, 'not'], emailIds, err);
}

function checkWindow(w: Window, path: Path, y: PositionedYaml, err: Report): void {
  if (w.from < w.to) return;
  // Point at whichever end the author wrote (`from` when both are there).
  const written = y.keysAt(path);
  const end = written.includes('from') || !written.includes('to') ? 'from' : 'to';
  err([...path, end], 'impossible_window', `window from ${w.from} to ${w.to} is empty: "from" must be earlier than "to" (a window cannot cross midnight)`);
}

/** The email templates in a folder (partials live in a subfolder and are not listed). */
export function listTemplates(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.mjml'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}
