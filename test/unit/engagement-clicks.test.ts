import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import agentsData from '../../src/engagement/data/agents.json' with { type: 'json' };
import { AGENT_RULES, networksOf } from '../../src/engagement/agents.js';
import { DEFAULT_CLASSIFY_OPTIONS, type OtherHit } from '../../src/engagement/classification.js';
import {
  classifyClick,
  CLICK_BURST_WINDOW_SECONDS,
  CLICK_MIN_SECONDS_AFTER_SEND,
  isLinkBurst,
  linksInBurst,
  RECHECK_WINDOW_SECONDS,
  type ClickHit,
} from '../../src/engagement/clicks.js';
import { parseIp } from '../../src/engagement/ip.js';

type JsonOther = Omit<OtherHit, 'at'> & { at: string };
type JsonClick = Omit<ClickHit, 'at' | 'sentAt' | 'otherHits'> & { at: string; sentAt: string | null; otherHits: JsonOther[] };
type ClickFixture = { name: string; note?: string; hit: JsonClick; expected: { human: boolean; reason: string; rule?: string } };

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/tracking/clicks.json', import.meta.url), 'utf8')) as ClickFixture[];

const toHit = (f: JsonClick): ClickHit => ({
  ...f,
  at: new Date(f.at),
  sentAt: f.sentAt ? new Date(f.sentAt) : null,
  otherHits: f.otherHits.map((o) => ({ ...o, at: new Date(o.at) })),
});

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1';
const NAVIGATION = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'accept-language': 'en-US,en;q=0.9',
  'sec-fetch-dest': 'document',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-site': 'cross-site',
  'sec-fetch-user': '?1',
};
const sentAt = new Date('2026-01-05T09:00:00Z');
const after = (seconds: number) => new Date(sentAt.getTime() + seconds * 1000);
const click = (overrides: Partial<ClickHit> = {}): ClickHit => ({
  userAgent: CHROME,
  ip: '145.14.200.3',
  method: 'GET',
  headers: NAVIGATION,
  at: after(3600),
  sentAt,
  linkId: 'l1',
  honeypot: false,
  otherHits: [],
  linkCount: 3,
  ...overrides,
});
const earlier = (linkId: string, seconds: number, overrides: Partial<OtherHit> = {}): OtherHit => ({
  kind: 'click',
  linkId,
  at: after(seconds),
  ip: '145.14.200.3',
  userAgent: CHROME,
  human: true,
  reason: 'human',
  ...overrides,
});

describe('classifyClick on recorded clicks', () => {
  it('has several fixtures for every class', () => {
    const count = (reason: string) => fixtures.filter((f) => f.expected.reason === reason).length;
    for (const reason of ['prefetch_header', 'link_preview', 'preview_bot', 'scanner_ua', 'scanner_ip', 'automation_ua', 'too_soon_after_send', 'link_burst', 'recheck', 'datacenter_fetch', 'provider_prefetch']) {
      expect(count(reason), reason).toBeGreaterThanOrEqual(2);
    }
    for (const reason of ['honeypot', 'head_request', 'missing_ua']) expect(count(reason), reason).toBeGreaterThanOrEqual(1);
    expect(count('human')).toBeGreaterThanOrEqual(15);
    const v6 = fixtures.filter((f) => f.hit.ip && parseIp(f.hit.ip)?.version === 6);
    expect(v6.some((f) => f.expected.human)).toBe(true);
    expect(v6.some((f) => !f.expected.human)).toBe(true);
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
    const verdict = classifyClick(toHit(fixture.hit));
    expect({ human: verdict.human, reason: verdict.reason }).toEqual({ human: fixture.expected.human, reason: fixture.expected.reason });
    if (fixture.expected.rule) expect(verdict.evidence?.rule).toBe(fixture.expected.rule);
    if (!verdict.human) expect(typeof verdict.evidence?.rule).toBe('string');
  });
});

