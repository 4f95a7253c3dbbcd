/**
 * Verdict on one tracking hit. `reason` is a stable snake_case code that reports and tests rely on;
 * `evidence` says which rule decided and where its data came from, and is kept in the signal row.
 */
export type Classification = {
  human: boolean;
  reason: ClassificationReason;
  evidence?: Record<string, unknown>;
};

export type ClassificationReason =
  /** Nothing marks the hit as a machine: a person. */
  | 'human'
  /** Gmail's image proxy fetching when the person opens the message (human). */
  | 'google_image_proxy'
  /** Yahoo/AOL's image proxy fetching when the person opens the message (human). */
  | 'yahoo_image_proxy'
  /** Apple Mail Privacy Protection prefetching on delivery to the device. */
  | 'apple_mpp'
  /** A mailbox provider fetching ahead of the person (Gmail's prefetch on delivery, Gmail content sampling). */
  | 'provider_prefetch'
  /** A security gateway's user agent. */
  | 'scanner_ua'
  /** From a security gateway's or mail provider's published mail-flow / service network. */
  | 'scanner_ip'
  /** A script, HTTP library, headless browser or crawler. */
  | 'automation_ua'
  /** A chat or social app unfurling a link someone pasted (Slack, Teams, LinkedIn…). */
  | 'preview_bot'
  /** A webmail or mail client fetching a link to show its preview (Outlook.com / Microsoft 365). */
  | 'link_preview'
  /** The request's own headers say it is a prefetch, prerender or preview, or not a navigation at all. */
  | 'prefetch_header'
  /** The pixel fetched in the same moment as the message's links were walked by a machine: a gateway rendering it. */
  | 'gateway_render'
  /** A gateway re-checking the very link a person just clicked, from another network and browser. */
  | 'recheck'
  /** From a public-cloud network without the headers every browser sends. */
  | 'datacenter_fetch'
  | 'missing_ua'
  | 'head_request'
  /** Sooner after the relay accepted the message than anyone can open or click it (tracking.openFloor/clickFloor). */
  | 'too_soon_after_send'
  /** A link no person can see. */
  | 'honeypot'
  /** This click completes a walk over most of the message's links within seconds. */
  | 'link_burst';

/**
 * Request headers that tell who is fetching; names lower-cased, values as sent. The HTTP layer passes only
 * these: purpose, sec-purpose, x-purpose, x-moz, sec-fetch-mode, sec-fetch-dest, sec-fetch-site,
 * sec-fetch-user, accept, accept-language, via, from, referer.
 */
export type HitRequest = {
  userAgent: string | null;
  ip: string | null;
  method: string;
  headers: Record<string, string>;
};

/** Another recorded hit on the same message, with the verdict it was given. */
export type OtherHit = {
  kind: 'open' | 'click';
  linkId: string | null;
  at: Date;
  ip: string | null;
  userAgent: string | null;
  human: boolean;
  reason: string;
};

/** From funnel.yaml `tracking.openFloor` / `tracking.clickFloor`, in seconds. */
export type ClassifyOptions = {
  openFloorSeconds: number;
  clickFloorSeconds: number;
  /**
   * False when the hit reached us without its request headers (a provider's webhook reports only the user
   * agent and address): rules that read the absence of a header are then skipped. True by default, because
   * the tracking endpoint always passes the headers it saw.
   */
  headersKnown?: boolean;
};

/**
 * Defaults match funnel.yaml's `tracking.openFloor` and `tracking.clickFloor` defaults (docs/engagement.md
 * says where the figures come from); callers with a loaded config pass the configured values.
 */
export const DEFAULT_CLASSIFY_OPTIONS: Required<ClassifyOptions> = {
  openFloorSeconds: 5,
  clickFloorSeconds: 15,
  headersKnown: true,
};

export function classifyOptions(opts?: Partial<ClassifyOptions>): Required<ClassifyOptions> {
  const merged = { ...DEFAULT_CLASSIFY_OPTIONS };
  for (const [key, value] of Object.entries(opts ?? {})) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  return merged;
}

