import { compile } from 'html-to-text';

const WRAP = 78;

// Unwrapped: a paragraph is one line until wrap() below. The skeleton is converted with placeholders
// where a message's values go, and lines wrapped around a placeholder's length came out ragged once
// the value was in ("…like Acme Logistics, and the" / "question I" / "hear most…").
const toText = compile({
  wordwrap: false,
  selectors: [
    // MJML renders the preheader as a hidden div padded with invisible characters; it is not body copy.
    { selector: 'div[style*="display:none"]', format: 'skip' },
    { selector: 'img', format: 'skip' },
    { selector: 'a', options: { linkBrackets: ['(', ')'], hideLinkHrefIfSameAsText: true } },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
    // MJML nests everything in layout tables; only a <table class="data-table"> is laid out as one.
    { selector: 'table.data-table', format: 'dataTable', options: { uppercaseHeaderCells: false, colSpacing: 3 } },
  ],
});

/** An image link (logo, hero) has no words to show in text; printing its bare URL only adds noise. */
const IMAGE_ONLY_LINK = /<a\b[^>]*>\s*(?:<img\b[^>]*>\s*)+<\/a>/gi;

/** The plain-text part: links read as "text (url)", images and the open pixel leave no trace. */
export function htmlToPlainText(html: string): string {
  return wrap(unwrappedText(html));
}

function unwrappedText(html: string): string {
  return toText(bodyOf(html).replace(IMAGE_ONLY_LINK, ''));
}

/**
 * Only the body is converted (html-to-text's base element), so the head — MJML's styles and Outlook
 * conditionals, a good part of the document — need not be parsed for every message.
 */
function bodyOf(html: string): string {
  const start = html.search(/<body[\s>]/i);
  return start < 0 ? html : html.slice(start);
}

/** Where a tracked link's URL goes in the text skeleton; each message puts in the href its HTML got. */
const LINK_PLACEHOLDER = /NRLNK([A-Za-z0-9_-]+)KNLRN/g;
/** A marked anchor's href (the marker is always the anchor's first attribute: links.ts puts it there). */
const MARKED_HREF = /(<a data-nurture-link="([^"]*)"[^>]*?\shref\s*=\s*")[^"]*"/gi;
/** Values a raw `{{{…}}}` or `{{&…}}` puts into the HTML are markup: only converting each message reads them as text. */
const RAW_TOKEN = /\{\{\{|\{\{\s*&/;

/**
 * The plain-text part of a template version, converted once with its tokens still in place (as inert
 * placeholders) and each tracked link's URL left as a placeholder: a message then needs only Handlebars
 * and the link URLs its HTML got, not a parse of its whole HTML. Null when the template puts raw markup
 * into the HTML from a value, which must be converted per message.
 *
 * `markedHtml` is MJML's output with token placeholders and link markers (compile.ts); `tokens` are the
 * template's Handlebars tokens; `restore` puts them back.
 */
export function textSkeleton(markedHtml: string, tokens: readonly string[], restore: (text: string) => string): string | null {
  if (tokens.some((t) => RAW_TOKEN.test(t))) return null;
  const withSlots = markedHtml.replace(MARKED_HREF, (_whole, start: string, id: string) => `${start}NRLNK${id}KNLRN"`).replace(ANCHOR_WITH_TEXT, (whole, attributes: string, inner: string) => hideHrefShownAsText(whole, attributes, inner, restore));
  return restore(unwrappedText(withSlots));
}

const ANCHOR_WITH_TEXT = /<a\b([^>]*)>([\s\S]*?)<\/a>/gi;
const ANY_HREF = /\shref\s*=\s*"([^"]*)"/i;

/**
 * An anchor that prints its own address (`<a href="mailto:{{sender.email}}">{{sender.email}}</a>`) reads
 * once in text: each message's conversion hides an href equal to its text, and with the same tokens on
 * both sides they are equal for every recipient, so the skeleton drops that href.
 */
function hideHrefShownAsText(whole: string, attributes: string, inner: string, restore: (text: string) => string): string {
  const href = ANY_HREF.exec(attributes)?.[1];
  if (href === undefined || attributes.includes('data-nurture-link=')) return whole;
  // Compared with the tokens put back: the same token written twice has two placeholders.
  const text = restore(inner.replace(/<[^>]*>/g, '')).trim();
  return text && text === restore(href.replace(/^mailto:/i, '')).trim() ? `<a${attributes.replace(ANY_HREF, '')}>${inner}</a>` : whole;
}

/** Puts each link's URL into a rendered skeleton; null if a link has no URL (the caller converts the HTML instead). */
export function fillLinks(text: string, hrefs: ReadonlyMap<string, string>): string | null {
  let missing = false;
  const out = text.replace(LINK_PLACEHOLDER, (_whole, id: string) => {
    const href = hrefs.get(id);
    if (href === undefined) missing = true;
    return href ?? '';
  });
  return missing ? null : wrap(out);
}

/**
 * Lines longer than the width wrapped at their spaces, once the values are in, each continuing at its
 * line's own indent (under the text of a list item's bullet). A word or URL longer than the width stays
 * whole: a URL broken over two lines no longer works.
 */
function wrap(text: string): string {
  return text
    .split('\n')
    .map((raw) => {
      // The indentation a template's block helpers leave around what they render (`{{#if sender}}` on its
      // own line) reads as a stray space at either end of a line: never a list's bullet or a wrapped line's indent.
      const line = raw.replace(/[ \t]+$/, '').replace(/^ (?=[^\s*•\-\d])/, '');
      if (line.length <= WRAP) return line;
      const indent = /^\s*(?:[*\-•] |\d{1,3}\. )?/.exec(line)![0];
      const hanging = ' '.repeat(indent.length);
      const lines: string[] = [];
      let current = '';
      for (const word of line.slice(indent.length).split(' ')) {
        if (current && indent.length + current.length + 1 + word.length > WRAP) {
          lines.push((lines.length ? hanging : indent) + current);
          current = word;
        } else current = current ? `${current} ${word}` : word;
      }
      lines.push((lines.length ? hanging : indent) + current);
      return lines.join('\n');
    })
    .join('\n');
}

/** The same words in the same order: the two ways of making a text part agree but for where lines wrap. */
export function sameText(a: string, b: string): boolean {
  return a.replace(/\s+/g, ' ').trim() === b.replace(/\s+/g, ' ').trim();
}
