import type { CompiledTemplate } from './compile.js';
import { lookupPath, toTemplateData, type RenderContext } from './context.js';
import { RenderError } from './errors.js';
import { isEmptyValue } from './helpers.js';
import { rewriteLinks, escapeAttribute, type LinkSlot, type MessageLink } from './links.js';
import { fillLinks, htmlToPlainText, sameText } from './text.js';

export interface RenderOptions {
  trackLink: ((link: MessageLink) => string) | null;
  pixelUrl: string | null;
}

export interface RenderedMessage {
  subject: string;
  preheader: string;
  html: string;
  text: string;
  /** Links that were (or, with trackLink null, would be) tracked, one per id. */
  links: MessageLink[];
}

const HEADER_BREAK = /[\r\n]/;
const slotMaps = new WeakMap<CompiledTemplate, ReadonlyMap<string, LinkSlot>>();

/** Personalises a compiled template for one recipient. Pure: same inputs, same message. */
export function renderMessage(compiled: CompiledTemplate, ctx: RenderContext, opts: RenderOptions): RenderedMessage {
  const declaredLinks = Object.fromEntries(Object.entries(compiled.frontMatter.links).map(([id, link]) => [id, link.url]));
  const base = toTemplateData(ctx, declaredLinks, { subject: '', preheader: '' });
  assertValues(base, compiled.frontMatter.required, 'is required by the template');
  assertValues(base, compiled.subjectFields, 'is used in the subject without a {{default}} fallback');

  const subject = run(() => compiled.renderSubject(base)).trim();
  const preheader = run(() => compiled.renderPreheader(base)).trim();
  assertHeaderSafe('subject', subject);
  assertHeaderSafe('preheader', preheader);

  const data = { ...base, subject, preheader };
  const personalised = run(() => compiled.renderHtml(data));
  const directUrls = new Set([ctx.links.unsubscribe, ctx.links.preferences].filter((u): u is string => !!u));
  const { html, links, hrefs } = rewriteLinks(personalised, { slots: slotsOf(compiled), trackLink: opts.trackLink, directUrls });

  return {
    subject,
    preheader,
    html: opts.pixelUrl ? appendPixel(html, opts.pixelUrl) : html,
    // With the tracked links on purpose: a click in a text-only client is still a click we should see, and both
    // parts pointing at the same hosts reads as consistent to spam filters. The pixel is added after, so it never appears.
    text: textPart(compiled, data, html, hrefs),
    links,
  };
}

/** How many renders of each compiled version check their skeleton's text against a full conversion. */
const SKELETON_CHECKS = 3;
const skeletonChecks = new WeakMap<CompiledTemplate, number>();

/**
 * The text part from the version's skeleton (Handlebars and the link URLs only), else converted from
 * this message's HTML. The first renders of a version make both and compare their words; a version
 * whose skeleton reads differently (say, a heading that upper-cases a name) converts every message.
 */
function textPart(compiled: CompiledTemplate, data: Record<string, unknown>, html: string, hrefs: ReadonlyMap<string, string> | null): string {
  const checks = skeletonChecks.get(compiled) ?? 0; // -1: its skeleton read differently
  if (!compiled.renderText || !hrefs || checks < 0) return htmlToPlainText(html);
  const fromSkeleton = fillLinks(run(() => compiled.renderText!(data)), hrefs);
  if (fromSkeleton === null) return htmlToPlainText(html);
  if (checks >= SKELETON_CHECKS) return fromSkeleton;
  const converted = htmlToPlainText(html);
  const same = sameText(fromSkeleton, converted);
  skeletonChecks.set(compiled, same ? checks + 1 : -1);
  return same ? fromSkeleton : converted;
}

function assertValues(data: Record<string, unknown>, fields: readonly string[], why: string): void {
  for (const field of fields) {
    if (isEmptyValue(lookupPath(data, field))) {
      throw new RenderError('missing_value', field, `${field} ${why} but is empty for this lead; the send is held`);
    }
  }
}

function assertHeaderSafe(field: 'subject' | 'preheader', value: string): void {
  if (HEADER_BREAK.test(value)) {
    throw new RenderError('header_injection', field, `${field} contains a line break after personalisation; refusing to build the header`);
  }
}

/** In strict mode Handlebars throws for a field absent from the data, e.g. an attribute this lead lacks. */
function run(render: () => string): string {
  try {
    return render();
  } catch (error) {
    const missing = /^"?([^"\s]+)"? not defined in/.exec((error as Error).message)?.[1];
    if (missing) throw new RenderError('missing_value', missing, `"${missing}" has no value for this lead and no fallback; the send is held`);
    throw new RenderError('render_failed', null, `render failed: ${(error as Error).message}`);
  }
}

function slotsOf(compiled: CompiledTemplate): ReadonlyMap<string, LinkSlot> {
  let slots = slotMaps.get(compiled);
  if (!slots) {
    slots = new Map(compiled.links.map((slot) => [slot.id, slot]));
    slotMaps.set(compiled, slots);
  }
  return slots;
}

function appendPixel(html: string, pixelUrl: string): string {
  const pixel = `<img src="${escapeAttribute(pixelUrl)}" width="1" height="1" alt="" border="0" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;" />`;
  const end = html.lastIndexOf('</body>');
  return end < 0 ? html + pixel : html.slice(0, end) + pixel + html.slice(end);
}
