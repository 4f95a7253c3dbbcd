/**
 * Delivery status notifications: RFC 3464 reports (multipart/report; report-type=delivery-status) and the
 * plain-text notices many MTAs still write (qmail, older Exim and Exchange, Yahoo, Gmail's "Address not
 * found" when the report part was lost on the way). Pure over the parsed parts.
 */

export type BounceSource = {
  headers: Record<string, string>;
  subject: string;
  /** The notice's readable text (for a plain-text notice, the whole body, returned copy included). */
  text: string;
  /** Body of the message/delivery-status (or message/global-delivery-status, RFC 6533) part. */
  deliveryStatus: string | null;
  /** Header section of the returned message (message/rfc822 or text/rfc822-headers part). */
  returnedHeaders: string | null;
};

export type Bounce = {
  /** A permanent or final failure (Action: failed). A delay notice is not a bounce. */
  isBounce: boolean;
  /** True for any delivery status notification: failures, delays and success notices. */
  isDsn: boolean;
  /** RFC 3464 Action: failed | delayed | delivered | relayed | expanded. */
  action: string | null;
  recipient: string | null;
  /** RFC 3463 enhanced status, e.g. 5.1.1: the more specific of the Status field and the diagnostic. */
  status: string | null;
  diagnostic: string | null;
  originalMessageId: string | null;
  /** Where the verdict came from: a machine-readable report, or the words of a plain-text notice. */
  format: 'report' | 'text' | null;
};

/** Actions that say the message went through (RFC 3464 §2.3.3): a notice, never a bounce. */
export const SUCCESS_ACTIONS: ReadonlySet<string> = new Set(['delivered', 'relayed', 'expanded']);

type Fields = Map<string, string>;

/** RFC 3464 §2.1: blocks of header-like fields separated by blank lines; continuation lines are folded. */
export function parseStatusFields(body: string): Fields[] {
  const blocks: Fields[] = [];
  let current: Fields = new Map();
  let lastKey: string | null = null;
  for (const line of body.replace(/\r\n?/g, '\n').split('\n')) {
    if (!line.trim()) {
      if (current.size) blocks.push(current);
      current = new Map();
      lastKey = null;
    } else if (/^[ \t]/.test(line) && lastKey) {
      current.set(lastKey, `${current.get(lastKey) ?? ''} ${line.trim()}`);
    } else {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      lastKey = line.slice(0, colon).trim().toLowerCase();
      current.set(lastKey, line.slice(colon + 1).trim());
    }
  }
  if (current.size) blocks.push(current);
  return blocks;
}

/** "rfc822; ana@x.com" → "ana@x.com"; "smtp; 550 5.1.1 …" → "550 5.1.1 …". */
function withoutType(value: string | undefined): string | null {
  if (!value) return null;
  const semi = value.indexOf(';');
  const bare = (semi >= 0 ? value.slice(semi + 1) : value).trim();
  return bare.replace(/^<(.*)>$/, '$1') || null;
}

export function normaliseMessageId(value: string | null | undefined): string | null {
  if (!value) return null;
  const match = /<([^<>]+)>/.exec(value);
  const id = (match ? match[1] : value)?.trim();
  return id ? id : null;
}

/** A field of a header section (the first block of `section`), or null. */
export function headerFrom(section: string | null, name: string): string | null {
  if (!section) return null;
  const fields = parseStatusFields(section.split(/\r?\n\r?\n/)[0] ?? '')[0];
  return fields?.get(name) ?? null;
}

const STATUS_CODE = /\b([245]\.\d{1,3}\.\d{1,3})\b/;
const DAEMON_SENDER = /mailer-daemon|postmaster|mail delivery (subsystem|system)|mail ?delivery|\bdaemon@|microsoftexchange[0-9a-f]*@/i;
const BOUNCE_SUBJECT =
  /undeliver|delivery status notification|delivery (has )?failed|delivery failure|failure notice|returned mail|mail delivery failed|delivery failed|non ?remis|unzustellbar|nicht zustellbar|no se puede entregar|could not be delivered|onbestelbaar|non recapitabile|não (foi possível )?entregue|warning: message .* delayed|warning: could not send message|delayed mail|delivery delayed|delivery status|successful mail delivery|delivery report/i;
