// `nurture mailbox test OWNER [--config dir] [--json]`: connects to the rep's mailbox (SMTP and IMAP) and
// prints each step, ok or what failed; exits 1 when any step failed.
import { resolve } from 'node:path';
import { formatIssues } from '../config/issues.js';
import { inspectConfig } from '../config/load.js';
import { testMailbox } from '../usecases/testMailbox.js';

export interface MailboxTestOptions {
  owner: string;
  config: string;
  templates: string;
  json: boolean;
  write?: (line: string) => void;
}

export async function mailboxTest(o: MailboxTestOptions): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const { config, issues } = inspectConfig(resolve(o.config), { templatesDir: resolve(o.templates) });
  if (!config) throw new Error(`configuration is invalid:\n${formatIssues(issues.filter((i) => i.severity === 'error'))}`);
  const result = await testMailbox(config, o.owner);
  if (o.json) {
    write(JSON.stringify(result, null, 2));
    return result.ok ? 0 : 1;
  }
  if (!result.configured) {
    const known = [...config.mailboxes.keys()];
    write(`no mailbox is configured for ${o.owner} in mailboxes.yaml${known.length ? ` (configured: ${known.join(', ')})` : ''}`);
    return 1;
  }
  write(`mailbox ${result.owner}`);
  for (const c of result.checks) write(`  ${c.side}  ${(c.ok ? 'ok' : 'FAILED').padEnd(6)} ${c.step.padEnd(8)} ${c.detail}`);
  write(result.ok ? 'all checks passed' : `failed: ${result.checks.filter((c) => !c.ok).map((c) => `${c.side} ${c.step}`).join(', ')}`);
  return result.ok ? 0 : 1;
}
