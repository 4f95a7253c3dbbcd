// `nurture logs -f` keeps its place by activity id: ids committed out of order, and errors worth waiting out.
import { describe, expect, it } from 'vitest';
import { advanceCursor, GAP_GRACE_MS, isTransientDatabaseError } from '../../src/cli/logs.js';

describe('the follow cursor', () => {
  it('moves past new ids and keeps the ids skipped open', () => {
    const c = advanceCursor({ high: 10, gaps: [] }, [11, 12, 15, 17], 1000);
    expect(c).toEqual({ high: 17, gaps: [{ from: 13, to: 14, since: 1000 }, { from: 16, to: 16, since: 1000 }] });
  });

  it('closes a gap as its ids commit late, splitting a range around one', () => {
    const c = advanceCursor({ high: 20, gaps: [{ from: 13, to: 17, since: 0 }] }, [15, 21], 10);
    expect(c).toEqual({ high: 21, gaps: [{ from: 13, to: 14, since: 0 }, { from: 16, to: 17, since: 0 }] });
    expect(advanceCursor(c, [13, 14, 16, 17], 20)).toEqual({ high: 21, gaps: [] });
  });

  it('gives up on a gap after the grace period (a rolled-back transaction never fills it)', () => {
    const c = advanceCursor({ high: 1, gaps: [] }, [3], 0);
    expect(advanceCursor(c, [], GAP_GRACE_MS - 1).gaps).toHaveLength(1);
    expect(advanceCursor(c, [], GAP_GRACE_MS).gaps).toEqual([]);
  });
});

describe('errors worth waiting out', () => {
  const pg = (code: string) => Object.assign(new Error('x'), { code });
  it('waits out lost connections and a server shutting down or starting', () => {
    for (const code of ['ECONNREFUSED', 'CONNECTION_CLOSED', 'CONNECT_TIMEOUT', '57P01', '57P03', '08006']) expect(isTransientDatabaseError(pg(code))).toBe(true);
    // drizzle wraps the driver's error as its cause.
    expect(isTransientDatabaseError(Object.assign(new Error('Failed query'), { cause: pg('57P01') }))).toBe(true);
  });
  it('fails on a real error', () => {
    expect(isTransientDatabaseError(pg('42P01'))).toBe(false);
    expect(isTransientDatabaseError(new Error('no code'))).toBe(false);
  });
});
