/**
 * Was a tracked-link click a person, or a security gateway / script following every link?
 * Gateways (Safe Links, Proofpoint, Mimecast, Barracuda…) often spoof ordinary browser UAs, so timing and
 * pattern signals matter as much as the UA table.
 */
import { APPLE_MPP_USER_AGENT, AUTOMATION, PREVIEW_BOTS, SCANNER_IPS, SECURITY_SCANNERS } from './agents.js';
import { human, machine, secondsSinceSend, type Classification } from './classification.js';
import { matchAgent } from './match-agent.js';

export type { Classification } from './classification.js';

export type ClickHit = {
  userAgent: string | null;
  ip: string | null;
  /** GET | HEAD */
  method: string;
  at: Date;
  sentAt: Date | null;
  linkId: string;
  /** A link no person can see (hidden in the markup): only a machine follows it. */
  honeypot: boolean;
  /** Earlier clicks on the same message. */
  otherClicks: { linkId: string; at: Date }[];
  /** Tracked links in the message. */
  linkCount: number;
};

/** A person has to open, read and choose a link; gateways click during delivery, within seconds. */
export const CLICK_MIN_SECONDS_AFTER_SEND = 10;
/** Clicks on different links this close together belong to one burst. */
export const CLICK_BURST_WINDOW_SECONDS = 5;
/** Share of the message's links a burst must cover to look like a scanner walking every link. */
export const CLICK_BURST_LINK_SHARE = 0.8;
/** A burst needs at least this many distinct links, so one person's double click never counts. */
export const CLICK_BURST_MIN_LINKS = 2;

/** Distinct links clicked within the burst window before (and including) this click. */
export function linksInBurst(click: Pick<ClickHit, 'at' | 'linkId' | 'otherClicks'>, windowSeconds = CLICK_BURST_WINDOW_SECONDS): number {
  const links = new Set<string>([click.linkId]);
  for (const other of click.otherClicks) {
    const gap = Math.abs(click.at.getTime() - other.at.getTime()) / 1000;
    if (gap <= windowSeconds) links.add(other.linkId);
  }
  return links.size;
}

export function isLinkBurst(click: ClickHit): boolean {
  if (click.linkCount < CLICK_BURST_MIN_LINKS) return false;
  const needed = Math.max(CLICK_BURST_MIN_LINKS, Math.ceil(click.linkCount * CLICK_BURST_LINK_SHARE));
  return linksInBurst(click) >= needed;
}

export function classifyClick(click: ClickHit): Classification {
  if (click.honeypot) return machine('honeypot');
  const known = matchAgent([...SECURITY_SCANNERS, ...PREVIEW_BOTS, ...AUTOMATION, ...SCANNER_IPS], click, 'click');
  if (known) return machine(known.reason);
  // Browsers follow a link with GET; HEAD is a checker probing the redirect.
  if (click.method.toUpperCase() === 'HEAD') return machine('head_request');
  if (!click.userAgent?.trim()) return machine('missing_ua');
  // No browser sends the bare token; it is a script (and Apple's MPP proxy, which only ever fetches images).
  if (click.userAgent.trim() === APPLE_MPP_USER_AGENT) return machine('automation_ua');
  const elapsed = secondsSinceSend(click.at, click.sentAt);
  if (elapsed !== null && elapsed < CLICK_MIN_SECONDS_AFTER_SEND) return machine('too_soon_after_send');
  if (isLinkBurst(click)) return machine('link_burst');
  return human();
}
