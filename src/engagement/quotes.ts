/**
 * The person's own words in a reply: drop the quoted history (attribution lines, Outlook header blocks,
 * "> " quoting), the RFC 3676 signature ("-- ") and mobile-client footers. Pure, line based.
 */

const WRITE_VERBS = String.raw`(wrote|schrieb|a écrit|escribió|ha scritto|escreveu|schreef|skrev|skreiv|kirjoitti|napisał|pisze)`;

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
  /^W dniu\b.{4,300}\b(pisze|napisał[a]?)\s*:$/iu, // pl (Thunderbird)
  new RegExp(String.raw`^.{0,200}<[^<>\s]+@[^<>\s]+>.{0,80}\b${WRITE_VERBS}\s*:?$`, 'i'), // any order, with an address
];

/** Outlook's dashed separators (desktop plain text, older Exchange), also for forwards. */
const SEPARATOR =
  /^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|Messaggio originale|Oorspronkelijk bericht|Mensagem original|Originalmeddelande|Forwarded message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado)\s*-{2,}$/i;

/** Outlook 365 / new Outlook put a rule of underscores above the quoted header block. */
const UNDERSCORE_RULE = /^_{10,}$/;

const HEADER_FROM = /^\*?(From|Von|De|Da|Van|Från|Fra|Od|От|差出人|发件人|寄件者|보낸 사람)\s?[:：]\*?\s*\S/iu;
const HEADER_SENT = /^\*?(Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Inviato|Verzonden|Skickat|Sendt|Data|Wysłano|Wysłane|Отправлено|Дата|送信日時|日付|发送时间|發送時間|보낸 날짜)\s?[:：]/iu;
const HEADER_LOOKAHEAD = 6;

const MOBILE_FOOTER =
  /^(Sent from my \S.*|Sent from (Outlook|Mail|Yahoo Mail)\b.*|Get Outlook for (iOS|Android)|Sent from Gmail Mobile|Von meinem \S+.* gesendet|Gesendet von meinem \S.*|Envoyé de mon \S.*|Enviado desde mi \S.*|Enviado do meu \S.*|Inviato da(l mio)? \S.*|Verzonden (vanaf|met) mijn \S.*|Verstuurd (vanaf|met) mijn \S.*|Skickat från min \S.*|Envoyé depuis mon \S.*|Wysłane z (mojego )?\S.*|Отправлено с (моего )?\S.*|发自我的\S.*|從我的\S.*傳送|\S+から送信|(Outlook für (iOS|Android) herunterladen|Télécharger Outlook pour (iOS|Android)|Obtenir Outlook pour (iOS|Android)|Descargar Outlook para (iOS|Android)|Outlook voor (iOS|Android) downloaden)\b.*)$/iu;

/** RFC 3676 §4.3: "-- " on a line of its own starts the signature (trailing space often lost by clients). */
const SIGNATURE_DELIMITER = /^-- ?$/;

/** Lines a wrapped attribution can start with: a language's opener, or the quoted sender's address. */
const ATTRIBUTION_START = /^(On|Am|Le|El|Op|Il|Em|No dia|Den|D\.|W dniu)\s|<[^<>\s]+@[^<>\s]+>/i;

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
    const kind = historyAt(lines, i);
    if (kind) return i;
  }
  return lines.length;
}

/**
 * What starts at line i: `cut` (history that runs to the end unmarked: Outlook's separators and header
 * blocks, an attribution over unquoted text), `quoted` (an attribution over "> " lines, which may be
 * followed by the person's own words: bottom-posting, inline answers), or null.
 */
function historyAt(lines: readonly string[], i: number): { kind: 'cut' } | { kind: 'quoted'; length: number } | null {
  const line = (lines[i] ?? '').trim();
  if (!line) return null;
  if (SEPARATOR.test(line)) return { kind: 'cut' };
  if (UNDERSCORE_RULE.test(line) && lines.slice(i + 1, i + 4).some((l) => HEADER_FROM.test(l.trim()))) return { kind: 'cut' };
  if (isOutlookHeaderBlockAt(lines, i)) return { kind: 'cut' };
  if (line.startsWith('>')) {
    // An attribution quoted by the client itself (iOS Mail: "> On …, at …, X wrote:") starts the history.
    const unquoted = line.replace(/^(>\s?)+/, '');
    return isAttributionAt([unquoted, ...lines.slice(i + 1).map((l) => l.replace(/^(>\s?)+/, ''))], 0) ? { kind: 'quoted', length: 1 } : null;
  }
  const length = attributionLength(lines, i);
  if (!length) {
    const quoting = addressAttributionLength(lines, i);
    return quoting ? { kind: 'quoted', length: quoting } : null;
  }
  // "> " quoting after the attribution: what follows the quoted block is the person's again.
  const next = lines.slice(i + length).find((l) => l.trim());
  return next?.trimStart().startsWith('>') ? { kind: 'quoted', length } : { kind: 'cut' };
}

