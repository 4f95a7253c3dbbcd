/**
 * Was a tracking-pixel fetch a person opening the message, or a machine?
 *
 * Gmail and Yahoo/AOL proxy every image, but their proxies fetch when the person opens the message, so those
 * opens count as human (only the first open per message reaches us because the proxy caches). Machines:
 * Apple Mail Privacy Protection prefetching on delivery to the device; Gmail prefetching for a recipient who
 * has Gmail open at delivery (a 2015 Edge agent from Google's networks); secure email gateways rendering the
 * message while they walk its links; anything fetched sooner after the send than anyone can open mail.
 */
import {
  KNOWN_FETCHERS,
  APPLE_MPP_USER_AGENT,
  MAIL_CLIENT_UA,
  MAILBOX_PROXIES,
  REAL_CLIENT_UA,
  agentEvidence,
  networkEvidence,
  networkOfKind,
} from './agents.js';
import {
  prefetchVerdict,
  classifyOptions,
  hasBrowserHeaders,
  human,
  machine,
  robotFromHeader,
  secondsApart,
  secondsSinceSend,
  DEFAULT_CLASSIFY_OPTIONS,
  type Classification,
  type ClassifyOptions,
  type HitRequest,
  type OtherHit,
} from './classification.js';
import { BESIDE_A_READER, burstLinksNeeded, CLICK_BURST_WINDOW_SECONDS, linksInBurst, networkKey } from './clicks.js';
import { matchAgent } from './match-agent.js';

export type { Classification, ClassifyOptions, HitRequest, OtherHit } from './classification.js';

export type PixelHit = HitRequest & {
  at: Date;
  sentAt: Date | null;
  /** The message's other recorded hits (opens and clicks), with their verdicts. */
  otherHits: OtherHit[];
  /** Tracked links in the message. */
  linkCount: number;
};

/** Default of `tracking.openFloor` (see docs/engagement.md for where the figure comes from). */
export const OPEN_MIN_SECONDS_AFTER_SEND = DEFAULT_CLASSIFY_OPTIONS.openFloorSeconds;

/**
 * A gateway renders the message (fetching the pixel) in the same moment as it walks the links: clicks this
 * close to the pixel, on either side, are the same visit. Twice the burst window, because the render comes
 * first and a walk over many links takes a few seconds to reach its burst.
 */
export const GATEWAY_RENDER_WINDOW_SECONDS = 2 * CLICK_BURST_WINDOW_SECONDS;

/** Machine-click reasons that mean a gateway or script walked the message (not a preview of one link). */
const WALKER_REASONS = new Set(['scanner_ua', 'scanner_ip', 'automation_ua', 'honeypot', 'link_burst', 'too_soon_after_send', 'head_request', 'missing_ua', 'datacenter_fetch']);

export function isAppleMppHit(hit: Pick<PixelHit, 'userAgent' | 'ip'>): boolean {
  return appleMppEvidence(hit) !== null;
}

function appleMppEvidence(hit: Pick<PixelHit, 'userAgent' | 'ip'>): Record<string, unknown> | null {
  const ua = hit.userAgent?.trim() ?? '';
  if (ua === APPLE_MPP_USER_AGENT) {
    const relay = networkOfKind(hit.ip, 'apple_relay');
    return relay ? networkEvidence('Bare Mozilla/5.0 agent', relay) : { rule: 'Bare Mozilla/5.0 agent', source: 'Apple Mail Privacy Protection prefetch agent' };
  }
  // From Apple's block or Private Relay egress without a recognisable client agent: the relay, not a person.
  const relay = networkOfKind(hit.ip, 'apple_relay');
  // A mail client's own agent (Outlook for iOS behind Cloudflare WARP, whose egress Private Relay shares) is a person.
  if (relay && !REAL_CLIENT_UA.test(ua) && !MAIL_CLIENT_UA.test(ua)) return networkEvidence('Apple relay network without a mail client', relay);
  return null;
}

/**
 * Clicks on the message in the same moment as this pixel that show a machine walking it: most of its links
 * (a burst), a gateway's or script's click, or another machine click from the pixel's own network (not one
 * that happens beside a person reading, see BESIDE_A_READER).
 */
