// After a refusal: retry a temporary failure on a schedule that spans its retry age, and suppress an address
// at once only when it is proven dead (5.1.x); policy blocks and full mailboxes only after repeats.
import { describe, expect, it } from 'vitest';
import { afterTemporaryFailure, attemptsSpanning, bounceVerdict, retryDelay, retryScheduleOf } from '../../src/delivery/policy.js';
import { smtpOutcome } from '../../src/mail/outcome.js';

const HOUR = 3_600_000;
const now = new Date('2026-11-03T10:00:00Z');

describe('after a temporary failure', () => {
  const DAY = 24 * HOUR;
  const schedule = retryScheduleOf(undefined);

  it('defaults to waits doubling from 5 s up to 10 min, for a day', () => {
    expect(schedule).toEqual({ firstDelayMs: 5_000, maxDelayMs: 600_000, maxAgeMs: DAY });
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 50].map((r) => retryDelay(r, schedule) / 1000)).toEqual([5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    expect(retryScheduleOf({ maxRetryAge: '20s', maxRetryDelay: '1s' })).toEqual({ firstDelayMs: 5_000, maxDelayMs: 1_000, maxAgeMs: 20_000 });
  });

  it('retries while the retry age lasts, however many attempts that takes', () => {
    expect(afterTemporaryFailure({ attempt: 1, firstFailureAt: now, schedule, now })).toEqual({ retry: true, delayMs: 5_000 });
    expect(afterTemporaryFailure({ attempt: 8, firstFailureAt: new Date(now.getTime() - 635_000), schedule, now })).toEqual({ retry: true, delayMs: 600_000 });
    expect(afterTemporaryFailure({ attempt: 140, firstFailureAt: new Date(now.getTime() - DAY + 60_000), schedule, now })).toEqual({ retry: true, delayMs: 600_000 });
  });

  it('fails only once the age has run out, and says so', () => {
    const v = afterTemporaryFailure({ attempt: 2, firstFailureAt: new Date(now.getTime() - 2 * HOUR), schedule: { ...schedule, maxAgeMs: HOUR }, now });
    expect(v).toEqual({ retry: false, why: 'retry age ran out: still failing 2 h after the first failure, 2 attempts (sending.maxRetryAge 1 h)' });
    expect(afterTemporaryFailure({ attempt: 151, firstFailureAt: new Date(now.getTime() - DAY), schedule, now })).toMatchObject({ retry: false });
  });

  // Eight attempts with a 5 s exponential backoff were over in about 635 s: a ten-minute relay outage
  // failed every due message for good, whatever maxRetryAge said.
  it('a relay down for ten minutes, or for an hour, fails nothing; the attempts span the whole day', () => {
    for (const outageMs of [10 * 60_000, HOUR, 23 * HOUR]) {
      let t = 0;
      let attempt = 1;
      for (; t < outageMs; attempt++) {
        const v = afterTemporaryFailure({ attempt, firstFailureAt: new Date(now.getTime()), schedule, now: new Date(now.getTime() + t) });
        expect(v.retry, `attempt ${attempt} at ${t / 1000} s into a ${outageMs / 60_000} min outage`).toBe(true);
        t += v.retry ? v.delayMs : 0;
      }
    }
    const cap = attemptsSpanning(schedule);
    let spanned = 0;
    for (let r = 1; r < cap; r++) spanned += retryDelay(r, schedule);
    expect(spanned).toBeGreaterThanOrEqual(DAY);
    expect(cap).toBeLessThan(160);
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
