import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGENT_RULES, NETWORKS, networksOf } from '../../src/engagement/agents.js';
import { DEFAULT_CLASSIFY_OPTIONS, type OtherHit } from '../../src/engagement/classification.js';
import { ipInCidr, parseIp } from '../../src/engagement/ip.js';
import { classifyOpen, GATEWAY_RENDER_WINDOW_SECONDS, OPEN_MIN_SECONDS_AFTER_SEND, type PixelHit } from '../../src/engagement/opens.js';

type Json<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] extends OtherHit[] ? Json<OtherHit>[] : T[K] };
type OpenFixture = { name: string; note?: string; hit: Json<PixelHit>; expected: { human: boolean; reason: string; rule?: string } };

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/tracking/opens.json', import.meta.url), 'utf8')) as OpenFixture[];

const toHit = (f: Json<PixelHit>): PixelHit => ({
  ...f,
  at: new Date(f.at),
  sentAt: f.sentAt ? new Date(f.sentAt) : null,
  otherHits: f.otherHits.map((o) => ({ ...o, at: new Date(o.at) })),
});

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const IMAGE_HEADERS = { accept: 'image/avif,image/webp,*/*;q=0.8', 'accept-language': 'en-US,en;q=0.9', 'sec-fetch-dest': 'image', 'sec-fetch-mode': 'no-cors', 'sec-fetch-site': 'cross-site' };
const sentAt = new Date('2026-01-05T09:00:00Z');
const after = (seconds: number) => new Date(sentAt.getTime() + seconds * 1000);
const pixel = (overrides: Partial<PixelHit> = {}): PixelHit => ({
  userAgent: CHROME,
  ip: '145.14.200.3',
  method: 'GET',
  headers: IMAGE_HEADERS,
  at: after(3600),
  sentAt,
  otherHits: [],
  linkCount: 3,
  ...overrides,
});
const click = (linkId: string, seconds: number, ip: string, human = true, reason = 'human'): OtherHit => ({
  kind: 'click',
  linkId,
  at: after(seconds),
  ip,
  userAgent: CHROME,
  human,
  reason,
});

describe('classifyOpen on recorded pixel hits', () => {
  it('has several fixtures for every class', () => {
    const count = (reason: string) => fixtures.filter((f) => f.expected.reason === reason).length;
    for (const reason of ['apple_mpp', 'provider_prefetch', 'scanner_ip', 'automation_ua', 'too_soon_after_send', 'gateway_render', 'datacenter_fetch']) {
      expect(count(reason), reason).toBeGreaterThanOrEqual(3);
    }
    for (const reason of ['google_image_proxy', 'yahoo_image_proxy', 'scanner_ua', 'prefetch_header', 'head_request', 'missing_ua', 'preview_bot']) {
      expect(count(reason), reason).toBeGreaterThanOrEqual(1);
    }
    expect(count('human')).toBeGreaterThanOrEqual(15);
    // IPv6 as well as IPv4, among people and machines.
    const v6 = fixtures.filter((f) => f.hit.ip && parseIp(f.hit.ip)?.version === 6);
    expect(v6.some((f) => f.expected.human)).toBe(true);
    expect(v6.some((f) => !f.expected.human)).toBe(true);
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
    const verdict = classifyOpen(toHit(fixture.hit));
    expect({ human: verdict.human, reason: verdict.reason }).toEqual({ human: fixture.expected.human, reason: fixture.expected.reason });
    if (fixture.expected.rule) expect(verdict.evidence?.rule).toBe(fixture.expected.rule);
    // Every machine verdict names the rule that decided it.
    if (!verdict.human) expect(typeof verdict.evidence?.rule).toBe('string');
  });
});

