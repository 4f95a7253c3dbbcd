/**
 * Handlebars tokens are swapped for inert placeholders before MJML sees the markup and swapped back after.
 * Without this, a token with a quoted argument inside an attribute (alt="{{default account.name "you"}}")
 * breaks MJML's XML parsing, and MJML's minifier or URL handling may rewrite `{{ }}` inside href/src.
 */
export interface TokenVault {
  protect(markup: string): string;
  /** Puts tokens back and escapes any other `{{`, ready for Handlebars.compile. */
  restore(html: string): string;
  /** Puts tokens back, nothing else: for reading a fragment such as an href. */
  reveal(fragment: string): string;
  /** Tokens MJML dropped from its output (e.g. text between sections), which would never render. */
  missingFrom(html: string): string[];
  readonly tokens: readonly string[];
}

const TOKEN = /\{\{\{?[\s\S]*?\}?\}\}/g;
const PLACEHOLDER = /NRTOK(\d+)(\s*)KOTRN/g;

export function createTokenVault(): TokenVault {
  const tokens: string[] = [];
  return {
    tokens,
    protect(markup) {
      return markup.replace(TOKEN, (token) => {
        const id = tokens.push(token) - 1;
        // Keep the token's line breaks so MJML's line numbers still match the file.
        const breaks = token.replace(/[^\n]/g, '');
        return `NRTOK${id}${breaks}KOTRN`;
      });
    },
    restore(html) {
      // Any `{{` left at this point came from MJML itself (CSS, conditional comments): make Handlebars print it.
      const escaped = html.replace(/\{\{/g, '\\{{');
      return this.reveal(escaped);
    },
    reveal(fragment) {
      return fragment.replace(PLACEHOLDER, (whole, id: string) => tokens[Number(id)] ?? whole);
    },
    missingFrom(html) {
      const seen = new Set(Array.from(html.matchAll(PLACEHOLDER), (m) => Number(m[1])));
      return tokens.filter((_token, id) => !seen.has(id));
    },
  };
}
