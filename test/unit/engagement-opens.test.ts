import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipInCidr } from '../../src/engagement/ip.js';
import { classifyOpen, OPEN_MIN_SECONDS_AFTER_SEND, type PixelHit } from '../../src/engagement/opens.js';

type OpenFixture = {
  name: string;
  hit: { userAgent: string | null; ip: string | null; method: string; at: string; sentAt: string | null };
  expected: { human: boolean; reason: string };
};

const fixtures = JSON.parse(
  readFileSync(new URL('../fixtures/tracking/opens.json', import.meta.url), 'utf8'),
) as OpenFixture[];

const toHit = (f: OpenFixture['hit']): PixelHit => ({
  ...f,
  at: new Date(f.at),
  sentAt: f.sentAt ? new Date(f.sentAt) : null,
});

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const sentAt = new Date('2026-01-05T09:00:00Z');
const after = (seconds: number) => new Date(sentAt.getTime() + seconds * 1000);

describe('classifyOpen on recorded pixel hits', () => {
  it('has a fixture for every machine and proxy reason', () => {
    const reasons = new Set(fixtures.map((f) => f.expected.reason));
    for (const reason of ['apple_mpp', 'google_image_proxy', 'yahoo_image_proxy', 'scanner_ip', 'automation_ua', 'too_soon_after_send', 'human']) {
      expect(reasons).toContain(reason);
    }
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
    expect(classifyOpen(toHit(fixture.hit))).toEqual(fixture.expected);
  });
});

describe('classifyOpen rules', () => {
  it('counts a Gmail proxy fetch as a human open, because the proxy fetches when the message is opened', () => {
    const ua = 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)';
    expect(classifyOpen({ userAgent: ua, ip: '66.249.84.1', method: 'GET', at: after(600), sentAt })).toEqual({
      human: true,
      reason: 'google_image_proxy',
    });
  });

  it('treats the threshold as exclusive: a fetch exactly at the threshold is human', () => {
    const hit = (s: number): PixelHit => ({ userAgent: CHROME, ip: '145.14.200.3', method: 'GET', at: after(s), sentAt });
    expect(classifyOpen(hit(OPEN_MIN_SECONDS_AFTER_SEND - 0.5)).reason).toBe('too_soon_after_send');
    expect(classifyOpen(hit(OPEN_MIN_SECONDS_AFTER_SEND)).reason).toBe('human');
  });

  it('skips the timing rule when the send time is unknown', () => {
    expect(classifyOpen({ userAgent: CHROME, ip: '145.14.200.3', method: 'GET', at: sentAt, sentAt: null })).toEqual({
      human: true,
      reason: 'human',
    });
  });

  it('accepts a custom threshold', () => {
    const hit: PixelHit = { userAgent: CHROME, ip: '145.14.200.3', method: 'GET', at: after(20), sentAt };
    expect(classifyOpen(hit, 30).reason).toBe('too_soon_after_send');
  });

  it('recognises IPv4-mapped IPv6 client addresses in Apple and gateway ranges', () => {
    expect(classifyOpen({ userAgent: null, ip: '::ffff:17.58.1.2', method: 'GET', at: after(60), sentAt }).reason).toBe('apple_mpp');
    expect(classifyOpen({ userAgent: CHROME, ip: '::ffff:209.222.82.1', method: 'GET', at: after(60), sentAt }).reason).toBe('scanner_ip');
  });

  it('keeps a real client UA from an Apple address human (someone on Apple\'s own network)', () => {
    const ua = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)';
    expect(classifyOpen({ userAgent: ua, ip: '17.1.2.3', method: 'GET', at: after(600), sentAt }).human).toBe(true);
  });

  it('never calls a HEAD request or a bare "Mozilla/5.0" human (property)', () => {
    fc.assert(
      fc.property(fc.option(fc.string(), { nil: null }), fc.ipV4(), fc.integer({ min: 0, max: 10_000_000 }), (ua, ip, seconds) => {
        expect(classifyOpen({ userAgent: ua, ip, method: 'HEAD', at: after(seconds), sentAt }).human).toBe(false);
        expect(classifyOpen({ userAgent: 'Mozilla/5.0', ip, method: 'GET', at: after(seconds), sentAt })).toEqual({
          human: false,
          reason: 'apple_mpp',
        });
      }),
    );
  });
});

describe('ipInCidr', () => {
  it.each([
    ['17.58.103.12', '17.0.0.0/8', true],
    ['18.0.0.1', '17.0.0.0/8', false],
    ['209.222.87.255', '209.222.80.0/21', true],
    ['209.222.88.0', '209.222.80.0/21', false],
    ['2620:149:a:1::5', '2620:149::/32', true],
    ['2620:14a::1', '2620:149::/32', false],
    ['not-an-ip', '17.0.0.0/8', false],
    ['17.0.0.1', '2620:149::/32', false],
  ])('%s in %s → %s', (ip, cidr, inside) => {
    expect(ipInCidr(ip, cidr)).toBe(inside);
  });
});