export const human = (reason: ClassificationReason = 'human', evidence?: Record<string, unknown>): Classification =>
  evidence ? { human: true, reason, evidence } : { human: true, reason };
export const machine = (reason: ClassificationReason, evidence?: Record<string, unknown>): Classification =>
  evidence ? { human: false, reason, evidence } : { human: false, reason };

/** Seconds between our send and the hit, or null when either time is unknown. */
export function secondsSinceSend(at: Date, sentAt: Date | null): number | null {
  if (!sentAt) return null;
  return (at.getTime() - sentAt.getTime()) / 1000;
}

/** Seconds between two hits, always positive. */
export function secondsApart(a: Date, b: Date): number {
  return Math.abs(a.getTime() - b.getTime()) / 1000;
}

/** Header value, names matched case-insensitively (the HTTP layer lower-cases them; tests may not). */
export function header(headers: Record<string, string> | undefined, name: string): string | null {
  if (!headers) return null;
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return null;
}

/**
 * A request that announces it is speculative: Chromium's `Sec-Purpose: prefetch` (also `prefetch;prerender`,
 * `prefetch;anonymous-client-ip` via its private prefetch proxy), the legacy `Purpose: prefetch` Chrome still
 * sends for <link rel=prefetch>, Safari's `X-Purpose: preview` and Firefox's old `X-Moz: prefetch`.
 */
/** The verdict on a request that announced itself as a prefetch, for a pixel and a link alike; null when it did not. */
export function prefetchVerdict(headers: Record<string, string>): Classification | null {
  const prefetch = announcedPrefetch(headers);
  return prefetch ? machine('prefetch_header', { rule: 'Announced prefetch', ...prefetch, source: 'Fetch Metadata: Sec-Purpose (MDN; Chromium preloading_headers), legacy Purpose / X-Purpose / X-Moz' }) : null;
}

export function announcedPrefetch(headers: Record<string, string>): { header: string; value: string } | null {
  for (const name of ['sec-purpose', 'purpose', 'x-purpose', 'x-moz']) {
    const value = header(headers, name);
    if (value && /\b(prefetch|prerender|preview)\b/i.test(value)) return { header: name, value };
  }
  return null;
}

/**
 * Fetch metadata of a browser request that is not a navigation: a script's fetch() or a preview pane, never a
 * person following a link (a followed link is `Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document` or a
 * frame). Browsers send the set together (mode, dest, site); a lone `Sec-Fetch-Mode: cors` is what Node's
 * fetch (undici) adds to every request and proves nothing about a browser, so it is not read here.
 */
export function notANavigation(headers: Record<string, string>): { header: string; value: string } | null {
  const mode = header(headers, 'sec-fetch-mode')?.trim().toLowerCase();
  const dest = header(headers, 'sec-fetch-dest')?.trim().toLowerCase();
  const site = header(headers, 'sec-fetch-site');
  if (!dest && !site) return null;
  if (mode && ['cors', 'no-cors', 'same-origin', 'websocket'].includes(mode)) return { header: 'sec-fetch-mode', value: mode };
  if (dest && !['document', 'iframe', 'frame', 'embed', 'object', 'fencedframe'].includes(dest)) return { header: 'sec-fetch-dest', value: dest };
  return null;
}

/** A `From:` header naming a contact address: what crawlers send (RFC 9110 §10.1.2); browsers never do. */
export function robotFromHeader(headers: Record<string, string>): string | null {
  const from = header(headers, 'from');
  return from && /@|\(at\)/i.test(from) ? from : null;
}

/**
 * Headers every browser and mail client sends with a page or image request: `Accept-Language` with a real
 * language (HTTP libraries send none, or undici's `*`), and Fetch Metadata (`Sec-Fetch-Dest`/`-Site`) from
 * current browsers over HTTPS. Most scanners send neither.
 */
export function hasBrowserHeaders(headers: Record<string, string>): boolean {
  const language = header(headers, 'accept-language')?.trim();
  if (language && language !== '*') return true;
  return header(headers, 'sec-fetch-dest') !== null || header(headers, 'sec-fetch-site') !== null;
}
