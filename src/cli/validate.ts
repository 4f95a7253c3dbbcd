// `nurture validate [--config dir] [--templates dir]`: exits 1 when anything is wrong.
import { formatIssue } from '../config/issues.js';
import { validateConfig } from '../usecases/validateConfig.js';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { connectDatabase } from '../db/client.js';
import { formatPlan, loadSequenceVersions, planEdit } from '../usecases/planEdit.js';

export async function validate(opts: { config: string; templates: string; plan?: string }): Promise<number> {
  const issues = await validateConfig(opts.config, opts.templates);
  for (const i of issues) console.log(formatIssue(i));
  const errors = issues.filter((i) => i.severity === 'error').length;
  const warnings = issues.length - errors;
  console.log(errors ? `${errors} error(s), ${warnings} warning(s)` : `configuration is valid${warnings ? ` (${warnings} warning(s))` : ''}`);
  if (errors || !opts.plan) return errors ? 1 : 0;
  // What the change will do to enrollments in flight, against the live database.
  const database = connectDatabase(opts.plan, { max: 1 });
  try {
    const next = loadConfig(resolve(opts.config), { templatesDir: resolve(opts.templates) });
    for (const line of formatPlan(await planEdit(database.db, await loadSequenceVersions(database.db), next))) console.log(line);
  } finally {
    await database.close();
  }
  return 0;
}
