// What to do after a relay refuses or drops a send. Pure: from the outcome, the attempt and the clock.

/** A temporary failure (4xx, a connection lost before DATA): try again, or give up and mark it failed. */
export function afterTemporaryFailure(a: {
  /** This attempt, from 1. */
  attempt: number;
  maxAttempts: number;
  /** When this message first failed temporarily (now, when this is the first time). */
  firstFailureAt: Date;
  maxAgeMs: number;
  now: Date;
}): { retry: true } | { retry: false; why: string } {
  if (a.attempt >= a.maxAttempts) return { retry: false, why: `gave up after ${a.attempt} attempt${a.attempt === 1 ? '' : 's'}` };
  const age = a.now.getTime() - a.firstFailureAt.getTime();
  if (age >= a.maxAgeMs) return { retry: false, why: `gave up: still failing ${Math.round(age / 60_000)} min after the first failure` };
  return { retry: true };
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
