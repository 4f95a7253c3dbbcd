// Server-rendered HTML with escaping by default: every interpolated value is text unless it is already
// Html (built by this same tag). A lead named <script> is shown as "<script>", never run.
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export const escapeHtml = (s: string): string => s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);

function render(p: Part): string {
  if (p === null || p === undefined || p === false) return '';
  if (p instanceof Html) return p.text;
  if (Array.isArray(p)) return p.map(render).join('');
  return escapeHtml(String(p));
}

/** html`<p>${name}</p>`: values are escaped; nested html`` and arrays of it are kept as markup. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup written by us (a constant stylesheet or script), never data. */
export const trusted = (text: string): Html => new Html(text);

/** JSON inside a <script type="application/json"> block: "</script>" and "<!--" can't close or confuse it. */
export const jsonScript = (value: unknown): Html => new Html(JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029'));
