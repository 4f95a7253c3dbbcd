/**
 * Known fetchers of tracking pixels and links: one table, so adding a vendor is one row, not a new regex
 * somewhere in a classifier. Patterns match the User-Agent; `ips` are CIDR ranges.
 */
import type { ClassificationReason } from './classification.js';

export type AgentRule = {
  name: string;
  reason: ClassificationReason;
  /** Whether a hit from this agent is a person's action. */
  human: boolean;
  /** Restrict the rule to one kind of hit; both when absent. */
  appliesTo?: 'open' | 'click';
  ua?: RegExp;
  ips?: readonly string[];
};

/**
 * Apple Mail Privacy Protection prefetches every remote image when the message reaches the device, whether or
 * not it is read, through the iCloud Private Relay infrastructure. The prefetch sends the bare User-Agent
 * "Mozilla/5.0" (no platform, no engine), which no real browser or mail client sends.
 */
export const APPLE_MPP_USER_AGENT = 'Mozilla/5.0';

/** Apple's own block; MPP egress seen from it (other relay egress sits in CDN ranges and is not listed). */
export const APPLE_MPP_IPS: readonly string[] = ['17.0.0.0/8'];

/**
 * Mailbox image proxies that fetch when the person opens the message (Gmail since Dec 2013, Yahoo/AOL
 * since 2018): the open is real even though the IP and UA are the proxy's. These are human.
 */
export const MAILBOX_PROXIES: readonly AgentRule[] = [
  // e.g. "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
  { name: 'Gmail image proxy', reason: 'google_image_proxy', human: true, ua: /GoogleImageProxy/ },
  // e.g. "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html" (Yahoo and AOL share it)
  { name: 'Yahoo/AOL mail proxy', reason: 'yahoo_image_proxy', human: true, ua: /YahooMailProxy/ },
];

/** Secure email gateways that open and click every message on its way to the inbox. */
export const SECURITY_SCANNERS: readonly AgentRule[] = [
  { name: 'Barracuda', reason: 'scanner_ua', human: false, ua: /barracuda/i },
  { name: 'Mimecast', reason: 'scanner_ua', human: false, ua: /mimecast/i },
  { name: 'Proofpoint URL Defense', reason: 'scanner_ua', human: false, ua: /proofpoint|urldefense/i },
  { name: 'Cisco Secure Email / IronPort', reason: 'scanner_ua', human: false, ua: /ironport|cisco ?secure ?email/i },
  { name: 'Trend Micro', reason: 'scanner_ua', human: false, ua: /trend ?micro|\bTMES\b/i },
  { name: 'Symantec / MessageLabs', reason: 'scanner_ua', human: false, ua: /messagelabs|symantec/i },
  {
    name: 'Other gateways',
    reason: 'scanner_ua',
    human: false,
    ua: /fortimail|fortiguard|sophos|forcepoint|check ?point|avanan|ironscales|abnormal ?security|vade ?secure|zscaler|spamtitan|hornetsecurity/i,
  },
  // Office apps probe a link before handing it to the browser; the browser's own request follows.
  { name: 'Microsoft Office link discovery', reason: 'scanner_ua', human: false, ua: /Microsoft Office (Existence|Protocol) Discovery/i },
  // Outlook desktop fetches images with an "ms-office" UA, so that is a real open; but a *click* never comes
  // from Outlook itself (the link opens in the browser), and Safe Links / Defender checks carry this UA.
  { name: 'Microsoft Safe Links / Office fetch', reason: 'scanner_ua', human: false, appliesTo: 'click', ua: /\bms-office\b|MSOffice \d/i },
];

/** Scripts, headless browsers and HTTP libraries: no person behind them. */
export const AUTOMATION: readonly AgentRule[] = [
  {
    name: 'Headless browser',
    reason: 'automation_ua',
    human: false,
    ua: /HeadlessChrome|PhantomJS|puppeteer|playwright|selenium|electron\/.*headless/i,
  },
  {
    name: 'HTTP library or CLI',
    reason: 'automation_ua',
    human: false,
    ua: /^(curl|wget|httpie)\/|python-requests|python-urllib|python-httpx|aiohttp|Go-http-client|okhttp|^Java\/|Apache-HttpClient|libwww-perl|node-fetch|undici|^axios\/|Scrapy|^Ruby|Faraday|^PostmanRuntime|^Dart\//i,
  },
  { name: 'Crawler', reason: 'automation_ua', human: false, ua: /\b(bot|crawler|spider)\b|Googlebot|bingbot/i },
];

/** Link unfurlers: someone pasted or forwarded the link into chat; not the recipient reading our mail. */
export const PREVIEW_BOTS: readonly AgentRule[] = [
  {
    name: 'Link preview',
    reason: 'preview_bot',
    human: false,
    ua: /Slackbot|LinkedInBot|facebookexternalhit|Twitterbot|WhatsApp|TelegramBot|Discordbot|SkypeUriPreview|BingPreview|redditbot|Embedly/i,
  },
];

/**
 * Published mail-flow ranges of gateways and providers. A hit from these is the gateway, not a mailbox user.
 * Sources: Microsoft 365 "Exchange Online Protection" ranges, Barracuda Email Gateway Defense, Proofpoint
 * Essentials/pphosted and Mimecast US/UK data-centre ranges, as those vendors document for allow-listing.
 */
export const SCANNER_IPS: readonly AgentRule[] = [
  { name: 'Microsoft EOP', reason: 'scanner_ip', human: false, ips: ['40.92.0.0/15', '40.107.0.0/16', '52.100.0.0/14', '104.47.0.0/17'] },
  { name: 'Barracuda', reason: 'scanner_ip', human: false, ips: ['209.222.80.0/21', '64.235.144.0/20'] },
  { name: 'Proofpoint', reason: 'scanner_ip', human: false, ips: ['148.163.128.0/19', '67.231.144.0/20'] },
  { name: 'Mimecast', reason: 'scanner_ip', human: false, ips: ['205.139.110.0/24', '207.211.30.0/24', '195.130.217.0/24', '91.220.42.0/24'] },
];

/** Browser engines and mail clients a person uses; used to keep an Apple-range IP with a real UA human. */
export const REAL_CLIENT_UA = /Chrome\/|Firefox\/|Edg\/|Microsoft Outlook|Thunderbird\/|AppleWebKit\/.+\((KHTML|khtml)/;