/** Words only a delivery notice uses; with a daemon sender they make a notice even under an odd subject. */
const BOUNCE_BODY =
  /this is the (qmail-send|mail delivery|mail system|postfix) program|wasn't able to deliver your message|could not be delivered to one or more|delivery has failed to these recipients|did not reach (some or all of )?the intended recipient|unable to deliver your message|message wasn't delivered|address not found|has not yet been delivered|delivery to the following recipients? (failed|has been delayed)|permanent error|this message was created automatically by mail delivery software|this is a warning message only/i;

/** Where a plain-text notice starts to quote the returned message. */
const RETURNED_COPY =
  /^(-{2,}\s*Below this line is a copy of the message\.?|-{2,}\s*This is a copy of (the|your) message.*|-{2,}\s*(Original|Returned) message\s*-*|-{2,}\s*The header of the original message is following\.?\s*-*|Original message headers:|-{2,}\s*Original message headers\s*-*|-{2,}\s*Unsent message below\s*-*|-{2,}\s*Message header follows\s*-*)\s*$/im;

/** Wording of a notice that the MTA is still trying (a delay, not a bounce). */
const DELAY_WORDS =
  /has not yet been delivered|not been delivered yet|delivery (has been )?delayed|delivery attempts will continue|will (continue to )?(retry|try again)|still trying|i'?m still trying|this is a warning|warning: message .* delayed|delivery status notification \(delay\)|no action is required on your part|this is a warning message only|could not send message for past|message still undelivered after/i;
/** Wording of a success notice (RFC 3461 NOTIFY=SUCCESS answered in prose). */
const SUCCESS_WORDS = /successful mail delivery|delivered to the following recipients? successfully|delivery to the following recipients? (succeeded|was successful|has been completed)|delivery status notification \(success\)|your message (was|has been) (successfully )?delivered/i;

/**
 * What a diagnostic's words say when it carries no enhanced code, or only a generic one (x.0.0):
 * the subject and detail of RFC 3463, most specific first. Class comes from the report or the reply code.
 */
