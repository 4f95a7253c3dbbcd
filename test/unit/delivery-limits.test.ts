// Sending limits and warm-up as pure decisions: which counters a send counts against, and whether it
// may go or until when it waits — from the configuration, the counts and the clock alone.
import { describe, expect, it } from 'vitest';
import { FunnelSchema, SendingSchema } from '../../src/config/schema.js';
import { decideLimits, limitCounters, warmupDailyLimit, type LimitCounter } from '../../src/delivery/limits.js';

const sending = (s: unknown) => SendingSchema.parse(s);
const at = (iso: string) => new Date(iso);

describe('limit counters', () => {
  const cfg = sending({
    limits: [{ perSecond: 20 }, { domain: 'handrail.example', perMinute: 100, perDay: 2000 }, { domain: 'other.example', perSecond: 1 }],
  });

  it('counts a send against the relay and its own domain (and parent domain), never another domain', () => {
    const now = at('2026-11-03T10:15:30.250Z');
    const c = limitCounters(cfg, 'handrail.example', now);
    expect(c.map((x) => [x.scope, x.window, x.max])).toEqual([
      ['relay', 'second', 20],
      ['domain:handrail.example', 'minute', 100],
      ['domain:handrail.example', 'day', 2000],
    ]);
    expect(limitCounters(cfg, 'mail.handrail.example', now).map((x) => x.scope)).toContain('domain:handrail.example');
    expect(limitCounters(cfg, 'nothandrail.example', now).map((x) => x.scope)).toEqual(['relay']);
  });

  it('names each window by its start, and says when it ends', () => {
    const c = limitCounters(cfg, 'handrail.example', at('2026-11-03T10:15:30.250Z'));
    expect(c[0]!.endsAt).toBe(Date.parse('2026-11-03T10:15:31Z'));
    expect(c[1]!.endsAt).toBe(Date.parse('2026-11-03T10:16:00Z'));
    expect(c[2]!.endsAt).toBe(Date.parse('2026-11-04T00:00:00Z'));
    // The same window keeps its key; the next one gets a new key.
    const later = limitCounters(cfg, 'handrail.example', at('2026-11-03T10:15:30.999Z'));
    expect(later.map((x) => x.key)).toEqual(c.map((x) => x.key));
    const next = limitCounters(cfg, 'handrail.example', at('2026-11-03T10:15:31.000Z'));
    expect(next[0]!.key).not.toBe(c[0]!.key);
    expect(next[1]!.key).toBe(c[1]!.key);
  });

  it('has nothing to count without a sending block or limits', () => {
    expect(limitCounters(undefined, 'handrail.example', new Date())).toEqual([]);
    expect(limitCounters(sending({}), 'handrail.example', new Date())).toEqual([]);
  });
});

describe('warm-up', () => {
  const growth = { domain: 'handrail.example', start: '2026-11-01', dailyStart: 50, dailyGrowth: 1.5, max: 400 };

  it('starts at dailyStart and multiplies each UTC day, up to max', () => {
    const w = sending({ warmup: growth }).warmup as typeof growth;
    expect(warmupDailyLimit(w, at('2026-10-20T12:00:00Z'))).toBe(50); // before the start: the first day's ceiling
    expect(warmupDailyLimit(w, at('2026-11-01T00:00:00Z'))).toBe(50);
    expect(warmupDailyLimit(w, at('2026-11-01T23:59:59Z'))).toBe(50);
    expect(warmupDailyLimit(w, at('2026-11-02T00:00:00Z'))).toBe(75);
    expect(warmupDailyLimit(w, at('2026-11-03T08:00:00Z'))).toBe(112);
    expect(warmupDailyLimit(w, at('2026-11-06T08:00:00Z'))).toBe(379);
    expect(warmupDailyLimit(w, at('2026-11-07T08:00:00Z'))).toBe(400);
    expect(warmupDailyLimit(w, at('2027-03-01T08:00:00Z'))).toBe(400);
  });

  it('or adds a fixed increase each day', () => {
    const w = { domain: 'handrail.example', start: '2026-11-01', dailyStart: 50, dailyIncrease: 25 };
    expect(warmupDailyLimit(w, at('2026-11-01T10:00:00Z'))).toBe(50);
    expect(warmupDailyLimit(w, at('2026-11-11T10:00:00Z'))).toBe(300);
  });

  it('is a daily counter of its own for the domain, labelled with the day', () => {
    const c = limitCounters(sending({ limits: [{ domain: 'handrail.example', perDay: 1000 }], warmup: [growth] }), 'handrail.example', at('2026-11-02T09:00:00Z'));
    expect(c).toHaveLength(2);
    expect(c[1]).toMatchObject({ window: 'day', max: 75, label: 'handrail.example warm-up day 2: 75/day' });
    expect(c[1]!.key).not.toBe(c[0]!.key);
    expect(limitCounters(sending({ warmup: growth }), 'other.example', at('2026-11-02T09:00:00Z'))).toEqual([]);
  });

  it('is refused without exactly one way to grow, and the funnel accepts a complete sending block', () => {
    expect(SendingSchema.safeParse({ warmup: { domain: 'handrail.example', start: '2026-11-01', dailyStart: 50 } }).success).toBe(false);
    expect(SendingSchema.safeParse({ warmup: { ...growth, dailyIncrease: 10 } }).success).toBe(false);
    expect(SendingSchema.safeParse({ warmup: { ...growth, start: '2026-13-01' } }).success).toBe(false);
    expect(SendingSchema.safeParse({ limits: [{ domain: 'handrail.example' }] }).success).toBe(false);
    const funnel = FunnelSchema.parse({
      stages: ['a', 'b'],
      personas: { p: { label: 'P' } },
      senders: { brand: { name: 'B', email: 'b@handrail.example' } },
      sending: { limits: [{ perSecond: 5 }], warmup: growth, dkim: [{ domain: 'handrail.example', selector: 's1', privateKey: 'env:K' }] },
    });
    expect(funnel.sending).toMatchObject({ suppressAfterSoftBounces: 3, maxRetryAge: '1d', limits: [{ perSecond: 5 }] });
  });
});

describe('deciding a send', () => {
  const now = at('2026-11-03T10:15:30.250Z');
  const counters: LimitCounter[] = limitCounters(sending({ limits: [{ perSecond: 5 }, { domain: 'handrail.example', perMinute: 100 }] }), 'handrail.example', now);

  it('lets a send go while every counter has room', () => {
    expect(decideLimits(counters, [4, 99], now)).toEqual({ allowed: true });
    expect(decideLimits([], [], now)).toEqual({ allowed: true });
  });

  it('defers a send to the end of the full window, saying which limit', () => {
    const v = decideLimits(counters, [5, 10], now);
    expect(v).toEqual({ allowed: false, until: at('2026-11-03T10:15:31.000Z'), why: 'rate limit relay 5/s' });
  });

  it('waits for the latest of several full windows', () => {
    const v = decideLimits(counters, [7, 100], now);
    expect(v.allowed).toBe(false);
    if (!v.allowed) {
      expect(v.until).toEqual(at('2026-11-03T10:16:00.000Z'));
      expect(v.why).toBe('rate limit relay 5/s, handrail.example 100/min');
    }
  });

  it('lets exactly max sends through a window, whatever order they come in', () => {
    let count = 0;
    const outcomes = Array.from({ length: 12 }, () => {
      const v = decideLimits(counters.slice(0, 1), [count], now);
      if (v.allowed) count++;
      return v.allowed;
    });
    expect(outcomes.filter(Boolean)).toHaveLength(5);
    expect(outcomes.slice(0, 5).every(Boolean)).toBe(true);
  });
});
