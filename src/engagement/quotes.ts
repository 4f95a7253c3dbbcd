/**
 * The person's own words in a reply: drop the quoted history (attribution lines, Outlook header blocks,
 * "> " quoting), the RFC 3676 signature ("-- ") and mobile-client footers. Pure, line based.
 */

const WRITE_VERBS = String.raw`(wrote|schrieb|a écrit|escribió|ha scritto|escreveu|schreef|skrev|skreiv|kirjoitti|napisał)`;

/** Attribution lines that start the quoted history, per client and language. */
const ATTRIBUTION: readonly RegExp[] = [
  /^On\b.{4,300}\bwrote\s*:$/i, // Gmail, Apple Mail, Thunderbird (en)
  /^Am\b.{4,300}\bschrieb\b.{0,200}:$/i, // Apple Mail / Thunderbird (de)
  /^.{1,200}\bschrieb am\b.{4,120}:$/i, // Gmail (de): "Ana <a@x> schrieb am Mo., 5. Jan. 2026, 09:00:"
  /^Le\b.{4,300}\ba écrit\s*:$/i, // fr
  /^El\b.{4,300}\bescribió\s*:$/i, // es
  /^Op\b.{4,300}\bschreef\b.{0,200}:$/i, // nl
  /^Il\b.{4,300}\bha scritto\s*:$/i, // it
  /^(Em|No dia)\b.{4,300}\bescreveu\s*:$/i, // pt
  /^(Den|D\.)\b.{4,300}\b(skrev|skreiv)\b.{0,200}:$/i, // sv, no, da
  new RegExp(String.raw`^.{0,200}<[^<>\s]+@[^<>\s]+>.{0,80}\b${WRITE_VERBS}\s*:?$`, 'i'), // any order, with an address
];

/** Outlook's dashed separators (desktop plain text, older Exchange), also for forwards. */
const SEPARATOR =
  /^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|Messaggio originale|Oorspronkelijk bericht|Mensagem original|Originalmeddelande|Forwarded message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado)\s*-{2,}$/i;

/** Outlook 365 / new Outlook put a rule of underscores above the quoted header block. */
const UNDERSCORE_RULE = /^_{10,}$/;

const HEADER_FROM = /^\*?(From|Von|De|Da|Van|Från|Fra|Od)\s?:\*?\s*\S/i;
const HEADER_SENT = /^\*?(Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Inviato|Verzonden|Skickat|Sendt|Data)\s?:/i;
const HEADER_LOOKAHEAD = 6;

const MOBILE_FOOTER =
  /^(Sent from my \S.*|Sent from (Outlook|Mail|Yahoo Mail)\b.*|Get Outlook for (iOS|Android)|Sent from Gmail Mobile|Von meinem \S+.* gesendet|Gesendet von meinem \S.*|Envoyé de mon \S.*|Enviado desde mi \S.*|Enviado do meu \S.*|Inviato da(l mio)? \S.*|Verzonden (vanaf|met) mijn \S.*|Skickat från min \S.*)$/i;

/** RFC 3676 §4.3: "-- " on a line of its own starts the signature (trailing space often lost by clients). */
const SIGNATURE_DELIMITER = /^-- ?$/;

/** Lines a wrapped attribution can start with: a language's opener, or the quoted sender's address. */
const ATTRIBUTION_START = /^(On|Am|Le|El|Op|Il|Em|No dia|Den|D\.)\s|<[^<>\s]+@[^<>\s]+>/i;

function isAttributionAt(lines: readonly string[], i: number): boolean {
  const first = (lines[i] ?? '').trim();
  if (ATTRIBUTION.some((re) => re.test(first))) return true;
  // Gmail's text part wraps a long attribution over two or three lines; never join a sign-off
  // ("Camille") onto the attribution below it, nor across a blank line.
  if (!ATTRIBUTION_START.test(first)) return false;
  let joined = first;
  for (let k = i + 1; k < Math.min(lines.length, i + 3); k++) {
    const next = (lines[k] ?? '').trim();
    if (!next) return false;
    joined = `${joined} ${next}`;
    if (ATTRIBUTION.some((re) => re.test(joined))) return true;
  }
  return false;
}

function isOutlookHeaderBlockAt(lines: readonly string[], i: number): boolean {
  if (!HEADER_FROM.test((lines[i] ?? '').trim())) return false;
  for (let k = i + 1; k <= Math.min(lines.length - 1, i + HEADER_LOOKAHEAD); k++) {
    if (HEADER_SENT.test((lines[k] ?? '').trim())) return true;
  }
  return false;
}

/** Index of the first line of quoted history, or lines.length when there is none. */
export function findQuoteStart(lines: readonly string[]): number {
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (!line) continue;
    if (SEPARATOR.test(line)) return i;
    if (UNDERSCORE_RULE.test(line)) {
      const next = lines.slice(i + 1, i + 4).findIndex((l) => HEADER_FROM.test(l.trim()));
      if (next >= 0) return i;
    }
    if (isOutlookHeaderBlockAt(lines, i)) return i;
    if (line.startsWith('>')) {
      // An attribution quoted by the client itself (iOS Mail: "> On …, at …, X wrote:") starts the history.
      const unquoted = line.replace(/^(>\s?)+/, '');
      if (isAttributionAt([unquoted, ...lines.slice(i + 1).map((l) => l.replace(/^(>\s?)+/, ''))], 0)) return i;
      continue;
    }
    if (isAttributionAt(lines, i)) return i;
  }
  return lines.length;
}

function cutAt(lines: string[], pattern: RegExp): string[] {
  const index = lines.findIndex((l) => pattern.test(l.trim()));
  return index >= 0 ? lines.slice(0, index) : lines;
}

/** The reply's new text: what the person typed above (or between) the quoted history. */
export function extractNewText(text: string): string {
  const normalised = text.replace(/\r\n?/g, '\n').replace(/[\u00a0\u202f]/g, ' ').replace(/\ufeff/g, '');
  let lines = normalised.split('\n');
  lines = lines.slice(0, findQuoteStart(lines));
  lines = cutAt(lines, SIGNATURE_DELIMITER);
  lines = cutAt(lines, MOBILE_FOOTER);
  // Inline answers between quoted lines are kept; the quoted lines are not.
  lines = lines.filter((l) => !l.trimStart().startsWith('>'));
  // A horizontal rule left above the cut (Outlook's <hr> before its header block) is not the person's.
  while (lines.length && /^\s*([-_=*]{3,}\s*)?$/.test(lines[lines.length - 1] ?? '')) lines.pop();
  return lines
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
