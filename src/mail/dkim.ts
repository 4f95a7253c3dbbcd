// DKIM keys: read from a file or the environment, chosen per message by the From domain (nodemailer
// signs a message with every key it is given, so each send gets only its own domain's key), and the
// DNS TXT record that publishes a key's public half.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { DkimKeyConfig } from '../config/schema.js';

export interface DkimKey {
  domain: string;
  selector: string;
  /** PEM. */
  privateKey: string;
}

export class DkimKeyError extends Error {
  readonly code = 'dkim_key_unreadable';
  constructor(readonly domain: string, message: string) {
    super(message);
    this.name = 'DkimKeyError';
  }
}

/** Reads one configured key: `file:` paths are relative to the config folder, `env:` names a variable. */
export function readDkimKey(k: DkimKeyConfig, configDir: string, env: NodeJS.ProcessEnv = process.env): DkimKey {
  const [kind, ...rest] = k.privateKey.split(':');
  const where = rest.join(':');
  let pem: string | undefined;
  if (kind === 'env') {
    // Environments often hold a PEM on one line with literal "\n".
    pem = env[where]?.replace(/\\n/g, '\n');
    if (!pem) throw new DkimKeyError(k.domain, `DKIM key for ${k.domain}: environment variable ${where} is not set`);
  } else {
    const path = isAbsolute(where) ? where : join(configDir, where);
    try {
      pem = readFileSync(path, 'utf8');
    } catch (err) {
      throw new DkimKeyError(k.domain, `DKIM key for ${k.domain}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  try {
    createPrivateKey(pem);
  } catch {
    throw new DkimKeyError(k.domain, `DKIM key for ${k.domain} (${k.privateKey}) is not a PEM private key`);
  }
  return { domain: k.domain.toLowerCase(), selector: k.selector, privateKey: pem };
}

const loaded = new WeakMap<readonly DkimKeyConfig[], DkimKey[]>();

/** Every configured key, read once per loaded configuration. Throws DkimKeyError naming the key at fault. */
export function dkimKeys(configs: readonly DkimKeyConfig[], configDir: string, env: NodeJS.ProcessEnv = process.env): DkimKey[] {
  let keys = loaded.get(configs);
  if (!keys) {
    keys = configs.map((k) => readDkimKey(k, configDir, env));
    loaded.set(configs, keys);
  }
  return keys;
}

/** The configured key domain that signs mail from `fromDomain`: its own, else the closest parent's. */
export function dkimDomainFor<T extends { domain: string }>(keys: readonly T[], fromDomain: string): T | null {
  const d = fromDomain.toLowerCase();
  const matches = keys.filter((k) => d === k.domain.toLowerCase() || d.endsWith(`.${k.domain.toLowerCase()}`));
  return matches.sort((a, b) => b.domain.length - a.domain.length)[0] ?? null;
}

/** nodemailer's per-message `dkim` option for a message from `fromDomain`, or undefined to send unsigned. */
export function dkimOptionFor(keys: readonly DkimKey[], fromDomain: string): { domainName: string; keySelector: string; privateKey: string } | undefined {
  const k = dkimDomainFor(keys, fromDomain);
  return k ? { domainName: k.domain, keySelector: k.selector, privateKey: k.privateKey } : undefined;
}

export interface DkimDnsRecord {
  name: string;
  type: 'TXT';
  /** The record's text, as one string. */
  value: string;
  /** The text split into DNS character-strings of at most 255 characters each. */
  strings: string[];
}

/** The TXT record publishing the public half of `privateKeyPem` (RFC 6376 §3.6.1; ed25519 per RFC 8463). */
export function dkimDnsRecord(privateKeyPem: string | KeyObject, domain: string, selector: string): DkimDnsRecord {
  const pub = createPublicKey(privateKeyPem);
  const der = pub.export({ type: 'spki', format: 'der' });
  const type = pub.asymmetricKeyType;
  let value: string;
  if (type === 'rsa') value = `v=DKIM1; k=rsa; p=${der.toString('base64')}`;
  // An Ed25519 record carries the bare 32-byte key, not the SPKI structure around it.
  else if (type === 'ed25519') value = `v=DKIM1; k=ed25519; p=${der.subarray(der.length - 32).toString('base64')}`;
  else throw new Error(`DKIM keys are RSA or Ed25519; this one is ${type ?? 'unknown'}`);
  const strings: string[] = [];
  for (let i = 0; i < value.length; i += 255) strings.push(value.slice(i, i + 255));
  return { name: `${selector}._domainkey.${domain.toLowerCase()}`, type: 'TXT', value, strings };
}

/** As a zone-file line: `s1._domainkey.handrail.example TXT "v=DKIM1; k=rsa; p=…" "…"`. */
export function formatDkimDnsRecord(r: DkimDnsRecord): string {
  return `${r.name} TXT ${r.strings.map((s) => `"${s}"`).join(' ')}`;
}

/** A new 2048-bit RSA signing key, PKCS#8 PEM: the size receivers expect (RFC 8301: 1024 is too weak, 4096 overflows some DNS UIs). */
export function generateDkimKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
}