/**
 * Gmail's attribution where the language has no "wrote" to find: "2026年1月5日(月) 18:02 Ana <a@x>:",
 * "пн, 5 янв. 2026 г. в 12:02, Ana" then "<a@x>:", Korean "… <a@x>님이 작성:". A line ending in an address
 * and a colon could be the person's own ("write to my colleague <b@x>:"), so it counts only over "> "
 * quoting, and a first line of two only with a digit in it (the date).
 */
const ADDRESS_ATTRIBUTION = /<[^<>\s]+@[^<>\s]+>\s*(님이 작성)?\s*[:：]$/u;

function addressAttributionLength(lines: readonly string[], i: number): number {
  for (let n = 1; n <= 2; n++) {
    const last = (lines[i + n - 1] ?? '').trim();
    if (!last || (n === 2 && !/\d/.test(lines[i] ?? ''))) return 0;
    if (ADDRESS_ATTRIBUTION.test(last)) {
      const next = lines.slice(i + n).find((l) => l.trim());
      return next?.trimStart().startsWith('>') ? n : 0;
    }
  }
  return 0;
}

/** How many lines the attribution at i spans (Gmail wraps it over two or three), or 0. */
function attributionLength(lines: readonly string[], i: number): number {
  const first = (lines[i] ?? '').trim();
  if (ATTRIBUTION.some((re) => re.test(first))) return 1;
  if (!ATTRIBUTION_START.test(first)) return 0;
  let joined = first;
  for (let k = i + 1; k < Math.min(lines.length, i + 3); k++) {
    const next = (lines[k] ?? '').trim();
    if (!next) return 0;
    joined = `${joined} ${next}`;
    if (ATTRIBUTION.some((re) => re.test(joined))) return k - i + 1;
  }
  return 0;
}

function cutAt(lines: string[], pattern: RegExp): string[] {
  const index = lines.findIndex((l) => pattern.test(l.trim()));
  return index >= 0 ? lines.slice(0, index) : lines;
}

/** Gateways append these below everything, quoted history included: never the person's words. */
const DISCLAIMER =
  /^(confidentiality notice|disclaimer|this (e-?mail|message)( and any (files|attachments).{0,40})? (is|are|may be) (confidential|intended)|the information (contained )?in this (e-?mail|message)|diese (e-?mail|nachricht) (enthält|kann) vertrauliche|dit (e-?mail)?bericht is (uitsluitend|vertrouwelijk)|ce message (et toutes les pièces jointes )?(est|sont) confidentiel)/i;

const GREETING = /^(hi|hello|hey|dear|good (morning|afternoon)|hallo|hoi|moin|liebe[rs]?|sehr geehrte[rs]?|bonjour|salut|hola|buenos días|ciao|buongiorno|olá|bom dia|hej|cześć|dzień dobry|beste|goedemiddag|goedemorgen)\b.{0,60}$/iu;

/** Did the person write more than a greeting before the first quoted block? */
function wroteAbove(lines: readonly string[]): boolean {
  const words = lines.map((l) => l.trim()).filter((l) => l && !l.startsWith('>'));
  if (!words.length) return false;
  return !(words.length === 1 && (GREETING.test(words[0]!) || /^[^.!?]{1,40},$/.test(words[0]!)));
}

/**
 * The reply's new text: what the person typed, above, between or below the quoted history, without
 * attribution lines, quoted lines, signatures or mobile footers.
 */
export function extractNewText(text: string): string {
  const normalised = text.replace(/\r\n?/g, '\n').replace(/[\u00a0\u202f]/g, ' ').replace(/\ufeff/g, '');
  const all = normalised.split('\n');
  const kept: string[] = [];
  for (let i = 0; i < all.length; i++) {
    const history = historyAt(all, i);
    if (history?.kind === 'cut') break;
    if (history?.kind === 'quoted') {
      // Someone who answered above the history left it whole below: whatever follows the quote
      // (lines a client re-wrapped without "> ", a gateway's footer) is not theirs. Only a reply that
      // opens with the quote (bottom-posting, inline answers) goes on below it.
      if (wroteAbove(kept)) break;
      // Mark where the quote stood, so the words either side stay separate paragraphs.
      kept.push('');
      i += history.length - 1;
      continue;
    }
    kept.push(all[i]!);
  }
  let lines = cutAt(kept, SIGNATURE_DELIMITER);
  lines = cutAt(lines, MOBILE_FOOTER);
  lines = cutAt(lines, DISCLAIMER);
  // Inline answers between quoted lines are kept, each its own paragraph; the quoted lines are not.
  lines = lines.map((l) => (l.trimStart().startsWith('>') ? '' : l));
  // A horizontal rule left above the cut (Outlook's <hr> before its header block) is not the person's.
  while (lines.length && /^\s*([-_=*]{3,}\s*)?$/.test(lines[lines.length - 1] ?? '')) lines.pop();
  return lines
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
