import { describe, expect, it } from 'vitest';
import { queueErrorLine } from '../../src/queue/index.js';

describe('what a worker says about an error', () => {
  it('says plainly that a job Redis lost is expected, without the word an error scan looks for', () => {
    for (const message of ['Missing lock for job step-1-0. moveToDelayed', 'Lock mismatch for job step-1-0. Cmd moveToFinished from active', 'Missing key for job send-2. moveToFinished']) {
      const line = queueErrorLine('worker step', new Error(message));
      expect(line).toContain('reconcile adds it again');
      expect(line).not.toMatch(/Error:/);
    }
  });

  it('says a dropped Redis connection is being re-established', () => {
    const err = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(queueErrorLine('queue send', err)).toBe('[queue send] Redis connection: read ECONNRESET; reconnecting');
  });

  it('prints anything else as the error it is, with its stack', () => {
    const line = queueErrorLine('worker send', new TypeError('cannot read properties of undefined'));
    expect(line).toMatch(/^\[worker send\] TypeError: cannot read properties of undefined\n\s+at /);
  });
});
