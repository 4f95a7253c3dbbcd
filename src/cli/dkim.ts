// `nurture dkim <domain> [--config dir]`: the DNS TXT record to publish for a domain's configured DKIM key.
// `nurture dkim generate <domain> [--selector s] [--force]`: a new key where funnel.yaml expects it, the
// funnel.yaml lines that name it, and the DNS record to publish.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { inspectConfig } from '../config/load.js';
import { formatIssues } from '../config/issues.js';
import { dkimDnsRecord, formatDkimDnsRecord, generateDkimKey, readDkimKey } from '../mail/dkim.js';

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

export interface DkimGenerateOptions {
  domain: string;
  /** Default: s<YYYYMM>, so a later key can sit beside this one while DNS changes over. */
  selector?: string;
  /** The config folder: `file:` paths in funnel.yaml are relative to it. */
  config: string;
  force?: boolean;
  now?: Date;
  write?: (line: string) => void;
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/i;
const SELECTOR = /^[a-z0-9](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9](?:[a-z0-9_-]{0,62}))*$/i;

export async function dkimGenerate(o: DkimGenerateOptions): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const domain = o.domain.trim().toLowerCase();
  if (!DOMAIN.test(domain)) throw new Error(`"${o.domain}" is not a domain name such as handrail.example`);
  const configDir = resolve(o.config);
  const funnelFile = join(configDir, 'funnel.yaml');
  if (!existsSync(funnelFile)) throw new Error(`no funnel.yaml in ${configDir}: give the config folder with --config`);

  // Where funnel.yaml already expects this domain's key, that is where it goes.
  const configured = configuredKeys(funnelFile).filter((k) => k.domain === domain && (!o.selector || k.selector === o.selector));
  const expected = configured.find((k) => k.privateKey.startsWith('file:'));
  const envOnly = !expected && configured.find((k) => k.privateKey.startsWith('env:'));
  const now = o.now ?? new Date();
  const selector = expected?.selector ?? o.selector ?? `s${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  if (!SELECTOR.test(selector)) throw new Error(`"${selector}" is not a DKIM selector: letters, digits, "-" and "_", dot-separated`);
  const fileRef = expected ? expected.privateKey.slice('file:'.length) : `keys/${domain}.${selector}.pem`;
  const path = isAbsolute(fileRef) ? fileRef : join(configDir, fileRef);
  const shown = relative(process.cwd(), path) || path;
  if (existsSync(path) && !o.force) throw new Error(`${shown} already exists: nurture dkim ${domain} prints its DNS record; add --force to replace it (mail signed with the old key fails DKIM until DNS has the new record)`);

  const pem = generateDkimKey();
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The config folder is kept in git; a private key never is.
    if (dir !== configDir) writeFileSync(join(dir, '.gitignore'), '# DKIM private keys: never commit them.\n*.pem\n');
  }
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600); // --force over an existing file keeps that file's mode otherwise
  const record = dkimDnsRecord(pem, domain, selector);

  write(`wrote ${shown} (2048-bit RSA, readable by you only; keep it out of git)`);
  write('');
  if (expected) {
    write(`funnel.yaml already names it: { domain: ${domain}, selector: ${selector}, privateKey: "${expected.privateKey}" }`);
  } else {
    const entry = `    - { domain: ${domain}, selector: ${selector}, privateKey: "file:${fileRef}" }`;
    const has = sendingShape(funnelFile);
    if (envOnly) write(`note: funnel.yaml takes ${domain}'s key from ${envOnly.privateKey}; to use this file instead, replace that entry with:`);
    else if (has.dkim) write('add to sending.dkim in funnel.yaml (file: paths are relative to the config folder):');
    else if (has.sending) write('add under sending: in funnel.yaml (file: paths are relative to the config folder):');
    else write('add to funnel.yaml (file: paths are relative to the config folder):');
    write('');
    if (!has.sending) write('sending:');
    if (!has.dkim || envOnly) write('  dkim:');
    write(entry);
  }
  write('');
  write('publish this DNS TXT record (a zone-file line; long values are split into strings of at most 255 characters):');
  write('');
  write(formatDkimDnsRecord(record));
  write('');
  write(`in a DNS provider's form: name ${selector}._domainkey (in the ${domain} zone), type TXT, value:`);
  write(record.value);
  return 0;
}

function readFunnel(funnelFile: string): { sending?: { dkim?: unknown } } | null {
  try {
    const data: unknown = parse(readFileSync(funnelFile, 'utf8'));
    return data && typeof data === 'object' ? (data as { sending?: { dkim?: unknown } }) : null;
  } catch {
    return null;
  }
}

/** Whether funnel.yaml has a sending: block, and a dkim: list in it: what the lines to add must fit into. */
function sendingShape(funnelFile: string): { sending: boolean; dkim: boolean } {
  const sending = readFunnel(funnelFile)?.sending;
  return { sending: !!sending && typeof sending === 'object', dkim: Array.isArray(sending?.dkim) };
}

/** The sending.dkim entries of funnel.yaml, read leniently: generating a key must work on a funnel still being written. */
function configuredKeys(funnelFile: string): { domain: string; selector: string; privateKey: string }[] {
  const list = readFunnel(funnelFile)?.sending?.dkim;
  if (!Array.isArray(list)) return [];
  return list.flatMap((k: unknown) => {
    const e = k as Record<string, unknown> | null;
    return e && typeof e.domain === 'string' && typeof e.selector === 'string' && typeof e.privateKey === 'string'
      ? [{ domain: e.domain.toLowerCase(), selector: e.selector, privateKey: e.privateKey }]
      : [];
  });
}
