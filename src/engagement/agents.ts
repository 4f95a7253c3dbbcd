/**
 * Known fetchers of tracking pixels and links, and the networks they fetch from. The facts live in two data
 * files, each entry with its source and the date it was retrieved, so adding a vendor or refreshing a range
 * is an edit to data/agents.json or data/ranges.json, never a new regex somewhere in a classifier.
 */
import agentsData from './data/agents.json' with { type: 'json' };
import rangesData from './data/ranges.json' with { type: 'json' };
import type { ClassificationReason } from './classification.js';
import { inCidr, parseCidr, parseIp, type Cidr } from './ip.js';

export type AgentGroup = 'mailbox_proxy' | 'provider_prefetch' | 'link_preview' | 'preview_bot' | 'scanner' | 'automation';

export type AgentRule = {
  name: string;
  group: AgentGroup;
  reason: ClassificationReason;
  /** Whether a hit from this agent is a person's action. */
  human: boolean;
  /** Restrict the rule to one kind of hit; both when absent. */
  appliesTo?: 'open' | 'click';
  ua: RegExp;
  /** Ids of ranges.json networks the hit must come from; any network when absent. */
  networks?: readonly string[];
  source: string;
  retrieved: string;
};

/**
 * What a hit from a network can mean: `apple_relay` (Apple's own block and iCloud Private Relay egress, which
 * Mail Privacy Protection fetches through), `mailbox_provider` (a provider's proxies and fetchers),
 * `gateway` (secure email gateways and link scanners), `cloud` (public clouds, where people run VPNs and
 * virtual desktops too: never enough on its own).
 */
export type NetworkKind = 'apple_relay' | 'mailbox_provider' | 'gateway' | 'cloud';

export type Network = {
  id: string;
  name: string;
  kind: NetworkKind;
  cidrs: readonly string[];
  source: string;
  retrieved: string;
};

type AgentEntry = {
  name: string;
  group: string;
  reason: string;
  human: boolean;
  appliesTo?: string;
  ua: string;
  flags?: string;
  networks?: string[];
  source: string;
  retrieved: string;
};

export const NETWORKS: readonly Network[] = (rangesData.networks as Network[]).map((n) => ({ ...n, cidrs: [...n.cidrs] }));

export const AGENT_RULES: readonly AgentRule[] = (agentsData.agents as AgentEntry[]).map((a) => ({
  name: a.name,
  group: a.group as AgentGroup,
  reason: a.reason as ClassificationReason,
  human: a.human,
  ...(a.appliesTo ? { appliesTo: a.appliesTo as 'open' | 'click' } : {}),
  ua: new RegExp(a.ua, a.flags ?? ''),
  ...(a.networks ? { networks: a.networks } : {}),
  source: a.source,
  retrieved: a.retrieved,
}));

const inGroup = (...groups: AgentGroup[]) => AGENT_RULES.filter((r) => groups.includes(r.group));

/** Mailbox image proxies that fetch when the person opens the message (Gmail, Yahoo/AOL): human. */
export const MAILBOX_PROXIES = inGroup('mailbox_proxy');
/** A provider fetching ahead of the person (Gmail's prefetch on delivery, content sampling). */
export const PROVIDER_PREFETCHERS = inGroup('provider_prefetch');
/** Webmail showing a link's preview (Outlook.com / Microsoft 365). */
export const LINK_PREVIEWERS = inGroup('link_preview');
/** Chat and social apps unfurling a pasted link. */
export const PREVIEW_BOTS = inGroup('preview_bot');
/** Secure email gateways that open and click every message on its way to the inbox. */
export const SECURITY_SCANNERS = inGroup('scanner');
/** Scripts, headless browsers, HTTP libraries, crawlers. */
export const AUTOMATION = inGroup('automation');
/** Every agent that names itself as a fetcher, in the order pixels and links are checked against them: built once. */
export const KNOWN_FETCHERS: readonly AgentRule[] = [...PROVIDER_PREFETCHERS, ...LINK_PREVIEWERS, ...SECURITY_SCANNERS, ...PREVIEW_BOTS, ...AUTOMATION];

/**
 * Apple Mail Privacy Protection prefetches every remote image when the message reaches the device, whether or
 * not it is read, through the iCloud Private Relay infrastructure. The prefetch sends the bare User-Agent
 * "Mozilla/5.0" (no platform, no engine), which no real browser or mail client sends.
 */
export const APPLE_MPP_USER_AGENT = 'Mozilla/5.0';

/** Browser engines and mail clients a person uses; keeps an Apple or cloud address with a real client human. */
export const REAL_CLIENT_UA = /Chrome\/|Firefox\/|Edg\/|Microsoft Outlook|Thunderbird\/|AppleWebKit\/.+\((KHTML|khtml)/;

/** Mail clients fetching a pixel themselves (their agent is not a browser's). */
export const MAIL_CLIENT_UA = /Microsoft Outlook|ms-office|MSOffice|Thunderbird\/|Outlook-iOS|Outlook-Android|Airmail|Spark\/|Superhuman|Mailbird|eM Client|Postbox|Evolution\/|KMail|Mail\/\d/;

// Parsed once: a hit is checked against every network on each classification.
const parsedNetworks = NETWORKS.map((n) => ({ network: n, cidrs: n.cidrs.map((text) => ({ text, cidr: parseCidr(text) })).filter((c): c is { text: string; cidr: Cidr } => c.cidr !== null) }));

// The same few addresses come again and again (a proxy's, a gateway's, a scanner's), and a hit's
// classification asks several times: each address is checked against the hundreds of ranges once.
const networksSeen = new Map<string, readonly { network: Network; cidr: string }[]>();
const NETWORKS_SEEN_MAX = 10_000;

/** Every listed network the address belongs to, with the matching CIDR (most specific vendor first as listed). */
export function networksOf(ip: string | null): readonly { network: Network; cidr: string }[] {
  if (!ip) return [];
  const known = networksSeen.get(ip);
  if (known) return known;
  const addr = parseIp(ip);
  const found: { network: Network; cidr: string }[] = [];
  if (addr) {
    for (const { network, cidrs } of parsedNetworks) {
      const hit = cidrs.find((c) => inCidr(addr, c.cidr));
      if (hit) found.push({ network, cidr: hit.text });
    }
  }
  if (networksSeen.size >= NETWORKS_SEEN_MAX) networksSeen.clear();
  networksSeen.set(ip, found);
  return found;
}

/** The first listed network of one of `kinds` the address belongs to. */
export function networkOfKind(ip: string | null, ...kinds: NetworkKind[]): { network: Network; cidr: string } | null {
  return networksOf(ip).find((n) => kinds.includes(n.network.kind)) ?? null;
}

/** Evidence for a rule from agents.json. */
export function agentEvidence(rule: AgentRule, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { rule: rule.name, source: rule.source, retrieved: rule.retrieved, ...extra };
}

/** Evidence for a network from ranges.json. */
export function networkEvidence(rule: string, hit: { network: Network; cidr: string }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    rule,
    network: hit.network.name,
    cidr: hit.cidr,
    source: hit.network.source,
    retrieved: hit.network.retrieved,
    ...extra,
  };
}
