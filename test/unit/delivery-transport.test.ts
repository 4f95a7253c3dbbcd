// The transport tells a lost connection before DATA (safe to retry) from one while the message was
// flowing (uncertain) — nodemailer itself reports both as "Connection closed unexpectedly" — and still
// DKIM-signs each message with its own key.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Transporter } from 'nodemailer';
import { smtpOutcome } from '../../src/mail/outcome.js';
import { createTransport, SendError, sendTracked } from '../../src/mail/transport.js';
import { startFaultySmtp, verifyDkim, type FaultySmtp } from '../support/smtp-faults.js';

const key = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
let relay: FaultySmtp;
let transport: Transporter;
beforeAll(async () => {
  relay = await startFaultySmtp();
  transport = createTransport(relay.url);
});
afterAll(async () => {
  transport?.close();
  await relay?.close();
});

const mail = (to: string, signed: boolean) => ({
  from: 'maya@handrail.example',
  to,
  subject: 'Hello',
  text: 'A note',
  ...(signed ? { dkim: { domainName: 'handrail.example', keySelector: 'p1', privateKey: key.privateKey } } : {}),
});

async function failure(p: Promise<unknown>): Promise<SendError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SendError) return err;
    throw err;
  }
  throw new Error('expected the send to fail');
}

describe('sendTracked', () => {
  for (const signed of [false, true]) {
    it(`reports a connection dropped during DATA as uncertain${signed ? ' (DKIM-signed)' : ''}`, async () => {
      const to = `drop-${signed}@acme.test`;
      relay.data = (rcpts) => (rcpts.includes(to) ? 'drop' : 'accept');
      const err = await failure(sendTracked(transport, mail(to, signed)));
      expect(err.phase).toBe('data');
      expect(smtpOutcome(err.cause, err.phase).kind).toBe('uncertain');
      // Without the phase, nodemailer's error alone would have looked retryable.
      expect(smtpOutcome(err.cause).kind).toBe('retry');
    });
  }

  it('reports a refusal before DATA as retryable', async () => {
    relay.rcpt = (a) => (a === 'grey@acme.test' ? { code: 451, message: '4.7.1 Try later' } : null);
    const err = await failure(sendTracked(transport, mail('grey@acme.test', true)));
    expect(err.phase).toBe('before_data');
    expect(smtpOutcome(err.cause, err.phase)).toMatchObject({ kind: 'retry' });
    relay.rcpt = () => null;
  });

  it('delivers and signs through the probe', async () => {
    relay.data = () => 'accept';
    const info = await sendTracked(transport, mail('ok@acme.test', true));
    expect(String(info.response)).toMatch(/^250/);
    const got = relay.mails.find((m) => m.envelopeTo.includes('ok@acme.test'))!;
    expect(verifyDkim(got.raw, key.publicKey)).toMatchObject({ ok: true, tags: { d: 'handrail.example', s: 'p1' } });
    expect(got.raw.match(/^DKIM-Signature:/gim)).toHaveLength(1);
  });
});
