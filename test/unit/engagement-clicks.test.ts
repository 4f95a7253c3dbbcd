import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyClick,
  CLICK_BURST_WINDOW_SECONDS,
  CLICK_MIN_SECONDS_AFTER_SEND,
  linksInBurst,
  type ClickHit,
} from '../../src/engagement/clicks.js';

type ClickFixture = {
  name: string;
  hit: Omit<ClickHit, 'at' | 'sentAt' | 'otherClicks'> & {
    at: string;
    sentAt: string | null;
    otherClicks: { linkId: string; at: string }[];
  };
  expected: { human: boolean; reason: string };
};

const fixtures = JSON.parse(
  readFileSync(new URL('../fixtures/tracking/clicks.json', import.meta.url), 'utf8'),
) as ClickFixture[];

const toHit = (f: ClickFixture['hit']): ClickHit => ({
  ...f,
  at: new Date(f.at),
  sentAt: f.sentAt ? new Date(f.sentAt) : null,
  otherClicks: f.otherClicks.map((o) => ({ linkId: o.linkId, at: new Date(o.at) })),
});

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const sentAt = new Date('2026-01-05T09:00:00Z');
const after = (seconds: number) => new Date(sentAt.getTime() + seconds * 1000);
const click = (overrides: Partial<ClickHit> = {}): ClickHit => ({
  userAgent: CHROME,
  ip: '145.14.200.3',
  method: 'GET',
  at: after(3600),
  sentAt,
  linkId: 'l1',
  honeypot: false,
  otherClicks: [],
  linkCount: 3,
  ...overrides,
});

describe('classifyClick on recorded clicks', () => {
  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
    expect(classifyClick(toHit(fixture.hit))).toEqual(fixture.expected);
  });
});

describe('classifyClick rules', () => {
  it('a person on an ordinary browser an hour later is human', () => {
    expect(classifyClick(click())).toEqual({ human: true, reason: 'human' });
  });

  it('the honeypot wins over every other signal', () => {
    expect(classifyClick(click({ honeypot: true, userAgent: 'curl/8.5.0', method: 'HEAD' }))).toEqual({
      human: false,
      reason: 'honeypot',
    });
  });

  it('clicks sooner than the threshold after send are machine, at the threshold human', () => {
    expect(classifyClick(click({ at: after(CLICK_MIN_SECONDS_AFTER_SEND - 1) })).reason).toBe('too_soon_after_send');
    expect(classifyClick(click({ at: after(CLICK_MIN_SECONDS_AFTER_SEND) })).reason).toBe('human');
  });

  it('an ms-office UA is a scanner for clicks (Safe Links) though it is a real Outlook open for pixels', () => {
    const ua = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; Microsoft Outlook 16.0.17928; ms-office; MSOffice 16)';
    expect(classifyClick(click({ userAgent: ua })).reason).toBe('scanner_ua');
  });

  it('a burst needs most links: two of five links in a second is still human', () => {
    const twoOfFive = click({ linkId: 'l2', at: after(3600.5), otherClicks: [{ linkId: 'l1', at: after(3600) }], linkCount: 5 });
    expect(classifyClick(twoOfFive).reason).toBe('human');
    const fourOfFive = click({
      linkId: 'l4',
      at: after(3601),
      otherClicks: ['l1', 'l2', 'l3'].map((linkId) => ({ linkId, at: after(3600) })),
      linkCount: 5,
    });
    expect(classifyClick(fourOfFive).reason).toBe('link_burst');
  });

  it('repeat clicks on the same link are not a burst', () => {
    const same = click({ otherClicks: [{ linkId: 'l1', at: after(3599) }, { linkId: 'l1', at: after(3599.5) }], linkCount: 2 });
    expect(linksInBurst(same)).toBe(1);
    expect(classifyClick(same).reason).toBe('human');
  });

  it('clicks outside the burst window do not count towards it', () => {
    const spaced = click({
      linkId: 'l2',
      at: after(3600 + CLICK_BURST_WINDOW_SECONDS + 1),
      otherClicks: [{ linkId: 'l1', at: after(3600) }],
      linkCount: 2,
    });
    expect(classifyClick(spaced).reason).toBe('human');
  });

  it('automation UAs are never human whatever the timing (property)', () => {
    const automation = fc.constantFrom('curl/8.5.0', 'python-requests/2.32.3', 'Go-http-client/2.0', 'okhttp/4.12.0', 'Wget/1.21.4');
    fc.assert(
      fc.property(automation, fc.integer({ min: 0, max: 10_000_000 }), (ua, seconds) => {
        expect(classifyClick(click({ userAgent: ua, at: after(seconds) }))).toEqual({ human: false, reason: 'automation_ua' });
      }),
    );
  });
});