describe('classifyOpen rules', () => {
  it('counts a Gmail proxy fetch as a human open, because the proxy fetches when the message is opened', () => {
    const ua = 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)';
    const verdict = classifyOpen(pixel({ userAgent: ua, ip: '66.249.84.1', headers: {}, at: after(600) }));
    expect(verdict).toMatchObject({ human: true, reason: 'google_image_proxy', evidence: { rule: 'Gmail image proxy' } });
  });

  it('tells Gmail\'s prefetch at delivery from its proxy on an open', () => {
    const prefetch = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0';
    const verdict = classifyOpen(pixel({ userAgent: prefetch, ip: '66.249.84.30', headers: {}, at: after(20) }));
    expect(verdict).toMatchObject({ human: false, reason: 'provider_prefetch', evidence: { rule: 'Gmail prefetch' } });
    expect(String(verdict.evidence?.source)).toMatch(/Bird|SparkPost/);
  });

  it('uses the open floor from the options, exclusive, and the documented default otherwise', () => {
    expect(OPEN_MIN_SECONDS_AFTER_SEND).toBe(DEFAULT_CLASSIFY_OPTIONS.openFloorSeconds);
    expect(classifyOpen(pixel({ at: after(OPEN_MIN_SECONDS_AFTER_SEND - 0.5) })).reason).toBe('too_soon_after_send');
    expect(classifyOpen(pixel({ at: after(OPEN_MIN_SECONDS_AFTER_SEND) })).reason).toBe('human');
    expect(classifyOpen(pixel({ at: after(20) }), { openFloorSeconds: 30 })).toMatchObject({
      reason: 'too_soon_after_send',
      evidence: { floorSeconds: 30, secondsAfterSend: 20 },
    });
    expect(classifyOpen(pixel({ at: after(20) }), { openFloorSeconds: 10 }).reason).toBe('human');
  });

  it('skips the timing rule when the send time is unknown', () => {
    expect(classifyOpen(pixel({ at: sentAt, sentAt: null }))).toEqual({ human: true, reason: 'human' });
  });

  it('recognises IPv4-mapped IPv6 client addresses in Apple and gateway ranges', () => {
    expect(classifyOpen(pixel({ userAgent: null, ip: '::ffff:17.58.1.2' })).reason).toBe('apple_mpp');
    expect(classifyOpen(pixel({ ip: '::ffff:209.222.82.1' })).reason).toBe('scanner_ip');
  });

  it('keeps a real client UA from an Apple address human (someone on Apple\'s own network)', () => {
    const ua = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)';
    expect(classifyOpen(pixel({ userAgent: ua, ip: '17.1.2.3' })).human).toBe(true);
  });

  it('puts the vendor network, its source and date in the evidence of a range match', () => {
    const verdict = classifyOpen(pixel({ ip: '148.163.150.22', at: after(60) }));
    expect(verdict.evidence).toMatchObject({ rule: 'Gateway network', network: expect.stringContaining('Proofpoint'), cidr: '148.163.128.0/19' });
    expect(verdict.evidence?.retrieved).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  describe('a gateway rendering the message', () => {
    it('judges the pixel with the links walked in the same moment, before or after it', () => {
      const walk = ['l1', 'l2', 'l3'].map((l, i) => click(l, 3600 + i, '3.120.44.18'));
      expect(classifyOpen(pixel({ at: after(3599) , otherHits: walk })).reason).toBe('gateway_render');
      expect(classifyOpen(pixel({ at: after(3603), otherHits: walk })).reason).toBe('gateway_render');
    });

    it('leaves the pixel alone when the walk is outside the window', () => {
      const walk = ['l1', 'l2', 'l3'].map((l, i) => click(l, 3600 + i, '3.120.44.18'));
      expect(classifyOpen(pixel({ at: after(3600 - GATEWAY_RENDER_WINDOW_SECONDS - 1), otherHits: walk })).reason).toBe('human');
    });

    it('a person\'s own click, or one link preview elsewhere, does not make the open a machine', () => {
      expect(classifyOpen(pixel({ otherHits: [click('l1', 3604, '145.14.200.3')] })).reason).toBe('human');
      expect(classifyOpen(pixel({ otherHits: [click('l1', 3601, '132.245.26.156', false, 'link_preview')] })).reason).toBe('human');
    });

    it('a person opening and clicking both links of a short message, seconds apart, is no walk', () => {
      const clicks = [click('l1', 3603, '145.14.200.3'), click('l2', 3609.5, '145.14.200.3')];
      expect(classifyOpen(pixel({ otherHits: clicks, linkCount: 2 })).reason).toBe('human');
      const walk = [click('l1', 3603, '3.120.44.18'), click('l2', 3604, '3.120.44.18')];
      expect(classifyOpen(pixel({ otherHits: walk, linkCount: 2 })).reason).toBe('gateway_render');
    });

    it('one machine click of a gateway in the same moment is enough', () => {
      const verdict = classifyOpen(pixel({ otherHits: [click('l2', 3602, '209.222.82.140', false, 'scanner_ip')] }));
      expect(verdict).toMatchObject({ human: false, reason: 'gateway_render', evidence: { rule: 'Pixel with a machine click', clickReason: 'scanner_ip' } });
    });

    it('ignores other opens', () => {
      const otherOpen: OtherHit = { kind: 'open', linkId: null, at: after(3600), ip: '3.120.44.18', userAgent: CHROME, human: false, reason: 'datacenter_fetch' };
      expect(classifyOpen(pixel({ otherHits: [otherOpen] })).reason).toBe('human');
    });
  });

  describe('public clouds', () => {
    it('a cloud address alone never makes a browser with a browser\'s headers a machine', () => {
      expect(classifyOpen(pixel({ ip: '54.160.12.9' })).human).toBe(true);
    });

    it('with no browser headers it is a fetcher, unless the headers were never known', () => {
      expect(classifyOpen(pixel({ ip: '54.160.12.9', headers: {} })).reason).toBe('datacenter_fetch');
      expect(classifyOpen(pixel({ ip: '54.160.12.9', headers: {} }), { headersKnown: false }).reason).toBe('human');
    });
  });

  it('reads request headers whatever their case', () => {
    expect(classifyOpen(pixel({ headers: { 'Sec-Purpose': 'prefetch' } })).reason).toBe('prefetch_header');
  });

  it('never calls a HEAD request or a bare "Mozilla/5.0" human (property)', () => {
    fc.assert(
      fc.property(fc.option(fc.string(), { nil: null }), fc.ipV4(), fc.integer({ min: 0, max: 10_000_000 }), (ua, ip, seconds) => {
        expect(classifyOpen(pixel({ userAgent: ua, ip, method: 'HEAD', at: after(seconds) })).human).toBe(false);
        expect(classifyOpen(pixel({ userAgent: 'Mozilla/5.0', ip, at: after(seconds) })).reason).toBe('apple_mpp');
      }),
    );
  });
});

