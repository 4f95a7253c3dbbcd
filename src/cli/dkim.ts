// `nurture dkim <domain> [--config dir]`: the DNS TXT record to publish for a domain's configured DKIM key.
import { resolve } from 'node:path';
import { inspectConfig } from '../config/load.js';
import { formatIssues } from '../config/issues.js';
import { dkimDnsRecord, formatDkimDnsRecord, readDkimKey } from '../mail/dkim.js';

export interface DkimOptions {
  domain: string;
  config: string;
  templates: string;
  write?: (line: string) => void;
}

export async function dkim(o: DkimOptions): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const configDir = resolve(o.config);
  const { config, issues } = inspectConfig(configDir, { templatesDir: resolve(o.templates) });
  if (!config) throw new Error(`configuration is invalid:\n${formatIssues(issues.filter((i) => i.severity === 'error'))}`);
  const domain = o.domain.toLowerCase();
  const keys = (config.funnel.sending?.dkim ?? []).filter((k) => k.domain.toLowerCase() === domain);
  if (!keys.length) {
    const known = (config.funnel.sending?.dkim ?? []).map((k) => k.domain);
    throw new Error(`no DKIM key for ${domain} in funnel.yaml (sending.dkim${known.length ? `: ${known.join(', ')}` : ' is empty'})`);
  }
  for (const k of keys) {
    const key = readDkimKey(k, configDir);
    write(formatDkimDnsRecord(dkimDnsRecord(key.privateKey, key.domain, key.selector)));
  }
  return 0;
}