describe('classifyClick rules', () => {
  it('a person on an ordinary browser an hour later is human', () => {
    expect(classifyClick(click())).toEqual({ human: true, reason: 'human' });
  });

  it('the honeypot wins over every other signal', () => {
    expect(classifyClick(click({ honeypot: true, userAgent: 'curl/8.5.0', method: 'HEAD' }))).toMatchObject({ human: false, reason: 'honeypot' });
  });

  it('uses the click floor from the options, exclusive, and the documented default otherwise', () => {
    expect(CLICK_MIN_SECONDS_AFTER_SEND).toBe(DEFAULT_CLASSIFY_OPTIONS.clickFloorSeconds);
    expect(classifyClick(click({ at: after(CLICK_MIN_SECONDS_AFTER_SEND - 1) })).reason).toBe('too_soon_after_send');
    expect(classifyClick(click({ at: after(CLICK_MIN_SECONDS_AFTER_SEND) })).reason).toBe('human');
    expect(classifyClick(click({ at: after(45) }), { clickFloorSeconds: 60 }).reason).toBe('too_soon_after_send');
    expect(classifyClick(click({ at: after(8) }), { clickFloorSeconds: 5 }).reason).toBe('human');
  });

  it('an ms-office UA is a scanner for clicks (Safe Links) though it is a real Outlook open for pixels', () => {
    const ua = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; Microsoft Outlook 16.0.17928; ms-office; MSOffice 16)';
    expect(classifyClick(click({ userAgent: ua })).reason).toBe('scanner_ua');
  });

  describe('announced prefetch', () => {
    it.each([
      [{ 'sec-purpose': 'prefetch' }],
      [{ 'sec-purpose': 'prefetch;prerender' }],
      [{ 'sec-purpose': 'prefetch;anonymous-client-ip' }],
      [{ purpose: 'prefetch' }],
      [{ 'x-purpose': 'preview' }],
      [{ 'x-moz': 'prefetch' }],
      [{ 'X-Moz': 'prefetch' }],
    ])('%o is machine whatever the browser and address', (extra) => {
      const verdict = classifyClick(click({ headers: { ...NAVIGATION, ...extra } }));
      expect(verdict).toMatchObject({ human: false, reason: 'prefetch_header', evidence: { rule: 'Announced prefetch' } });
    });

    it('a browser fetch that is not a navigation is not a click; Node\'s lone Sec-Fetch-Mode proves nothing', () => {
      const scripted = { ...NAVIGATION, 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' };
      expect(classifyClick(click({ headers: scripted })).reason).toBe('prefetch_header');
      expect(classifyClick(click({ headers: { accept: '*/*', 'accept-language': '*', 'sec-fetch-mode': 'cors' } })).reason).toBe('human');
    });
  });

  describe('link previews', () => {
    const OWA = 'Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; WOW64; Trident/6.0)';
    it('a legacy IE agent from Microsoft\'s service network is Outlook\'s link preview, even hours later', () => {
      expect(classifyClick(click({ userAgent: OWA, ip: '132.245.26.156', headers: {}, at: after(6 * 3600) }))).toMatchObject({
        human: false,
        reason: 'link_preview',
        evidence: { rule: 'Outlook.com / Microsoft 365 link preview' },
      });
    });

    it('the same agent from a home address is a person on an old browser', () => {
      expect(classifyClick(click({ userAgent: OWA, ip: '86.24.113.9', headers: { 'accept-language': 'en-GB' } })).human).toBe(true);
    });
  });

  describe('bursts', () => {
    it('a burst needs most links: two of five links in a second is still human', () => {
      const twoOfFive = click({ linkId: 'l2', at: after(3600.5), otherHits: [earlier('l1', 3600)], linkCount: 5 });
      expect(classifyClick(twoOfFive).reason).toBe('human');
      const fourOfFive = click({ linkId: 'l4', at: after(3601), otherHits: ['l1', 'l2', 'l3'].map((l) => earlier(l, 3600)), linkCount: 5 });
      expect(classifyClick(fourOfFive)).toMatchObject({ reason: 'link_burst', evidence: { links: 4, linkCount: 5 } });
    });

    it('repeat clicks on the same link are not a burst', () => {
      const same = click({ otherHits: [earlier('l1', 3599), earlier('l1', 3599.5)], linkCount: 2 });
      expect(linksInBurst(same)).toBe(1);
      expect(classifyClick(same).reason).toBe('human');
    });

    it('clicks outside the burst window do not count towards it, and opens never do', () => {
      const spaced = click({ linkId: 'l2', at: after(3600 + CLICK_BURST_WINDOW_SECONDS + 1), otherHits: [earlier('l1', 3600)], linkCount: 2 });
      expect(classifyClick(spaced).reason).toBe('human');
      const withOpen = click({ linkId: 'l2', at: after(3601), otherHits: [{ ...earlier('l1', 3600), kind: 'open', linkId: null }], linkCount: 2 });
      expect(linksInBurst(withOpen)).toBe(1);
    });

    it('a link preview or a prefetch beside the person\'s click is no part of a burst', () => {
      const preview = earlier('l1', 3599, { ip: '52.167.144.233', human: false, reason: 'link_preview' });
      const prefetched = earlier('l3', 3599.5, { human: false, reason: 'prefetch_header' });
      expect(classifyClick(click({ linkId: 'l2', otherHits: [preview, prefetched], linkCount: 3 })).reason).toBe('human');
      expect(classifyClick(click({ linkId: 'l2', otherHits: [preview], linkCount: 2 })).reason).toBe('human');
    });

    it('for any order and spacing within the window, the click completing a walk is a burst (property)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 2, max: 12 }).chain((n) =>
            fc.tuple(fc.constant(n), fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }), fc.array(fc.double({ min: 0, max: CLICK_BURST_WINDOW_SECONDS, noNaN: true }), { minLength: n, maxLength: n })),
          ),
          ([n, order, offsets]) => {
            const times = offsets.map((o) => Math.min(o, CLICK_BURST_WINDOW_SECONDS)).sort((a, b) => a - b);
            const hits = order.map((link, i) => ({ linkId: `l${link}`, seconds: 3600 + times[i]! }));
            const last = hits[hits.length - 1]!;
            const others = hits.slice(0, -1).map((h) => earlier(h.linkId, h.seconds, { ip: '3.120.44.18' }));
            expect(isLinkBurst({ linkId: last.linkId, at: after(last.seconds), otherHits: others, linkCount: n })).toBe(true);
          },
        ),
      );
    });
  });

  describe('re-checks', () => {
    const person = earlier('l1', 3600, { ip: '84.30.11.2', userAgent: SAFARI });

    it('a click right after a person\'s on the same link, from another network and browser, is the gateway', () => {
      const verdict = classifyClick(click({ ip: '20.83.40.20', at: after(3603), otherHits: [person] }));
      expect(verdict).toMatchObject({ human: false, reason: 'recheck', evidence: { personIp: '84.30.11.2', secondsAfter: 3 } });
    });

    it('the same person clicking again keeps their address or their browser', () => {
      expect(classifyClick(click({ ip: '84.30.11.2', at: after(3605), otherHits: [person] })).human).toBe(true);
      expect(classifyClick(click({ userAgent: SAFARI, ip: '2607:fb90::1', at: after(3605), otherHits: [person] })).human).toBe(true);
    });

    it('only the same link, only after a human click, only within the window', () => {
      expect(classifyClick(click({ linkId: 'l2', ip: '20.83.40.20', at: after(3603), otherHits: [person] })).human).toBe(true);
      expect(classifyClick(click({ ip: '20.83.40.20', at: after(3603), otherHits: [{ ...person, human: false, reason: 'scanner_ip' }] })).human).toBe(true);
      expect(classifyClick(click({ ip: '20.83.40.20', at: after(3600 + RECHECK_WINDOW_SECONDS + 1), otherHits: [person] })).human).toBe(true);
      expect(classifyClick(click({ ip: '20.83.40.20', at: after(3599), otherHits: [person] })).human).toBe(true);
    });
  });

  describe('public clouds', () => {
    it('a browser with a browser\'s headers from a cloud is a person; without them a fetcher', () => {
      expect(classifyClick(click({ ip: '54.160.12.9' })).human).toBe(true);
      expect(classifyClick(click({ ip: '54.160.12.9', headers: { accept: '*/*' } })).reason).toBe('datacenter_fetch');
      expect(classifyClick(click({ ip: '54.160.12.9', headers: {} }), { headersKnown: false }).reason).toBe('human');
    });
  });

  it('automation UAs are never human whatever the timing (property)', () => {
    const automation = fc.constantFrom('curl/8.5.0', 'python-requests/2.32.3', 'Go-http-client/2.0', 'okhttp/4.12.0', 'Wget/1.21.4');
    fc.assert(
      fc.property(automation, fc.integer({ min: 0, max: 10_000_000 }), (ua, seconds) => {
        expect(classifyClick(click({ userAgent: ua, at: after(seconds) }))).toMatchObject({ human: false, reason: 'automation_ua' });
      }),
    );
  });
});

