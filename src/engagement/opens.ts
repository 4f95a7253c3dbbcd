/**
 * Was a tracking-pixel fetch a person opening the message, or a machine?
 *
 * Gmail and Yahoo/AOL proxy every image, but they fetch when the person opens the message, so their
 * opens count as human (industry practice since Gmail's 2013 proxy launch; only the first open per
 * message reaches us because the proxy caches). Apple Mail Privacy Protection instead prefetches on
 * delivery to the device whether or not the person reads it, so those hits are never evidence of a read.
 */
import {
  APPLE_MPP_IPS,
  APPLE_MPP_USER_AGENT,
  AUTOMATION,
  MAILBOX_PROXIES,
  PREVIEW_BOTS,
  REAL_CLIENT_UA,
  SCANNER_IPS,
  SECURITY_SCANNERS,
} from './agents.js';
import { human, machine, secondsSinceSend, type Classification } from './classification.js';
import { ipInAny } from './ip.js';
import { matchAgent } from './match-agent.js';

export type { Classification } from './classification.js';

export type PixelHit = {
  userAgent: string | null;
  ip: string | null;
  method: string;
  at: Date;
  sentAt: Date | null;
};

/**
 * Nobody opens a message this soon after our SMTP relay accepted it: the fetch is the receiving gateway
 * scanning it in transit (or a prefetch). A few seconds covers relay-to-mailbox time on fast systems.
 */
export const OPEN_MIN_SECONDS_AFTER_SEND = 3;

export function isAppleMppHit(hit: Pick<PixelHit, 'userAgent' | 'ip'>): boolean {
  const ua = hit.userAgent?.trim() ?? '';
  if (ua === APPLE_MPP_USER_AGENT) return true;
  // From Apple's range without a recognisable client UA: the relay, not a person's own connection.
  return ipInAny(hit.ip, APPLE_MPP_IPS) && !REAL_CLIENT_UA.test(ua);
}

export function classifyOpen(hit: PixelHit, minSecondsAfterSend = OPEN_MIN_SECONDS_AFTER_SEND): Classification {
  if (isAppleMppHit(hit)) return machine('apple_mpp');
  const known = matchAgent([...SECURITY_SCANNERS, ...PREVIEW_BOTS, ...AUTOMATION, ...SCANNER_IPS], hit, 'open');
  if (known) return machine(known.reason);
  // Mail clients and proxies fetch images with GET; HEAD is a link checker asking whether the URL exists.
  if (hit.method.toUpperCase() === 'HEAD') return machine('head_request');
  if (!hit.userAgent?.trim()) return machine('missing_ua');
  const elapsed = secondsSinceSend(hit.at, hit.sentAt);
  if (elapsed !== null && elapsed < minSecondsAfterSend) return machine('too_soon_after_send');
  const proxy = matchAgent(MAILBOX_PROXIES, hit, 'open');
  if (proxy) return human(proxy.reason);
  return human();
}
