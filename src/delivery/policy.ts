// What to do after a relay refuses or drops a send. Pure: from the outcome, the attempt and the clock.
import { parseDuration } from '../config/duration.js';
import type { Sending } from '../config/schema.js';

/**
 * When a send that met a temporary failure tries again. The wait doubles from `firstDelayMs` up to the
 * ceiling `maxDelayMs`, then stays there until `maxAgeMs` after the first failure: a relay down for an
 * hour is retried every ceiling for that hour, not given up on after a handful of quick attempts.
 */
export interface RetrySchedule {
  firstDelayMs: number;
  maxDelayMs: number;
  maxAgeMs: number;
}

export const FIRST_RETRY_DELAY_MS = 5_000;
export const DEFAULT_MAX_RETRY_DELAY = '10m';
export const DEFAULT_MAX_RETRY_AGE = '1d';

/** The funnel's schedule (`sending.maxRetryAge`, `sending.maxRetryDelay`), defaults where unset. */
export function retryScheduleOf(sending: Pick<Sending, 'maxRetryAge' | 'maxRetryDelay'> | undefined): RetrySchedule {
  return {
    firstDelayMs: FIRST_RETRY_DELAY_MS,
    maxDelayMs: parseDuration(sending?.maxRetryDelay ?? DEFAULT_MAX_RETRY_DELAY),
    maxAgeMs: parseDuration(sending?.maxRetryAge ?? DEFAULT_MAX_RETRY_AGE),
  };
}

/** The wait before retry number `retry` (1: the retry after the first failure). */
export function retryDelay(retry: number, s: RetrySchedule): number {
  return Math.min(s.maxDelayMs, s.firstDelayMs * 2 ** Math.min(Math.max(retry - 1, 0), 40));
}

/**
 * How many attempts it takes for the waits alone to add up to `maxAgeMs`, and one more: a cap for
 * failures whose age nobody measures (an error before the message reached the relay), so they too
 * are tried for as long as the schedule promises and no longer.
 */
export function attemptsSpanning(s: RetrySchedule): number {
  let waited = 0;
  let attempts = 1;
  while (waited < s.maxAgeMs) waited += retryDelay(attempts++, s);
  return attempts + 1;
}

/**
 * A temporary failure (4xx, a connection lost before DATA): try again after the schedule's wait, or
 * give up and mark it failed — only once the retry age has run out, whatever the number of attempts.
 */
export function afterTemporaryFailure(a: {
  /** This attempt, from 1. */
  attempt: number;
  /** When this message first failed temporarily (now, when this is the first time). */
  firstFailureAt: Date;
  schedule: RetrySchedule;
  now: Date;
}): { retry: true; delayMs: number } | { retry: false; why: string } {
  const age = a.now.getTime() - a.firstFailureAt.getTime();
  if (age >= a.schedule.maxAgeMs) {
    return { retry: false, why: `retry age ran out: still failing ${humanDuration(age)} after the first failure, ${a.attempt} attempt${a.attempt === 1 ? '' : 's'} (sending.maxRetryAge ${humanDuration(a.schedule.maxAgeMs)})` };
  }
  return { retry: true, delayMs: retryDelay(a.attempt, a.schedule) };
}

/** 45 s, 12 min, 3 h 5 min, 1 d 2 h: for log lines and errors a person reads. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/**
 * Whether a 5xx refusal suppresses the address. An unknown user or domain (5.1.x, or a 5xx without an
 * enhanced code) does at once; anything else — a policy block (5.7.x), a full mailbox (5.2.2) — says
 * nothing final about the person, so only the `threshold`-th such refusal of the same address does.
 */
export function bounceVerdict(
  status: string | null,
  permanent: boolean,
  earlierSoftBounces: number,
  threshold: number,
): { suppress: false; softBounces: number } | { suppress: true; why: string } {
  if (permanent) return { suppress: true, why: status ? `unknown recipient (${status})` : 'refused permanently' };
  const softBounces = earlierSoftBounces + 1;
  if (softBounces >= threshold) return { suppress: true, why: `${softBounces} soft bounces${status ? ` (last ${status})` : ''}` };
  return { suppress: false, softBounces };
}