/** Mail clients and browsers people read mail with. */
const PEOPLE_AGENTS = [
  CHROME,
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; Microsoft Outlook 16.0.17928; ms-office; MSOffice 16)',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.2',
  'Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
];
const unlisted = (ip: string) => networksOf(ip).length === 0;

describe('people stay people (properties)', () => {
  it('an ordinary client from an address on no vendor list, an hour or more after send, is human', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PEOPLE_AGENTS),
        fc.oneof(fc.ipV4(), fc.ipV6()).filter(unlisted),
        fc.integer({ min: 3600, max: 30 * 86400 }),
        fc.constantFrom<Record<string, string>>(IMAGE_HEADERS, { accept: '*/*', 'accept-language': 'en-US' }, {}),
        (userAgent, ip, seconds, headers) => {
          expect(classifyOpen(pixel({ userAgent, ip, headers, at: after(seconds) }))).toEqual({ human: true, reason: 'human' });
        },
      ),
    );
  });

  it('machine clicks that happen beside a person reading never take the open with them', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            reason: fc.constantFrom('link_preview', 'prefetch_header', 'recheck', 'preview_bot'),
            offset: fc.double({ min: -GATEWAY_RENDER_WINDOW_SECONDS, max: GATEWAY_RENDER_WINDOW_SECONDS, noNaN: true }),
            sameAddress: fc.boolean(),
            link: fc.constantFrom('l1', 'l2', 'l3', 'l4', 'l5'),
          }),
          { maxLength: 6 },
        ),
        (clicks) => {
          const otherHits = clicks.map((c) => click(c.link, 3600 + c.offset, c.sameAddress ? '145.14.200.3' : '132.245.26.156', false, c.reason));
          expect(classifyOpen(pixel({ otherHits, linkCount: 5 })).human).toBe(true);
        },
      ),
    );
  });

  it('a pixel within the render window of any walk over the links is a gateway rendering (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 10 }),
        fc.double({ min: -GATEWAY_RENDER_WINDOW_SECONDS, max: GATEWAY_RENDER_WINDOW_SECONDS, noNaN: true }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        (links, offset, spacing) => {
          const otherHits = [...Array(links).keys()].map((i) => click(`l${i}`, 3600 + offset + i * spacing * (GATEWAY_RENDER_WINDOW_SECONDS - Math.abs(offset)) / links, '3.120.44.18'));
          expect(classifyOpen(pixel({ otherHits, linkCount: links, headers: {} })).reason).toBe('gateway_render');
        },
      ),
    );
  });

  it('a client with a browser\'s headers stays human even from a public cloud', () => {
    const cloud = NETWORKS.filter((n) => n.kind === 'cloud').flatMap((n) => n.cidrs.filter((c) => !c.includes(':')));
    fc.assert(
      fc.property(fc.constantFrom(...PEOPLE_AGENTS), fc.constantFrom(...cloud), fc.integer({ min: 1, max: 250 }), (userAgent, cidr, last) => {
        const ip = cidr.split('/')[0]!.replace(/\.0$/, `.${last}`);
        expect(classifyOpen(pixel({ userAgent, ip })).human).toBe(true);
      }),
    );
  });
});

describe('vendor data', () => {
  it('gives every agent rule and network a source and a retrieval date', () => {
    for (const rule of AGENT_RULES) {
      expect(rule.source.length, rule.name).toBeGreaterThan(10);
      expect(rule.retrieved, rule.name).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      for (const id of rule.networks ?? []) expect(NETWORKS.map((n) => n.id), rule.name).toContain(id);
    }
    for (const network of NETWORKS) {
      expect(network.source.length, network.id).toBeGreaterThan(10);
      expect(network.retrieved, network.id).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      for (const cidr of network.cidrs) {
        const [base, bits] = cidr.split('/');
        expect(parseIp(base!), cidr).not.toBeNull();
        expect(Number(bits), cidr).toBeGreaterThan(0);
        expect(ipInCidr(base!, cidr), cidr).toBe(true);
      }
    }
    expect(new Set(NETWORKS.map((n) => n.id)).size).toBe(NETWORKS.length);
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
