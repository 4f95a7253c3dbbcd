// The transport tells a lost connection before DATA (safe to retry) from one while the message was
// flowing (uncertain) — nodemailer itself reports both as "Connection closed unexpectedly" — and still
// DKIM-signs each message with its own key. A send claims its message only once a pooled connection is
// its own, so nothing is `sending` while it merely waits for one.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
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

  it('claims a message only when a pooled connection is its own: the rest wait unclaimed, then go', async () => {
    // A relay that takes DATA and holds every reply until told: five connections stay busy.
    let answer!: () => void;
    const held = new Promise<void>((r) => (answer = r));
    let inData = 0;
    const hanging = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      logger: false,
      onData(stream, _session, cb) {
        stream.resume();
        stream.on('end', () => {
          inData++;
          void held.then(() => cb());
        });
      },
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
    const t = createTransport(`smtp://127.0.0.1:${(hanging.server.address() as { port: number }).port}?tls=off`);
    try {
      const claimed: number[] = [];
      const sends = Array.from({ length: 8 }, (_, i) => sendTracked(t, mail(`m${i}@acme.test`, false), async () => (claimed.push(i), true)));
      const deadline = Date.now() + 10_000;
      while (inData < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(inData).toBe(5);
      // Five in the relay's hands, three waiting for a connection and not claimed (not `sending`).
      expect(claimed).toEqual([0, 1, 2, 3, 4]);
      answer();
      const infos = await Promise.all(sends);
      expect(infos.every((i) => /^250/.test(String(i?.response)))).toBe(true);
      expect(claimed.sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      // A refused claim sends nothing.
      expect(await sendTracked(t, mail('late@acme.test', false), async () => false)).toBeNull();
      expect(inData).toBe(8);
    } finally {
      t.close();
      await new Promise<void>((r) => hanging.close(() => r()));
    }
  });
});
