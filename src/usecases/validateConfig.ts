// `nurture validate`: the YAML and every template it uses, all problems at once, each with file:line:column.
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { inspectConfig, type Config } from '../config/load.js';
import type { ConfigIssue } from '../config/issues.js';
import { parseYaml } from '../config/yaml.js';
import { dkimDomainFor, DkimKeyError, readDkimKey } from '../mail/dkim.js';
import { MAILBOXES_FILE } from '../config/mailboxes.js';
import { resolveSecret, SecretError } from '../config/secrets.js';
import { checkTemplate, compileTemplate, CONTEXT_FIELDS, loadTemplateSource, TemplateError } from '../render/index.js';

export async function validateConfig(configDir: string, templatesDir: string, cwd = process.cwd()): Promise<ConfigIssue[]> {
  const { config, issues } = inspectConfig(resolve(configDir), { templatesDir: resolve(templatesDir), cwd });
  if (!config) return issues;
  const show = (f: string) => relative(cwd, f) || f;
  issues.push(...checkDkim(config, show));
  issues.push(...checkMailboxSecrets(config, show));
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

/**
 * Mail from a domain without a DKIM key fails DMARC at many receivers: a warning at the sender that uses
 * it; a configured key that can't be read is an error (such sends would fail).
 */
function checkDkim(config: Config, show: (f: string) => string): ConfigIssue[] {
  const file = join(config.dir, 'funnel.yaml');
  const y = parseYaml(show(file), readFileSync(file, 'utf8'));
  const keys = config.funnel.sending?.dkim ?? [];
  const out: ConfigIssue[] = [];
  keys.forEach((k, i) => {
    try {
      readDkimKey(k, config.dir);
    } catch (err) {
      if (!(err instanceof DkimKeyError)) throw err;
      out.push({ file: y.file, ...y.at(['sending', 'dkim', i, 'privateKey']), code: err.code, message: err.message, severity: 'error' });
    }
  });
  for (const [name, sender] of Object.entries(config.funnel.senders)) {
    const domain = sender.email.slice(sender.email.lastIndexOf('@') + 1).toLowerCase();
    if (dkimDomainFor(keys, domain)) continue;
    out.push({
      file: y.file,
      ...y.at(['senders', name, 'email']),
      code: 'dkim_missing',
      message: `sender "${name}" sends from ${domain}, which has no DKIM key: add one under sending.dkim ({ domain: ${domain}, selector, privateKey: file:… }) and publish it (nurture dkim ${domain}), or many receivers will file its mail as spam`,
      severity: 'warning',
    });
  }
  return out;
}

/**
 * A mailbox password that can't be read here (a variable not set in this shell, a file not on this machine)
 * is a warning: validate often runs where the secrets are not, and the watcher says so at run time too.
 */
function checkMailboxSecrets(config: Config, show: (f: string) => string): ConfigIssue[] {
  if (!config.mailboxes.size) return [];
  const file = join(config.dir, MAILBOXES_FILE);
  const y = parseYaml(show(file), readFileSync(file, 'utf8'));
  const out: ConfigIssue[] = [];
  const owners = new Map(y.keysAt(['mailboxes']).map((k) => [k.toLowerCase(), k]));
  for (const box of config.mailboxes.values()) {
    for (const side of ['smtp', 'imap'] as const) {
      const s = box[side];
      // IMAP without its own password uses SMTP's: one warning for the one reference.
      if (!s || (side === 'imap' && box.smtp?.password === s.password)) continue;
      try {
        resolveSecret(s.password, config.dir);
      } catch (err) {
        if (!(err instanceof SecretError)) throw err;
        const key = owners.get(box.address) ?? box.address;
        const path = y.keysAt(['mailboxes', key, side]).includes('password') ? ['mailboxes', key, side, 'password'] : ['mailboxes', key, 'smtp', 'password'];
        out.push({ file: y.file, ...y.at(path), code: 'mailbox_secret_unreadable', message: `the ${side.toUpperCase()} password of ${box.address} cannot be read here: ${err.message}`, severity: 'warning' });
      }
    }
  }
  return out;
}
