import { compile } from 'html-to-text';

const toText = compile({
  wordwrap: 78,
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
