// Checks that need more than one field: names that must exist, steps that must be reachable, windows
// that must be possible. Each finding carries the position of the offending value.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { suggest, type ConfigIssue } from './issues.js';
import type { Condition, Funnel, Sequence, Window } from './schema.js';
import type { PositionedYaml } from './yaml.js';

type Path = (string | number)[];

export function checkFunnel(funnel: Funnel, y: PositionedYaml): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const err = (path: Path, code: string, message: string) => out.push({ file: y.file, ...y.at(path), code, message, severity: 'error' });
  const seen = new Set<string>();
  funnel.stages.forEach((s, i) => {
    if (seen.has(s)) err(['stages', i], 'duplicate_stage', `stage "${s}" is listed twice`);
    seen.add(s);
  });
  for (const stage of Object.keys(funnel.advancement)) {
    if (!seen.has(stage)) err(['advancement', stage], 'unknown_stage', `advancement names unknown stage "${stage}"${suggest(stage, funnel.stages)}`);
    else if (funnel.stages.indexOf(stage) === funnel.stages.length - 1) err(['advancement', stage], 'last_stage', `"${stage}" is the last stage: there is no stage to advance to`);
  }
  if (funnel.defaults.window) checkWindow(funnel.defaults.window, ['defaults', 'window'], err);
  return out;
}

export function checkSequence(seq: Sequence, funnel: Funnel, y: PositionedYaml, templatesDir: string): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const err = (path: Path, code: string, message: string) => out.push({ file: y.file, ...y.at(path), code, message, severity: 'error' });

  if (!funnel.stages.includes(seq.stage)) err(['stage'], 'unknown_stage', `unknown stage "${seq.stage}"${suggest(seq.stage, funnel.stages)}; stages are ${funnel.stages.join(', ')}`);
  const personas = Object.keys(funnel.personas);
  seq.personas?.forEach((p, i) => {
    if (!personas.includes(p)) err(['personas', i], 'unknown_persona', `unknown persona "${p}"${suggest(p, personas)}; personas are ${personas.join(', ')}`);
  });
  if (seq.entry.on === 'event' && !seq.entry.event) err(['entry'], 'missing_key', 'entry.event is required when entry.on is "event"');
  if (seq.window) checkWindow(seq.window, ['window'], err);

  const senders = Object.keys(funnel.senders);
  const checkSender = (sender: string | undefined, path: Path) => {
    if (sender === undefined) return;
    if (sender === 'owner') {
      if (seq.mode === 'segmented') err(path, 'owner_in_segmented', 'a segmented sequence is sent from a brand sender, not the lead\'s owner');
      return;
    }
    if (!senders.includes(sender)) err(path, 'unknown_sender', `unknown sender "${sender}"${suggest(sender, [...senders, 'owner'])}; senders are owner, ${senders.join(', ')}`);
  };
  checkSender(seq.sender, ['sender']);
  if (seq.mode === 'segmented' && seq.sender === undefined && senders.length === 0) err(['mode'], 'no_sender', 'a segmented sequence needs a brand sender: add one under senders in funnel.yaml');

  const index = new Map<string, number>();
  seq.steps.forEach((step, i) => {
    if (index.has(step.id)) err(['steps', i, 'id'], 'duplicate_step', `step id "${step.id}" is already used by step ${index.get(step.id)! + 1}`);
    else index.set(step.id, i);
  });
  const emailIds = seq.steps.filter((s) => s.type === 'email').map((s) => s.id);

  seq.steps.forEach((step, i) => {
    const at = (...rest: Path): Path => ['steps', i, ...rest];
    switch (step.type) {
      case 'email':
        if (!existsSync(join(templatesDir, `${step.template}.mjml`))) err(at('template'), 'unknown_template', `template "${step.template}" not found in ${templatesDir}${suggest(step.template, listTemplates(templatesDir))}`);
        checkSender(step.sender, at('sender'));
        if (step.gate && step.kind !== 'pitch') err(at('gate'), 'gate_on_value', 'a value-first gate only applies to kind: pitch');
        break;
      case 'wait': {
        const n = [step.for, step.businessDays, step.until].filter((x) => x !== undefined).length;
        if (n !== 1) err(at(), 'wait_ambiguous', 'a wait step needs exactly one of for, businessDays or until');
        if (step.until) checkWindow(step.until, at('until'), err);
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
    }
  });
  return out;
}

function checkCondition(c: Condition, path: Path, emailIds: string[], err: (p: Path, code: string, m: string) => void): void {
  if ('opened' in c && !emailIds.includes(c.opened)) err([...path, 'opened'], 'unknown_step', `"${c.opened}" is not an email step of this sequence${suggest(c.opened, emailIds)}`);
  if ('clicked' in c && typeof c.clicked === 'string' && !emailIds.includes(c.clicked)) err([...path, 'clicked'], 'unknown_step', `"${c.clicked}" is not an email step of this sequence${suggest(c.clicked, emailIds)}`);
  if ('all' in c) c.all.forEach((x, i) => checkCondition(x, [...path, 'all', i], emailIds, err));
  if ('any' in c) c.any.forEach((x, i) => checkCondition(x, [...path, 'any', i], emailIds, err));
  if ('not' in c) checkCondition(c.not, [...path, 'not'], emailIds, err);
}

function checkWindow(w: Window, path: Path, err: (p: Path, code: string, m: string) => void): void {
  if (w.from >= w.to) err(path, 'impossible_window', `window from ${w.from} to ${w.to} is empty: "from" must be earlier than "to"`);
}

function listTemplates(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.mjml')).map((f) => f.slice(0, -5));
  } catch {
    return [];
  }
}
