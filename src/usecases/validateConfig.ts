// `nurture validate`: the YAML and every template it uses, all problems at once, each with file:line:column.
import { relative, resolve } from 'node:path';
import { inspectConfig } from '../config/load.js';
import type { ConfigIssue } from '../config/issues.js';
import { checkTemplate, compileTemplate, CONTEXT_FIELDS, loadTemplateSource, TemplateError } from '../render/index.js';

export async function validateConfig(configDir: string, templatesDir: string, cwd = process.cwd()): Promise<ConfigIssue[]> {
  const { config, issues } = inspectConfig(resolve(configDir), { templatesDir: resolve(templatesDir), cwd });
  if (!config) return issues;
  const show = (f: string) => relative(cwd, f) || f;
  // A template used by any segmented sequence must carry an unsubscribe link.
  const usage = new Map<string, boolean>();
  for (const seq of config.sequences.values()) {
    for (const step of seq.steps) if (step.type === 'email') usage.set(step.template, (usage.get(step.template) ?? false) || seq.mode === 'segmented');
  }
  for (const [name, segmented] of [...usage].sort()) {
    try {
      const source = loadTemplateSource(config.templatesDir, name);
      const compiled = await compileTemplate(source);
      const fields = [...CONTEXT_FIELDS, ...config.funnel.attributes.lead.map((a) => `lead.attributes.${a}`), ...config.funnel.attributes.account.map((a) => `account.attributes.${a}`)];
      for (const i of checkTemplate(source, compiled, { fields, segmented })) {
        issues.push({ file: show(i.file), line: i.line, column: i.column ?? 1, code: i.code, message: i.message, severity: i.severity });
      }
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      for (const e of [err, ...err.others]) issues.push({ file: show(e.file), line: e.line, column: e.column ?? 1, code: e.code, message: e.message.replace(/^\S+:\d+(:\d+)? /, ''), severity: 'error' });
    }
  }
  return issues;
}
