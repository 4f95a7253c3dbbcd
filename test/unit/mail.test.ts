import { describe, expect, it } from 'vitest';
import { enhancedStatus, isPermanentFailure, smtpOutcome } from '../../src/mail/outcome.js';
import { replySubject, toMailOptions } from '../../src/mail/message.js';
import { signToken, trackingUrls, verifyToken } from '../../src/mail/tracking.js';

describe('SMTP outcomes', () => {
  it('retries 4xx and failures before the message was handed over', () => {
    expect(smtpOutcome({ responseCode: 451, response: '451 4.7.1 Greylisted, try again later', command: 'RCPT TO' }).kind).toBe('retry');
    expect(smtpOutcome({ code: 'ECONNECTION', message: 'connect ECONNREFUSED 127.0.0.1:25' }).kind).toBe('retry');
    expect(smtpOutcome({ code: 'ETIMEDOUT', command: 'CONN' }).kind).toBe('retry');
    expect(smtpOutcome({ code: 'EENVELOPE', command: 'MAIL FROM', message: 'socket hang up' }).kind).toBe('retry');
  });

  it('reports a drop after DATA as uncertain, never as something to resend', () => {
    expect(smtpOutcome({ code: 'ECONNECTION', command: 'DATA', message: 'Connection closed unexpectedly' }).kind).toBe('uncertain');
    expect(smtpOutcome({ code: 'ESOCKET', command: 'DATA', message: 'read ECONNRESET' })).toMatchObject({ kind: 'uncertain' });
    expect(smtpOutcome({ code: 'ETIMEDOUT', message: 'Timeout' })).toMatchObject({ kind: 'uncertain' });
  });

  it('treats 5xx as a bounce, permanent only for unknown users', () => {
    expect(smtpOutcome({ responseCode: 550, response: '550 5.1.1 <x@y.test>: Recipient address rejected: User unknown' })).toEqual({ kind: 'bounce', reason: '550 5.1.1 <x@y.test>: Recipient address rejected: User unknown', status: '5.1.1', permanent: true });
    expect(smtpOutcome({ responseCode: 552, response: '552 5.2.2 Mailbox full' })).toMatchObject({ kind: 'bounce', status: '5.2.2', permanent: false });
    expect(smtpOutcome({ responseCode: 554, response: '554 5.7.1 Message rejected due to content policy' })).toMatchObject({ kind: 'bounce', status: '5.7.1', permanent: false });
    expect(enhancedStatus('550-5.1.10 RESOLVER.ADR.RecipientNotFound')).toBe('5.1.10');
    expect(isPermanentFailure('5.1.10')).toBe(true);
  });
});

describe('tracking tokens', () => {
  const secret = 'a-tracking-secret-of-some-length';
  const id = '3f2b8c1e-9a7d-4e21-8b3c-5d6e7f8a9b0c';

  it('round-trips a message id and refuses any change', () => {
    const token = signToken(secret, 'track', id);
    expect(verifyToken(secret, 'track', token)).toBe(id);
    expect(verifyToken(secret, 'unsubscribe', token)).toBeNull();
    expect(verifyToken('another-secret-entirely-here', 'track', token)).toBeNull();
    const [head, sig] = token.split('.');
    expect(verifyToken(secret, 'track', `${head}.${sig!.slice(0, -1)}${sig!.endsWith('A') ? 'B' : 'A'}`)).toBeNull();
    expect(verifyToken(secret, 'track', `${head![0] === 'A' ? 'B' : 'A'}${head!.slice(1)}.${sig}`)).toBeNull();
    // The same id spelt with different spare bits is not the same token.
    const last = head!.at(-1)!;
    expect(verifyToken(secret, 'track', `${head!.slice(0, -1)}${last === 'A' ? 'B' : String.fromCharCode(last.charCodeAt(0) + 1)}.${sig}`)).toBeNull();
    expect(verifyToken(secret, 'track', 'garbage')).toBeNull();
  });

  it('builds pixel, click and unsubscribe URLs under the public URL', () => {
    const u = trackingUrls('https://mail.example.com/', secret, id);
    expect(u.pixel).toMatch(/^https:\/\/mail\.example\.com\/t\/o\/[\w-]+\.[\w-]+\.gif$/);
    expect(u.click('guide')).toMatch(/^https:\/\/mail\.example\.com\/t\/c\/[\w-]+\.[\w-]+\/guide$/);
    expect(u.unsubscribe).toMatch(/^https:\/\/mail\.example\.com\/u\//);
  });
});

describe('message headers', () => {
  it('threads and carries the RFC 8058 one-click header', () => {
    const o = toMailOptions({ messageId: 'a@x.test', from: { name: 'Sam', email: 'sam@x.test' }, to: { email: 'ana@y.test' }, subject: 'Re: Hi', html: '<p>Hi</p>', text: 'Hi', inReplyTo: 'prev@x.test', references: ['root@x.test', 'prev@x.test'], unsubscribeUrl: 'https://x.test/u/t' });
    expect(o.messageId).toBe('<a@x.test>');
    expect(o.inReplyTo).toBe('<prev@x.test>');
    expect(o.references).toEqual(['<root@x.test>', '<prev@x.test>']);
    expect(o.headers).toEqual({ 'List-Unsubscribe': { prepared: true, foldLines: true, value: '<https://x.test/u/t>' }, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' });
  });

  it('adds "Re: " once', () => {
    expect(replySubject('Hello')).toBe('Re: Hello');
    expect(replySubject('Re: Hello')).toBe('Re: Hello');
    expect(replySubject('RE: Hello')).toBe('RE: Hello');
  });
});

describe('reply addresses', () => {
  const secret = 'a-tracking-secret-of-some-length';
  const id = '3f2b8c1e-9a7d-4e21-8b3c-5d6e7f8a9b0c';

  it('name their message, survive lower-casing, and refuse forgeries', async () => {
    const { replyAddress, messageFromReplyAddress } = await import('../../src/mail/tracking.js');
    const addr = replyAddress(secret, id, 'in.nurture.test');
    expect(addr).toMatch(/^reply\+[0-9a-f]{48}@in\.nurture\.test$/);
    expect(messageFromReplyAddress(secret, ['sam@x.test', `"Maya" <${addr.toUpperCase()}>`])).toBe(id);
    expect(messageFromReplyAddress('another-secret-entirely-here', [addr])).toBeNull();
    expect(messageFromReplyAddress(secret, [addr.replace(/[0-9a-f](?=@)/, (c) => (c === '0' ? '1' : '0'))])).toBeNull();
    expect(messageFromReplyAddress(secret, ['plain@in.nurture.test'])).toBeNull();
  });
});
