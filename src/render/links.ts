import { createHash } from 'node:crypto';
import type { DeclaredLink } from './front-matter.js';
import type { TokenVault } from './tokens.js';

export interface MessageLink {
  id: string;
  url: string;
  tag: string | null;
}

/** A trackable <a href> found at compile time; its id is stable across recipients and renders. */
export interface LinkSlot {
  id: string;
  hrefTemplate: string;
  tag: string | null;
}

const ANCHOR = /<a\b[^>]*>/gi;
const HREF = /\shref\s*=\s*"([^"]*)"/i;
const MARKER = 'data-nurture-link';
const MARKED_ANCHOR = new RegExp(`<a\\b[^>]*?\\s${MARKER}="([^"]*)"[^>]*>`, 'gi');
const DIRECT_LINK_TOKEN = /^\{\{\s*links\.(unsubscribe|preferences)\s*\}\}/;
const DECLARED_LINK_TOKEN = /^\{\{\s*links\.([A-Za-z][\w-]*)\s*\}\}/;
const UNTRACKED_SCHEME = /^(mailto:|tel:|sms:|#)/i;

export function linkIdFor(hrefTemplate: string): string {
  return `l${createHash('sha256').update(hrefTemplate).digest('hex').slice(0, 8)}`;
}

/**
 * Marks each trackable anchor with its link id. Runs while tokens are still placeholders, so an href such as
 * {{default lead.attributes.url "…"}} cannot confuse the attribute scan.
 */
export function markTrackableLinks(
  html: string,
  vault: TokenVault,
  declared: Record<string, DeclaredLink>,
): { html: string; slots: LinkSlot[] } {
  const slots = new Map<string, LinkSlot>();
  const marked = html.replace(ANCHOR, (tag) => {
    const href = HREF.exec(tag)?.[1];
    if (href === undefined) return tag;
    const hrefTemplate = vault.reveal(href).trim();
    if (UNTRACKED_SCHEME.test(hrefTemplate) || DIRECT_LINK_TOKEN.test(hrefTemplate)) return tag;
    if (!/^https?:\/\//i.test(hrefTemplate) && !hrefTemplate.startsWith('{{')) return tag;
    const declaredId = DECLARED_LINK_TOKEN.exec(hrefTemplate)?.[1];
    const declaredLink = declaredId ? declared[declaredId] : undefined;
    const id = declaredLink && declaredId ? declaredId : linkIdFor(hrefTemplate);
    if (!slots.has(id)) slots.set(id, { id, hrefTemplate, tag: declaredLink?.tag ?? null });
    return tag.replace(/^<a\b/i, `<a ${MARKER}="${id}"`);
  });
  return { html: marked, slots: [...slots.values()] };
}

export interface RewriteInput {
  slots: ReadonlyMap<string, LinkSlot>;
  trackLink: ((link: MessageLink) => string) | null;
  /** RFC 8058 one-click and preference links must reach the recipient untouched. */
  directUrls: ReadonlySet<string>;
}

export interface RewrittenLinks {
  html: string;
  links: MessageLink[];
  /**
   * Each marked anchor's final href (as text, entities decoded), for the plain-text part; null when one
   * link id got two different hrefs (an anchor inside {{#each}}), which only a per-message conversion reads.
   */
  hrefs: Map<string, string> | null;
}

const MARKER_ATTRIBUTE = new RegExp(`\\s${MARKER}="[^"]*"`);

/** Replaces each marked anchor's rendered href with its tracked URL and drops the marker. */
export function rewriteLinks(html: string, input: RewriteInput): RewrittenLinks {
  const links = new Map<string, MessageLink>();
  let hrefs: Map<string, string> | null = new Map();
  const keep = (id: string, href: string) => {
    if (hrefs && (hrefs.get(id) ?? href) !== href) hrefs = null;
    else hrefs?.set(id, href);
  };
  const out = html.replace(MARKED_ANCHOR, (tag, id: string) => {
    const unmarked = tag.replace(MARKER_ATTRIBUTE, '');
    const hrefMatch = HREF.exec(unmarked);
    if (!hrefMatch) return unmarked;
    const rendered = decodeEntities(hrefMatch[1] ?? '');
    const url = rendered.trim();
    if (!/^https?:\/\//i.test(url) || input.directUrls.has(url)) {
      keep(id, rendered);
      return unmarked;
    }
    const link: MessageLink = { id, url, tag: input.slots.get(id)?.tag ?? null };
    if (!links.has(id)) links.set(id, link);
    if (!input.trackLink) {
      keep(id, rendered);
      return unmarked;
    }
    const tracked = input.trackLink(link);
    keep(id, tracked);
    return unmarked.replace(HREF, () => ` href="${escapeAttribute(tracked)}"`);
  });
  return { html: out, links: [...links.values()], hrefs };
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? whole;
  });
}

export function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
