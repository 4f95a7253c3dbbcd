// DKIM: keys from a file or the environment, one key per message by its From domain, a signature a
// receiver can verify, the DNS record that publishes the key, and the validate warning for unsigned senders.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import { dkimDnsRecord, dkimDomainFor, dkimKeys, dkimOptionFor, DkimKeyError, formatDkimDnsRecord, readDkimKey } from '../../src/mail/dkim.js';
import { toMailOptions } from '../../src/mail/message.js';
import { validateConfig } from '../../src/usecases/validateConfig.js';
import { verifyDkim } from '../support/smtp-faults.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const temps: string[] = [];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the DKIM DNS record', () => {
  it('publishes the SPKI DER of the key, split into strings of at most 255 characters', () => {
    const r = dkimDnsRecord(rsa.privateKey, 'Handrail.example', 's2026');
    expect(r.name).toBe('s2026._domainkey.handrail.example');
    const spki = createPublicKey(rsa.publicKey).export({ type: 'spki', format: 'der' }).toString('base64');
    expect(r.value).toBe(`v=DKIM1; k=rsa; p=${spki}`);
    expect(r.strings.length).toBeGreaterThan(1);
    expect(r.strings.every((s) => s.length <= 255)).toBe(true);
    expect(r.strings.join('')).toBe(r.value);
    expect(formatDkimDnsRecord(r)).toBe(`s2026._domainkey.handrail.example TXT ${r.strings.map((s) => `"${s}"`).join(' ')}`);
  });

  it('carries the bare 32-byte key for Ed25519', () => {
    const ed = generateKeyPairSync('ed25519');
    const r = dkimDnsRecord(ed.privateKey, 'handrail.example', 'ed');
    const p = /p=(.+)$/.exec(r.value)![1]!;
    expect(r.value.startsWith('v=DKIM1; k=ed25519; ')).toBe(true);
    expect(Buffer.from(p, 'base64')).toHaveLength(32);
  });
});

describe('DKIM keys', () => {
  it('reads a key from a file relative to the config folder, or from the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nurture-dkim-'));
    temps.push(dir);
    mkdirSync(join(dir, 'keys'));
    writeFileSync(join(dir, 'keys', 'h.pem'), rsa.privateKey);
    expect(readDkimKey({ domain: 'Handrail.example', selector: 's1', privateKey: 'file:keys/h.pem' }, dir)).toEqual({ domain: 'handrail.example', selector: 's1', privateKey: rsa.privateKey });
    const oneLine = rsa.privateKey.replace(/\n/g, '\\n');
    expect(readDkimKey({ domain: 'handrail.example', selector: 's1', privateKey: 'env:K' }, dir, { K: oneLine }).privateKey).toBe(rsa.privateKey);
    expect(() => readDkimKey({ domain: 'handrail.example', selector: 's1', privateKey: 'env:MISSING' }, dir, {})).toThrow(DkimKeyError);
    expect(() => readDkimKey({ domain: 'handrail.example', selector: 's1', privateKey: 'file:keys/none.pem' }, dir)).toThrow(/cannot read/);
    expect(() => readDkimKey({ domain: 'handrail.example', selector: 's1', privateKey: 'env:K' }, dir, { K: 'not a key' })).toThrow(/not a PEM private key/);
  });

  it('signs with the From domain’s own key, or its closest parent’s, and with none for other domains', () => {
    const keys = [
      { domain: 'handrail.example', selector: 'a', privateKey: 'A' },
      { domain: 'news.handrail.example', selector: 'b', privateKey: 'B' },
    ];
    expect(dkimDomainFor(keys, 'handrail.example')?.selector).toBe('a');
    expect(dkimDomainFor(keys, 'mail.handrail.example')?.selector).toBe('a');
    expect(dkimDomainFor(keys, 'x.news.handrail.example')?.selector).toBe('b');
    expect(dkimDomainFor(keys, 'evilhandrail.example')).toBeNull();
    expect(dkimOptionFor(keys, 'partner.example')).toBeUndefined();
  });

  it('produces a signature that verifies against the published key', async () => {
    const keys = dkimKeys([{ domain: 'handrail.example', selector: 's1', privateKey: 'env:K' }], '.', { K: rsa.privateKey });
    const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
    const info = await transport.sendMail(
      toMailOptions({
        messageId: 'row-1@nurture.test',
        from: { name: 'Maya', email: 'maya@handrail.example' },
        to: { name: 'Ana', email: 'ana@acme.example' },
        subject: 'A benchmark  for   you',
        html: '<p>Hello   Ana</p>',
        text: 'Hello   Ana\n\n\n',
        unsubscribeUrl: 'https://nurture.test/u/abc',
        dkim: dkimOptionFor(keys, 'handrail.example')!,
      }),
    );
    const raw = (info.message as Buffer).toString('utf8');
    const check = verifyDkim(raw, rsa.publicKey);
    expect(check.tags).toMatchObject({ d: 'handrail.example', s: 's1' });
    expect(check.bodyHashOk).toBe(true);
    expect(check.ok).toBe(true);
    // A changed subject breaks it: the check really checks.
    expect(verifyDkim(raw.replace('Subject: A benchmark', 'Subject: A bench mark'), rsa.publicKey).ok).toBe(false);
    expect(verifyDkim(raw, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey).ok).toBe(false);
  });
});

describe('nurture validate', () => {
  it('warns at the sender when its domain has no DKIM key, and errors on a key it cannot read', async () => {
    delete process.env.NURTURE_TEST_DKIM_KEY;
    let issues = await validateConfig('test/fixtures/config/delivery', 'templates');
    const unreadable = issues.filter((i) => i.code === 'dkim_key_unreadable');
    expect(unreadable).toMatchObject([{ file: 'test/fixtures/config/delivery/funnel.yaml', severity: 'error' }]);
    process.env.NURTURE_TEST_DKIM_KEY = rsa.privateKey;
    try {
      issues = await validateConfig('test/fixtures/config/delivery', 'templates');
    } finally {
      delete process.env.NURTURE_TEST_DKIM_KEY;
    }
    expect(issues.filter((i) => i.severity === 'error')).toEqual([]);
    const missing = issues.filter((i) => i.code === 'dkim_missing');
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({ file: 'test/fixtures/config/delivery/funnel.yaml', severity: 'warning', line: 9 });
    expect(missing[0]!.message).toContain('partner.example');
  });
});