const PEOPLE_AGENTS = [
  CHROME,
  SAFARI,
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15',
  'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko',
];

describe('walks longer than the burst window', () => {
  it('a scanner taking a second or two a link over ten links is one walk, though it lasts longer than the window', () => {
    const others = Array.from({ length: 9 }, (_, i) => earlier(`l${i}`, 3600 + i * 1.5));
    const last = click({ linkId: 'l9', at: after(3600 + 9 * 1.5), otherHits: others, linkCount: 10 });
    expect(linksInBurst(last)).toBe(10);
    expect(classifyClick(last)).toMatchObject({ human: false, reason: 'link_burst' });
  });

  it('a pause longer than the window ends a walk: a person reading between clicks is no burst', () => {
    const others = [earlier('l0', 3600), earlier('l1', 3600 + 2), earlier('l2', 3600 + 30)];
    const next = click({ linkId: 'l3', at: after(3600 + 60), otherHits: others, linkCount: 4 });
    expect(linksInBurst(next)).toBe(1);
    expect(classifyClick(next)).toEqual({ human: true, reason: 'human' });
  });
});

describe('people stay people (properties)', () => {
  it('an ordinary browser from an address on no vendor list, an hour or more after send, is human', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PEOPLE_AGENTS),
        fc.oneof(fc.ipV4(), fc.ipV6()).filter((ip) => networksOf(ip).length === 0),
        fc.integer({ min: 3600, max: 30 * 86400 }),
        fc.constantFrom<Record<string, string>>(NAVIGATION, { accept: 'text/html', 'accept-language': 'fr' }, {}),
        (userAgent, ip, seconds, headers) => {
          expect(classifyClick(click({ userAgent, ip, headers, at: after(seconds) }))).toEqual({ human: true, reason: 'human' });
        },
      ),
    );
  });

  it('one person clicking any of the links, again and again, minutes apart, from one address, stays human', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('l1', 'l2', 'l3', 'l4', 'l5'), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 8 }), (clicks) => {
        let t = 3600;
        const seen: OtherHit[] = [];
        for (const [linkId, gap] of clicks) {
          t += 60 + gap;
          const verdict = classifyClick(click({ linkId, at: after(t), otherHits: [...seen], linkCount: 5 }));
          expect(verdict.human).toBe(true);
          seen.push(earlier(linkId, t));
        }
      }),
    );
  });
});

