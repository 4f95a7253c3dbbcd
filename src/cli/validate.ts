// `nurture validate [--config dir] [--templates dir]`: exits 1 when anything is wrong.
import { formatIssue } from '../config/issues.js';
import { validateConfig } from '../usecases/validateConfig.js';

export async function validate(opts: { config: string; templates: string }): Promise<number> {
  const issues = await validateConfig(opts.config, opts.templates);
  for (const i of issues) console.log(formatIssue(i));
  const errors = issues.filter((i) => i.severity === 'error').length;
  const warnings = issues.length - errors;
  console.log(errors ? `${errors} error(s), ${warnings} warning(s)` : `configuration is valid${warnings ? ` (${warnings} warning(s))` : ''}`);
  return errors ? 1 : 0;
}
