// After a refusal: retry a temporary failure within its attempts and its window, and suppress an address
// at once only when it is proven dead (5.1.x); policy blocks and full mailboxes only after repeats.
import { describe, expect, it } from 'vitest';
import { afterTemporaryFailure, bounceVerdict } from '../../src/delivery/policy.js';
import { smtpOutcome } from '../../src/mail/outcome.js';

const HOUR = 3_600_000;
const now = new Date('2026-11-03T10:00:00Z');

describe('after a temporary failure', () => {
  it('retries while attempts and the retry window last', () => {
    expect(afterTemporaryFailure({ attempt: 1, maxAttempts: 8, firstFailureAt: now, maxAgeMs: 24 * HOUR, now })).toEqual({ retry: true });
    expect(afterTemporaryFailure({ attempt: 7, maxAttempts: 8, firstFailureAt: new Date(now.getTime() - HOUR), maxAgeMs: 24 * HOUR, now })).toEqual({ retry: true });
  });

  it('gives up on the last attempt', () => {
    expect(afterTemporaryFailure({ attempt: 8, maxAttempts: 8, firstFailureAt: now, maxAgeMs: 24 * HOUR, now })).toEqual({ retry: false, why: 'gave up after 8 attempts' });
    expect(afterTemporaryFailure({ attempt: 1, maxAttempts: 1, firstFailureAt: now, maxAgeMs: 24 * HOUR, now })).toEqual({ retry: false, why: 'gave up after 1 attempt' });
  });

  it('gives up once the first failure is older than the retry window, attempts left or not', () => {
    const v = afterTemporaryFailure({ attempt: 2, maxAttempts: 8, firstFailureAt: new Date(now.getTime() - 2 * HOUR), maxAgeMs: HOUR, now });
    expect(v).toEqual({ retry: false, why: 'gave up: still failing 120 min after the first failure' });
  });
});

describe('a 5xx refusal', () => {
  const refused = (reply: string) => smtpOutcome(Object.assign(new Error(reply), { responseCode: Number(reply.slice(0, 3)), response: reply, command: 'RCPT TO' }));

  it('suppresses an unknown user at once', () => {
    const o = refused('550 5.1.1 <ghost@acme.example>: Recipient address rejected: User unknown');
    if (o.kind !== 'bounce') throw new Error('expected a bounce');
    expect(bounceVerdict(o.status, o.permanent, 0, 3)).toEqual({ suppress: true, why: 'unknown recipient (5.1.1)' });
  });

  it('counts policy blocks and full mailboxes, and suppresses on the threshold-th', () => {
    for (const reply of ['550 5.7.1 Message rejected due to local policy', '552 5.2.2 Mailbox full']) {
      const o = refused(reply);
      if (o.kind !== 'bounce') throw new Error('expected a bounce');
      expect(o.permanent).toBe(false);
      expect(bounceVerdict(o.status, o.permanent, 0, 3)).toEqual({ suppress: false, softBounces: 1 });
      expect(bounceVerdict(o.status, o.permanent, 1, 3)).toEqual({ suppress: false, softBounces: 2 });
      expect(bounceVerdict(o.status, o.permanent, 2, 3)).toEqual({ suppress: true, why: `3 soft bounces (last ${o.status})` });
    }
  });

  it('retries a 451 rather than bouncing it', () => {
    expect(refused('451 4.7.1 Greylisted, try again later').kind).toBe('retry');
  });
});