export function gatewayRenderEvidence(hit: Pick<PixelHit, 'at' | 'ip' | 'otherHits' | 'linkCount'>): Record<string, unknown> | null {
  const near = hit.otherHits.filter((o) => o.kind === 'click' && !BESIDE_A_READER.has(o.reason) && secondsApart(o.at, hit.at) <= GATEWAY_RENDER_WINDOW_SECONDS);
  if (!near.length) return null;
  const base = { windowSeconds: GATEWAY_RENDER_WINDOW_SECONDS };
  // A walk as the click rule sees it: most links within the burst window of one of its clicks.
  const needed = burstLinksNeeded(hit.linkCount);
  for (const c of near) {
    if (c.linkId === null) continue;
    const links = linksInBurst({ at: c.at, linkId: c.linkId, otherHits: near });
    if (links >= needed) return { rule: 'Pixel with a walk over the links', links, linkCount: hit.linkCount, ...base };
  }
  const walker = near.find((o) => !o.human && WALKER_REASONS.has(o.reason));
  if (walker) return { rule: 'Pixel with a machine click', clickReason: walker.reason, clickIp: walker.ip, ...base };
  const mine = networkKey(hit.ip);
  const sameFetcher = near.find((o) => !o.human && mine !== null && networkKey(o.ip) === mine);
  if (sameFetcher) return { rule: 'Pixel with a machine click from the same network', clickReason: sameFetcher.reason, clickIp: sameFetcher.ip, ...base };
  return null;
}

export function classifyOpen(hit: PixelHit, opts?: Partial<ClassifyOptions>): Classification {
  const o = classifyOptions(opts);
  const mpp = appleMppEvidence(hit);
  if (mpp) return machine('apple_mpp', mpp);

  const headers = hit.headers ?? {};
  const prefetch = prefetchVerdict(headers);
  if (prefetch) return prefetch;
  const from = robotFromHeader(headers);
  if (from) return machine('automation_ua', { rule: 'Robot From header', from });

  const known = matchAgent(KNOWN_FETCHERS, hit, 'open');
  if (known) return machine(known.reason, agentEvidence(known));
  const gateway = networkOfKind(hit.ip, 'gateway');
  if (gateway) return machine('scanner_ip', networkEvidence('Gateway network', gateway));
  // A provider's network carries a person's open only through its image proxy (Gmail, Yahoo); Outlook loads
  // images from the reader's own device, so anything else from a provider's service network is its fetcher.
  const provider = networkOfKind(hit.ip, 'mailbox_provider');
  if (provider && !matchAgent(MAILBOX_PROXIES, hit, 'open')) {
    return machine('scanner_ip', networkEvidence('Mail provider network, not its image proxy', provider));
  }

  // Mail clients and proxies fetch images with GET; HEAD is a link checker asking whether the URL exists.
  if (hit.method.toUpperCase() === 'HEAD') return machine('head_request', { rule: 'HEAD request' });
  if (!hit.userAgent?.trim()) return machine('missing_ua', { rule: 'No user agent' });

  const elapsed = secondsSinceSend(hit.at, hit.sentAt);
  if (elapsed !== null && elapsed < o.openFloorSeconds) {
    return machine('too_soon_after_send', { rule: 'Open floor (tracking.openFloor)', floorSeconds: o.openFloorSeconds, secondsAfterSend: elapsed });
  }
  const render = gatewayRenderEvidence(hit);
  if (render) return machine('gateway_render', render);

  const proxy = matchAgent(MAILBOX_PROXIES, hit, 'open');
  if (proxy) return human(proxy.reason, agentEvidence(proxy));

  const cloud = networkOfKind(hit.ip, 'cloud');
  if (cloud && o.headersKnown && !hasBrowserHeaders(headers) && !MAIL_CLIENT_UA.test(hit.userAgent)) {
    return machine('datacenter_fetch', networkEvidence('Cloud network without browser headers', cloud));
  }
  return human();
}