const DIAGNOSTIC_WORDS: readonly [RegExp, string][] = [
  [/mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?storage|insufficient (storage|disk space)|mailbox size limit/i, '2.2'],
  [/account (has been |is )?(disabled|deactivated|suspended|inactive)|mailbox (is )?(disabled|inactive)|account expired/i, '2.1'],
  [/host (or domain name )?not found|domain (name )?(not found|does not exist)|no mx (record|host)|unrouteable (mail )?domain|name service error/i, '1.2'],
  [
    /user unknown|unknown user|no such (user|mailbox|recipient|address|account)|(user|mailbox|address|recipient|account) (does ?n[o']t|did not) exist|doesn'?t have an? .{1,40} account|does not have an? .{1,40} account|address (couldn'?t|could not|was not) be found|address not found|recipient ?not ?found|unknown (local[- ]part|recipient|address|mailbox)|invalid (recipient|mailbox|address)|mailbox (unavailable|not found)|not a valid (mailbox|recipient)|no mailbox here|recipient address rejected: (user unknown|access denied|undeliverable)|bad destination mailbox|account that you tried to reach does not exist|not listed in (the )?(domino|public) directory/i,
    '1.1',
  ],
  [/spam|blocked|block ?list|black ?list|policy|not accepted for policy|dmarc|spf (check )?fail|reputation|content rejected/i, '7.1'],
  [/message (size )?(too (big|large)|exceeds)/i, '3.4'],
  [/loop(s)? detected|too many hops|hop count/i, '4.6'],
  [/timed? ?out|connection (refused|timed out)|no route to host|unreachable/i, '4.1'],
];

/**
 * Words that say more than the code beside them. Microsoft 365's directory-based edge blocking turns an
 * address its tenant doesn't have away with "550 5.4.1 Recipient address rejected: Access denied.
 * AS(201806281)": 5.4.1 reads as a routing problem, but it is the tenant's "no such user".
 */
const DECISIVE_WORDS: readonly [RegExp, string][] = [[/recipient address rejected: access denied/i, '1.1']];

const NOT_A_BOUNCE: Bounce = {
  isBounce: false,
  isDsn: false,
  action: null,
  recipient: null,
  status: null,
  diagnostic: null,
  originalMessageId: null,
  format: null,
};

/**
 * The Status field and the diagnostic read together: the report's class (it knows whether the MTA gave
 * up) with the more specific subject and detail. `Status: 5.0.0` beside `550 5.1.1 user unknown` is 5.1.1;
 * `Status: 5.0.0` beside "550 unknown user" (no code) is 5.1.1 from the words.
 */
export function combineStatus(statusField: string | null, diagnostic: string | null): string | null {
  const fromField = STATUS_CODE.exec(statusField ?? '')?.[1] ?? null;
  const fromDiagnostic = STATUS_CODE.exec(diagnostic ?? '')?.[1] ?? null;
  const replyClass = /(?:^|[^\d.])([245])\d\d(?:[\s:-]|$)/.exec(diagnostic ?? '')?.[1] ?? null;
  const cls = fromField?.[0] ?? fromDiagnostic?.[0] ?? replyClass;
  if (!cls) return null;
  const decisive = diagnostic ? DECISIVE_WORDS.find(([re]) => re.test(diagnostic))?.[1] : undefined;
  if (decisive && cls === '5') return `${cls}.${decisive}`;
  const detail = (code: string | null) => (code ? code.slice(2) : null);
  const specificity = (d: string | null) => (!d ? 0 : d.endsWith('.0') ? (d.startsWith('0.') ? 1 : 2) : 3);
  const words = diagnostic ? (DIAGNOSTIC_WORDS.find(([re]) => re.test(diagnostic))?.[1] ?? null) : null;
  const options = [detail(fromDiagnostic), detail(fromField), words].filter((d): d is string => !!d);
  if (!options.length) return `${cls}.0.0`;
  const best = options.reduce((a, b) => (specificity(b) > specificity(a) ? b : a));
  // A generic or missing code: the words may say more than x.0.0 ("550 5.0.0 user unknown").
  if (specificity(best) < 3 && words) return `${cls}.${words}`;
  return `${cls}.${best}`;
}

/** Only an unknown address (5.1.x) is dead for good; a policy block or a full mailbox says nothing final. */
export function bounceSeverity(bounce: Pick<Bounce, 'status'>): 'hard' | 'soft' {
  return bounce.status?.startsWith('5.1.') ? 'hard' : 'soft';
}

export function parseBounce(mail: BounceSource): Bounce {
  const contentType = mail.headers['content-type']?.toLowerCase() ?? '';
  const isReport = contentType.includes('multipart/report') && contentType.includes('delivery-status');
  if (mail.deliveryStatus || isReport) return reportBounce(mail);
  return plainTextBounce(mail);
}

function reportBounce(mail: BounceSource): Bounce {
  const blocks = parseStatusFields(mail.deliveryStatus ?? '').slice(1);
  // Prefer the recipient that failed; a DSN can also list recipients that were delivered or delayed.
  const block =
    blocks.find((b) => b.get('action')?.toLowerCase() === 'failed') ??
    blocks.find((b) => b.get('action')?.toLowerCase() === 'delayed') ??
    blocks.find((b) => b.has('action') || b.has('status')) ??
    new Map<string, string>();
  const diagnostic = withoutType(block.get('diagnostic-code')) ?? diagnosticLine(noticePart(mail.text));
  const status = combineStatus(block.get('status') ?? null, diagnostic) ?? combineStatus(null, mail.text);
  const action = block.get('action')?.toLowerCase().trim() ?? (status ? actionFromStatus(status) : null);
  return {
    isBounce: action === 'failed',
    isDsn: true,
    action,
    recipient:
      withoutType(block.get('final-recipient')) ?? withoutType(block.get('original-recipient')) ?? failedRecipient(mail) ?? recipientInText(noticePart(mail.text)),
    status,
    diagnostic,
    originalMessageId: originalMessageId(mail),
    format: 'report',
  };
}

/**
 * Pre-RFC 3464 notices: recognised by a daemon sender together with a notice's subject or wording, never
 * by one alone (a person may write "Undeliverable parcel").
 */
function plainTextBounce(mail: BounceSource): Bounce {
  const from = mail.headers['from'] ?? '';
  const nullSender = /^<\s*>$/.test(mail.headers['return-path']?.trim() ?? '');
  const notice = noticePart(mail.text);
  const daemon = DAEMON_SENDER.test(from) || nullSender;
  if (!daemon || !(BOUNCE_SUBJECT.test(mail.subject) || BOUNCE_BODY.test(notice))) return NOT_A_BOUNCE;
  const diagnostic = diagnosticLine(notice);
  const status = combineStatus(null, diagnostic) ?? combineStatus(null, STATUS_CODE.exec(notice)?.[0] ?? null);
  const words = `${mail.subject}\n${notice}`;
  const action = SUCCESS_WORDS.test(words)
    ? 'delivered'
    : DELAY_WORDS.test(words) && !/permanent error|given up|giving up|gave up/i.test(notice)
      ? 'delayed'
      : status?.startsWith('2')
        ? 'delivered'
        : 'failed';
  // A failure notice whose only code is a 4xx still failed: the MTA gave up on a temporary error.
  const finalStatus = action === 'failed' && status?.startsWith('4') ? `5${status.slice(1)}` : status;
  return {
    isBounce: action === 'failed',
    isDsn: true,
    action,
    recipient: failedRecipient(mail) ?? recipientInText(notice),
    status: finalStatus,
    diagnostic,
    originalMessageId: originalMessageId(mail),
    format: 'text',
  };
}

/** RFC 3463: class 5 is permanent, class 4 persistent-transient (the MTA keeps trying), class 2 success. */
function actionFromStatus(status: string): string {
  if (status.startsWith('5')) return 'failed';
  if (status.startsWith('4')) return 'delayed';
  return 'delivered';
}

/** The notice's own words, before the copy of the returned message it quotes. */
function noticePart(text: string): string {
  const m = RETURNED_COPY.exec(text);
  return m ? text.slice(0, m.index) : text;
}

/** The returned copy in a plain-text notice (headers first), or null. */
function returnedCopy(text: string): string | null {
  const m = RETURNED_COPY.exec(text);
  return m ? text.slice(m.index + m[0].length).replace(/^\s*\n/, '') : null;
}

/**
 * The Message-ID we sent: from the returned headers part, else from the copy quoted in the body (a
 * "Message-ID:" line, possibly indented), else In-Reply-To or X-Original-Message-ID of the notice itself.
 */
function originalMessageId(mail: BounceSource): string | null {
  const inCopy = (section: string | null) => {
    if (!section) return null;
    const m = /^[ \t>]*Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)/im.exec(section);
    return m ? normaliseMessageId(m[1]) : null;
  };
  return (
    normaliseMessageId(headerFrom(mail.returnedHeaders, 'message-id')) ??
    inCopy(returnedCopy(mail.text)) ??
    inCopy(mail.text) ??
    normaliseMessageId(mail.headers['in-reply-to']) ??
    normaliseMessageId(mail.headers['x-original-message-id'])
  );
}

/** Exim and Gmail name the failed address in X-Failed-Recipients. */
function failedRecipient(mail: BounceSource): string | null {
  return mail.headers['x-failed-recipients']?.split(',')[0]?.trim().toLowerCase() || null;
}

const ADDRESS = String.raw`[A-Za-z0-9.!#$%&'*+/=?^_\`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+`;

/** Where plain-text notices name the recipient, most specific first. */
const RECIPIENT_IN_TEXT: readonly RegExp[] = [
  new RegExp(String.raw`^\s*(?:Final|Original)-Recipient:\s*(?:rfc822;)?\s*<?(${ADDRESS})>?`, 'im'),
  // Sendmail's transcript: "<ana@x.test>... Deferred: …" (or "... User unknown").
  new RegExp(String.raw`^<(${ADDRESS})>\.\.\.\s`, 'm'),
  // qmail and Yahoo: "<ana@x.test>:" on a line of its own.
  new RegExp(String.raw`^<(${ADDRESS})>:\s*$`, 'm'),
  // Exim: the failed address indented under "The following address(es) failed:".
  // (1&1/IONOS wraps "address" and "failed:" over two lines, and ends the address with a colon.)
  new RegExp(String.raw`following address(?:\(es\)|es)?\s+failed:\s*\n+\s*<?(${ADDRESS})>?`, 'i'),
  new RegExp(String.raw`following address(?:\(es\)|es)?\s+deferred:\s*\n+\s*<?(${ADDRESS})>?`, 'i'),
  // Mimecast: "… to the following address could not be delivered:" then "-- ana@x.test".
  new RegExp(String.raw`following address(?:es)? could not be delivered:?\s*\n+\s*(?:--\s*)?<?(${ADDRESS})>?`, 'i'),
  // Microsoft 365's notice, first line, as its tenants' languages write it.
  new RegExp(String.raw`(?:your message to|votre message (?:à|a)|ihre nachricht an|su mensaje (?:para|a)|il tuo messaggio a|uw bericht aan)\s+<?(${ADDRESS})>?\s+(?:couldn'?t|could not|n['’]a pas pu|konnte nicht|no se (?:pudo|ha podido)|non è stato|kan niet|kon niet)`, 'i'),
  // Exchange: "Delivery has failed to these recipients or groups:" then the address, maybe as "Name (addr)".
  new RegExp(String.raw`(?:failed to these recipients or groups|following recipient\(s\) cannot be reached|could not be delivered to the following recipients?|delivery to the following recipients? (?:failed|has been delayed)(?: permanently)?)\s*:?\s*\n+[^\n]*?<?(${ADDRESS})`, 'i'),
  // Gmail: "Your message wasn't delivered to ana@x.test because …".
  new RegExp(String.raw`(?:wasn'?t|was not|couldn'?t be|could not be) delivered to\s+<?(${ADDRESS})>?`, 'i'),
  new RegExp(String.raw`RCPT TO:\s*<(${ADDRESS})>`, 'i'),
  new RegExp(String.raw`unable to deliver (?:your message )?to (?:the following address(?:es)?[.:]?\s*)?<?(${ADDRESS})>?`, 'i'),
];

function recipientInText(notice: string): string | null {
  for (const re of RECIPIENT_IN_TEXT) {
    const m = re.exec(notice);
    if (m?.[1]) return m[1].toLowerCase();
  }
  return null;
}

/** The remote server's reply in a notice: the first line with an SMTP reply code, continuation lines joined. */
function diagnosticLine(notice: string): string | null {
  const lines = notice.replace(/\r\n?/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const m = /(?:^|[\s#:(\['"])([45]\d\d)(?:[\s-]|:\s)(?:#?[45]\.\d{1,3}\.\d{1,3}\b)?/.exec(line);
    if (!m) continue;
    let text = line.slice(m.index).replace(/^[\s#:(\['"]/, '').replace(/'\s*$/, '');
    // Replies wrapped by the MTA ("550-5.1.1 …" then "550 5.1.1 …", or an indented continuation).
    for (let k = i + 1; k < Math.min(lines.length, i + 4); k++) {
      const next = lines[k]!;
      if (!next.trim() || !/^\s{2,}\S|^[45]\d\d[\s-]/.test(next)) break;
      text = `${text} ${next.trim()}`;
    }
    return text.replace(/\s+/g, ' ').trim();
  }
  // Exchange's older NDRs: an explanation, then "<server #5.1.1>" on the next line.
  const coded = lines.findIndex((l) => /#?[45]\.\d{1,3}\.\d{1,3}\b/.test(l));
  if (coded >= 0) {
    const before = lines.slice(0, coded).reverse().find((l) => l.trim());
    const explained = before && DIAGNOSTIC_WORDS.some(([re]) => re.test(before));
    return (explained ? `${before.trim()} ${lines[coded]!.trim()}` : lines[coded]!.trim()).replace(/\s+/g, ' ');
  }
  const words = lines.find((l) => DIAGNOSTIC_WORDS.some(([re]) => re.test(l)));
  return words?.trim() ?? null;
}
