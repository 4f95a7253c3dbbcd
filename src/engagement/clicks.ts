/**
 * Was a tracked-link click a person, or a machine following the link: a security gateway, a webmail's link
 * preview, a chat unfurler, a speculative prefetch, a re-check of a link a person just clicked?
 * Gateways often spoof ordinary browser agents, so the request's headers, its network, its timing and the
 * message's other hits matter as much as the agent table.
 */
import {
  APPLE_MPP_USER_AGENT,
  KNOWN_FETCHERS,
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
  notANavigation,
  robotFromHeader,
  secondsApart,
  secondsSinceSend,
  DEFAULT_CLASSIFY_OPTIONS,
  type Classification,
  type ClassifyOptions,
  type HitRequest,
  type OtherHit,
} from './classification.js';
import { parseIp } from './ip.js';
import { matchAgent } from './match-agent.js';

export type { Classification, ClassifyOptions, HitRequest, OtherHit } from './classification.js';

export type ClickHit = HitRequest & {
  at: Date;
  sentAt: Date | null;
  linkId: string;
  /** A link no person can see (hidden in the markup): only a machine follows it. */
  honeypot: boolean;
  /** Tracked links in the message. */
  linkCount: number;
  /** The message's other recorded hits (opens and clicks), with their verdicts. */
  otherHits: OtherHit[];
};

/** Default of `tracking.clickFloor`: a person has to open, read and choose a link; gateways click in transit. */
export const CLICK_MIN_SECONDS_AFTER_SEND = DEFAULT_CLASSIFY_OPTIONS.clickFloorSeconds;
/** Clicks on different links this close together belong to one burst. */
export const CLICK_BURST_WINDOW_SECONDS = 5;
/** Share of the message's links a burst must cover to look like a scanner walking every link. */
export const CLICK_BURST_LINK_SHARE = 0.8;
/** A burst needs at least this many distinct links, so one person's double click never counts. */
export const CLICK_BURST_MIN_LINKS = 2;
/**
 * A click on the link a person clicked this recently, from another network with another browser, is a
 * gateway re-checking it (time-of-click protection such as Safe Links or URL Defense checks within seconds).
 */
export const RECHECK_WINDOW_SECONDS = 60;

/**
 * Machine clicks that happen *because* a person is reading: the webmail previewing a link as the message is
 * shown, the person's browser prefetching a link, a gateway re-checking the person's click, a chat unfurl.
 * They are no part of a walk over the links, and never take the person's open or clicks with them.
 */
export const BESIDE_A_READER: ReadonlySet<string> = new Set(['link_preview', 'prefetch_header', 'recheck', 'preview_bot']);

/** Distinct links a burst over a message of `linkCount` links must cover; Infinity when none can. */
export function burstLinksNeeded(linkCount: number): number {
  if (linkCount < CLICK_BURST_MIN_LINKS) return Infinity;
  return Math.max(CLICK_BURST_MIN_LINKS, Math.ceil(linkCount * CLICK_BURST_LINK_SHARE));
}

/**
 * The walk a click belongs to: the clicks on the message chained to it no more than the burst window
 * apart, before and after (previews and prefetches aside, which happen beside a reader). A scanner's walk
 * a second or two a link can take longer than the window, but never pauses longer between two links.
 */
export function walkAround(click: Pick<ClickHit, 'at' | 'linkId' | 'otherHits'>, windowSeconds = CLICK_BURST_WINDOW_SECONDS): { from: Date; to: Date; links: Set<string> } {
  const clicks = [
    { at: click.at, linkId: click.linkId },
    ...click.otherHits.filter((o) => o.kind === 'click' && o.linkId !== null && !BESIDE_A_READER.has(o.reason)).map((o) => ({ at: o.at, linkId: o.linkId! })),
  ].sort((a, b) => a.at.getTime() - b.at.getTime());
  let lo = clicks.findIndex((c) => c.at.getTime() === click.at.getTime() && c.linkId === click.linkId);
  let hi = lo;
  while (lo > 0 && secondsApart(clicks[lo - 1]!.at, clicks[lo]!.at) <= windowSeconds) lo--;
  while (hi < clicks.length - 1 && secondsApart(clicks[hi]!.at, clicks[hi + 1]!.at) <= windowSeconds) hi++;
  const walk = clicks.slice(lo, hi + 1);
  return { from: walk[0]!.at, to: walk[walk.length - 1]!.at, links: new Set(walk.map((c) => c.linkId)) };
}

/** Distinct links in the walk this click belongs to. */
export function linksInBurst(click: Pick<ClickHit, 'at' | 'linkId' | 'otherHits'>, windowSeconds = CLICK_BURST_WINDOW_SECONDS): number {
  return walkAround(click, windowSeconds).links.size;
}

