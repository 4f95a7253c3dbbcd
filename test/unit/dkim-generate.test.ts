// `nurture dkim generate`: a key where funnel.yaml expects it, the lines that name it, and a DNS record
// that verifies what nurture then signs with it.
import { createPublicKey } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dkimGenerate } from '../../src/cli/dkim.js';
import { loadConfig } from '../../src/config/load.js';
import { dkimKeys, dkimOptionFor } from '../../src/mail/dkim.js';
import { toMailOptions } from '../../src/mail/message.js';
import { validateConfig } from '../../src/usecases/validateConfig.js';
import { verifyDkim } from '../support/smtp-faults.js';

let root: string;
let config: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'nurture-dkim-gen-'));
  config = join(root, 'config');
  cpSync('config', config, { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function generate(o: { domain?: string; selector?: string; force?: boolean } = {}): Promise<string[]> {
  const lines: string[] = [];
  await dkimGenerate({ domain: o.domain ?? 'handrail.example', config, write: (l) => lines.push(l), now: new Date('2026-03-02T12:00:00Z'), ...(o.selector ? { selector: o.selector } : {}), ...(o.force ? { force: true } : {}) });
  return lines;
}

/** The public key as a resolver would assemble it from the printed zone-file line: its strings joined. */
function publishedKey(lines: string[]) {
  const zone = lines.find((l) => /^\S+\._domainkey\.\S+ TXT "/.test(l))!;
  const value = [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1]!).join('');
  const p = /(?:^|;\s*)p=([A-Za-z0-9+/=]+)/.exec(value)![1]!;
  return { zone, value, key: createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' }) };
}

describe('nurture dkim generate', () => {
  it('writes a 2048-bit key only its owner can read, prints what to add, and what it signs verifies against the printed record', async () => {
    const lines = await generate({ selector: 's1' });
    const file = join(config, 'keys', 'handrail.example.s1.pem');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(config, 'keys', '.gitignore'), 'utf8')).toContain('*.pem');
    expect(createPublicKey(readFileSync(file, 'utf8')).asymmetricKeyDetails?.modulusLength).toBe(2048);

    const { zone, value } = publishedKey(lines);
    expect(zone.startsWith('s1._domainkey.handrail.example TXT "v=DKIM1; k=rsa; p=')).toBe(true);
    // DNS takes character-strings of at most 255 characters; a 2048-bit key needs two.
    const strings = [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    expect(strings.length).toBe(2);
    expect(strings.every((s) => s.length <= 255)).toBe(true);
    expect(lines).toContain(value);

    // The printed funnel.yaml lines, added as printed, load and sign.
    const snippet = lines.slice(lines.indexOf('sending:'), lines.indexOf('sending:') + 3);
    expect(snippet).toEqual(['sending:', '  dkim:', '    - { domain: handrail.example, selector: s1, privateKey: "file:keys/handrail.example.s1.pem" }']);
    appendFileSync(join(config, 'funnel.yaml'), `\n${snippet.join('\n')}\n`);
    const loaded = loadConfig(config, { templatesDir: 'templates' });
    const dkim = dkimOptionFor(dkimKeys(loaded.funnel.sending!.dkim, loaded.dir), 'handrail.example');
    expect(dkim).toMatchObject({ domainName: 'handrail.example', keySelector: 's1' });

    const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
    const info = await transport.sendMail(
      toMailOptions({
        messageId: 'row-1@handrail.example',
        from: { name: 'Maya at Handrail', email: 'maya@handrail.example' },
        to: { name: 'Ana', email: 'ana@acme.example' },
        subject: 'The 2025 onboarding benchmark',
        html: '<p>Hello Ana</p>',
        text: 'Hello Ana',
        unsubscribeUrl: 'https://nurture.handrail.example/u/abc',
        dkim: dkim!,
      }),
    );
    const raw = (info.message as Buffer).toString('utf8');
    expect(verifyDkim(raw, publishedKey(lines).key)).toMatchObject({ ok: true, bodyHashOk: true, tags: { d: 'handrail.example', s: 's1' } });
    // And `nurture validate` no longer warns that the brand sender's domain is unsigned.
    const issues = await validateConfig(config, 'templates', root);
    expect(issues.filter((i) => i.code === 'dkim_missing' || i.code === 'dkim_key_unreadable')).toEqual([]);
  });

  it('refuses to overwrite a key without --force, and keeps it private with it', async () => {
    await generate({ selector: 's1' });
    const file = join(config, 'keys', 'handrail.example.s1.pem');
    const first = readFileSync(file, 'utf8');
    await expect(generate({ selector: 's1' })).rejects.toThrow(/already exists.*--force/);
    expect(readFileSync(file, 'utf8')).toBe(first);
    await generate({ selector: 's1', force: true });
    expect(readFileSync(file, 'utf8')).not.toBe(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('writes the key where funnel.yaml already expects it, with that selector', async () => {
    appendFileSync(join(config, 'funnel.yaml'), '\nsending:\n  dkim:\n    - { domain: handrail.example, selector: s2026, privateKey: "file:secrets/handrail.pem" }\n');
    const lines = await generate();
    expect(existsSync(join(config, 'secrets', 'handrail.pem'))).toBe(true);
    expect(lines.some((l) => l.startsWith('funnel.yaml already names it'))).toBe(true);
    expect(publishedKey(lines).zone.startsWith('s2026._domainkey.handrail.example TXT')).toBe(true);
    expect(loadConfig(config, { templatesDir: 'templates' }).funnel.sending!.dkim).toHaveLength(1);
    expect((await validateConfig(config, 'templates', root)).filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('names the selector after the month by default, and refuses what is not a domain', async () => {
    const lines = await generate();
    expect(existsSync(join(config, 'keys', 'handrail.example.s202603.pem'))).toBe(true);
    expect(publishedKey(lines).zone.startsWith('s202603._domainkey.handrail.example TXT')).toBe(true);
    await expect(generate({ domain: '127.0.0.1' })).rejects.toThrow(/not a domain name/);
    writeFileSync(join(config, 'funnel.yaml'), ''); // an empty funnel still gets its key
    await expect(generate({ selector: 'fresh' })).resolves.toContain('sending:');
  });
});