describe('re-checks never catch the person clicking again (property)', () => {
  it('a second click on the same link from the same address or the same browser is human', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PEOPLE_AGENTS),
        fc.constantFrom(...PEOPLE_AGENTS),
        fc.oneof(fc.ipV4(), fc.ipV6()).filter((ip) => networksOf(ip).length === 0),
        fc.oneof(fc.ipV4(), fc.ipV6()).filter((ip) => networksOf(ip).length === 0),
        fc.boolean(),
        fc.double({ min: 0, max: RECHECK_WINDOW_SECONDS, noNaN: true }),
        (firstAgent, otherAgent, firstIp, otherIp, keepAddress, gap) => {
          const first = earlier('l1', 3600, { ip: firstIp, userAgent: firstAgent });
          const again = keepAddress ? { ip: firstIp, userAgent: otherAgent } : { ip: otherIp, userAgent: firstAgent };
          expect(classifyClick(click({ ...again, at: after(3600 + gap), otherHits: [first] })).human).toBe(true);
        },
      ),
    );
  });
});

describe('agent data', () => {
  it('every example in agents.json is matched by its own pattern', () => {
    for (const entry of agentsData.agents as { name: string; examples?: string[] }[]) {
      const rule = AGENT_RULES.find((r) => r.name === entry.name)!;
      for (const example of entry.examples ?? []) expect(rule.ua.test(example), `${entry.name}: ${example}`).toBe(true);
    }
  });
});