export function isLinkBurst(click: Pick<ClickHit, 'at' | 'linkId' | 'otherHits' | 'linkCount'>): boolean {
  return linksInBurst(click) >= burstLinksNeeded(click.linkCount);
}

/** The network an address belongs to, coarsely: its /24 (IPv4) or /48 (IPv6), enough to tell two fetchers apart. */
export function networkKey(ip: string | null): string | null {
  if (!ip) return null;
  const parsed = parseIp(ip);
  if (!parsed) return ip.trim().toLowerCase();
  return parsed.version === 4 ? `4:${parsed.value >> 8n}` : `6:${parsed.value >> 80n}`;
}

const sameAgent = (a: string | null, b: string | null) => (a?.trim() ?? '') === (b?.trim() ?? '');

/**
 * The person's click this one re-checks: a human click on the same link moments before, from another
 * network and another agent. The same person clicking again keeps their address or their browser.
 */
export function recheckOf(click: Pick<ClickHit, 'at' | 'linkId' | 'otherHits' | 'ip' | 'userAgent'>): OtherHit | null {
  const mine = networkKey(click.ip);
  for (const other of click.otherHits) {
    if (other.kind !== 'click' || other.linkId !== click.linkId || !other.human) continue;
    const gap = (click.at.getTime() - other.at.getTime()) / 1000;
    if (gap < 0 || gap > RECHECK_WINDOW_SECONDS) continue;
    if (sameAgent(other.userAgent, click.userAgent)) continue;
    if (mine !== null && mine === networkKey(other.ip)) continue;
    return other;
  }
  return null;
}

export function classifyClick(click: ClickHit, opts?: Partial<ClassifyOptions>): Classification {
  const o = classifyOptions(opts);
  if (click.honeypot) return machine('honeypot', { rule: 'Hidden link', linkId: click.linkId });

  const headers = click.headers ?? {};
  const prefetch = prefetchVerdict(headers);
  if (prefetch) return prefetch;
  const fetchMeta = notANavigation(headers);
  if (fetchMeta) return machine('prefetch_header', { rule: 'Not a navigation', ...fetchMeta, source: 'W3C Fetch Metadata Request Headers' });
  const from = robotFromHeader(headers);
  if (from) return machine('automation_ua', { rule: 'Robot From header', from });

  const known = matchAgent(KNOWN_FETCHERS, click, 'click');
  if (known) return machine(known.reason, agentEvidence(known));

  // Nobody browses from a gateway's or a mailbox provider's own service network: the fetch is theirs.
  const service = networkOfKind(click.ip, 'gateway', 'mailbox_provider');
  if (service) return machine('scanner_ip', networkEvidence(`${service.network.kind === 'gateway' ? 'Gateway' : 'Mail provider'} network`, service));

  // Browsers follow a link with GET; HEAD is a checker probing the redirect.
  if (click.method.toUpperCase() === 'HEAD') return machine('head_request', { rule: 'HEAD request' });
  if (!click.userAgent?.trim()) return machine('missing_ua', { rule: 'No user agent' });
  // No browser sends the bare token; it is a script (and Apple's MPP proxy, which only ever fetches images).
  if (click.userAgent.trim() === APPLE_MPP_USER_AGENT) return machine('automation_ua', { rule: 'Bare Mozilla/5.0 agent' });

  const elapsed = secondsSinceSend(click.at, click.sentAt);
  if (elapsed !== null && elapsed < o.clickFloorSeconds) {
    return machine('too_soon_after_send', { rule: 'Click floor (tracking.clickFloor)', floorSeconds: o.clickFloorSeconds, secondsAfterSend: elapsed });
  }
  if (isLinkBurst(click)) {
    return machine('link_burst', {
      rule: 'Link burst',
      links: linksInBurst(click),
      linkCount: click.linkCount,
      windowSeconds: CLICK_BURST_WINDOW_SECONDS,
    });
  }
  const checked = recheckOf(click);
  if (checked) {
    return machine('recheck', {
      rule: 'Re-check of a person\'s click',
      secondsAfter: (click.at.getTime() - checked.at.getTime()) / 1000,
      personIp: checked.ip,
      personUserAgent: checked.userAgent,
      windowSeconds: RECHECK_WINDOW_SECONDS,
    });
  }
  // A public cloud alone proves nothing (VPNs, virtual desktops); with none of a browser's headers it is a fetcher.
  const cloud = networkOfKind(click.ip, 'cloud');
  if (cloud && o.headersKnown && !hasBrowserHeaders(headers)) {
    return machine('datacenter_fetch', networkEvidence('Cloud network without browser headers', cloud));
  }
  return human();
}
