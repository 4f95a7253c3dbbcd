/**
 * Is an inbound message an automatic reply (out-of-office, vacation responder, autoresponder)?
 * Pure over the header map (lower-cased names), the subject and the body text.
 */
import { parseReturnDate } from './return-date.js';

export type AutoReply = { isAuto: boolean; reason: string | null; returnDate: Date | null };

export type AutoReplyInput = {
  headers: Record<string, string>;
  subject: string;
  /** The message's own words (quoted history removed), where the return date is stated. */
  text: string;
  /** The mail's Date, or when it was received if it has none: partial return dates resolve from it. */
  date: Date | null;
  /** The sender's UTC offset from the Date header, so "back tomorrow" means the sender's tomorrow. */
  utcOffsetMinutes?: number | null;
};

/** RFC 2076 / de-facto values; "list" and "bulk" also mark mail a person did not write to us. */
const AUTO_PRECEDENCE = new Set(['bulk', 'auto_reply', 'junk', 'list']);

/**
 * Subject prefixes that say the message was generated, by language. Anchored at the start: a person
 * writing "Re: Automatic reply settings?" is not an autoresponder.
 */
const AUTOMATIC_SUBJECT =
  /^\s*(automatic reply|automated (reply|response)|auto[- ]?(reply|response|matic response)|autoreply|autoresponse|vacation (reply|response)|自動応答|自動返信|自动回复|自動回覆|자동\s?응답|автоответ|автоматический ответ|ticket received|request received|your request has been received|we('ve| have) received your (request|message|e-?mail|enquiry|inquiry)|abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática|risposta automatica|automatisch antwoord|autosvar|automatisk svar|resposta automática|resposta automática de ausência|automaattinen vastaus|automatyczna odpowiedź|autoodpowiedź|odpowiedź automatyczna)/iu;

/**
 * Subjects that name an absence. A person may write one too ("Out of office next week — can we move our
 * call?"), so on its own it is only one piece of evidence, weighed with the body.
 */
const ABSENCE_SUBJECT =
  /^\s*(out of (the )?office|ooo\b|away from (the |my )?office|on vacation|on leave|on holiday|abwesend|absence du bureau|absent du bureau|fuera de la oficina|fuori sede|fuori ufficio|afwezig|niet aanwezig|frånvaro|fraværende|ausência|ausente|fora do escritório|poza biurem|nieobecn)/iu;

/** An absence named after the person, as HCL Notes writes it: "Hans Weber is out of the office." */
const NAMED_ABSENCE_SUBJECT = /\bis (currently )?(out of (the )?office|on (vacation|holiday|leave)|away)\.?\s*$/i;

/** Wording only generated mail uses. */
const AUTOMATED_BODY =
  /this is an? automat(ed|ic)(ally generated)? (reply|response|message|e-?mail|notification)|(this|the) (message|e-?mail|reply) (is|was|has been) (sent |generated )?automatically|auto-?generated (reply|response|message)|automatically generated|diese (nachricht|e-?mail) wurde automatisch|(dit|deze) (is een automatisch|bericht is automatisch)|automatisch gegenereerd|questo è un messaggio automatico|messaggio generato automaticamente|(esta|este) (é|e|es) uma? (mensagem|resposta|mensaje|respuesta) automátic[oa]|ceci est (un message|une réponse) automatique|detta är ett automatiskt|to jest automatyczn|(a |your )?(support )?ticket has been (created|opened|logged)|acknowledge that we have received your|(is|from) an? (unmonitored|no-?reply) (mailbox|address|e-?mail address)|this is a no-?reply (e-?mail )?address/iu;

/**
 * The person has left: "kept open until 31 January" is then no return, and no date is read from it.
 */
const DEPARTED_BODY =
  /\b(i (have )?left (the company|the organi[sz]ation|the firm)|i am no longer (with|at|employed)|i'm no longer (with|at|employed)|(is|has) no longer (with|at|employed)|has left (the company|the organi[sz]ation|the firm)|no longer (works?|working) (for|at|with)|hat das unternehmen verlassen|ist nicht mehr (bei|für|im unternehmen)|n'est plus (chez|dans|au sein|employée?)|a quitté (la société|l'entreprise)|ya no (trabaja|forma parte)|ha dejado la empresa|non (lavora|fa) più|werkt niet meer (bij|voor))/iu;
/** "I left Harbor Freight Lines on …": the company by its (capitalised) name. */
const DEPARTED_FROM_NAMED = /\b(I (have )?left|(has|had) left) \p{Lu}/u;

/** Sentences that state an absence, in the languages the return dates cover. */
const ABSENCE_BODY =
  /\b(i am|i'm|i’m|i will be|i'll be|i’ll be) (currently |now )?(out of (the )?office|ooo|away|on (annual |parental |maternity |paternity |sick )?leave|on (vacation|holiday)|travell?ing|out)\b|limited access to (e-?mail|my e-?mail|email)|\bbin (derzeit |zurzeit |ab .{0,30})?(nicht im büro|abwesend|im urlaub|außer haus)|\b(ben|zijn) (momenteel |tot .{0,30})?(afwezig|niet aanwezig|niet op kantoor|op vakantie)|\bsono (attualmente )?(fuori (sede|ufficio)|in ferie|assente)|\b(estou|estarei) (ausente|fora do escritório|de férias)|\bje suis (actuellement )?(absent|en congés?|en vacances)|\bestoy (fuera de la oficina|ausente|de vacaciones)|\b(jag är|är jag) (ledig|bortrest|på semester|inte på kontoret|tjänstledig)|\bjestem (na urlopie|poza biurem|nieobecn)|\b(out of (the )?office|absent|away) (from|until|till|through)\b/iu;

/** Pointers to someone else for the meantime: an absence notice's usual closing. */
const REDIRECT_BODY =
  /\b(urgent|dringend|dringenden|dringende|urgente|urgentes|pilne|pilnych|brådskande|in my absence|in meiner abwesenheit|tijdens mijn afwezigheid|durante la mia assenza|en mi ausencia|en mon absence|pendant mon absence|under min frånvaro|podczas mojej nieobecności)\b/iu;

/**
 * Header evidence decides at once; otherwise subject and body are weighed together, so a person whose
 * subject merely mentions an absence, and who writes their own words and questions, is a person.
 * Deliberately NOT used: X-Auto-Response-Suppress. Exchange sets it on OOF replies, but Outlook and
 * Exchange also stamp it on ordinary mail (meeting responses, rule-forwarded mail, anything sent from
 * list-like systems) and helpdesks that filtered on it lost real replies. It tells *other* servers not to
 * auto-answer this message; it does not say this message was automatic.
 */
export function detectAutoReply(input: AutoReplyInput): AutoReply {
  const reason = autoReplyReason(input.headers, input.subject, input.text);
  if (!reason) return { isAuto: false, reason: null, returnDate: null };
  const departed = DEPARTED_BODY.test(input.text) || DEPARTED_FROM_NAMED.test(input.text);
  return { isAuto: true, reason, returnDate: departed ? null : parseReturnDate(input.text, input.date, { utcOffsetMinutes: input.utcOffsetMinutes ?? null }) };
}

/** Why the message is automatic, or null when a person wrote it. */
export function autoReplyReason(headers: Record<string, string>, subject: string, text = ''): string | null {
  return headerReason(headers) ?? contentReason(subject, text);
}

function headerReason(headers: Record<string, string>): string | null {
  const header = (name: string) => headers[name]?.trim().toLowerCase() ?? null;

  // RFC 3834 §5: any value other than "no" means the message was not written by a person.
  const autoSubmitted = header('auto-submitted');
  if (autoSubmitted !== null && autoSubmitted.split(';')[0]?.trim() !== 'no') return 'auto_submitted';

  // Zimbra, cPanel/Exim vacation, older Exchange and many ticketing autoresponders.
  if (header('x-autoreply') !== null) return 'x_autoreply';
  if (header('x-autorespond') !== null || header('x-autoresponder') !== null) return 'x_autorespond';
  if (header('x-autogenerated') === 'reply') return 'x_autogenerated';

  const precedence = header('precedence') ?? header('x-precedence');
  if (precedence !== null && AUTO_PRECEDENCE.has(precedence)) return 'precedence';

  // Set by Exchange when a mailbox rule (rule-based auto-reply, redirect) produced the message.
  if (header('x-ms-exchange-inbox-rules-loop') !== null) return 'exchange_inbox_rule';
  return null;
}

/** Subject and body weighed: two points make an autoresponder, a person's question takes one away. */
function contentReason(subject: string, text: string): string | null {
  const automaticSubject = AUTOMATIC_SUBJECT.test(subject);
  const absenceSubject = !automaticSubject && (ABSENCE_SUBJECT.test(subject) || NAMED_ABSENCE_SUBJECT.test(subject));
  let score = (automaticSubject ? 3 : 0) + (absenceSubject ? 1 : 0);
  if (AUTOMATED_BODY.test(text)) score += 2;
  if (ABSENCE_BODY.test(text)) score += 1;
  if (REDIRECT_BODY.test(text)) score += 1;
  // A person's own questions and length: autoresponders state, they do not ask.
  if (/\?\s*$/.test(subject.trim())) score -= 1;
  if (/\?(\s|$)/.test(text)) score -= 1;
  if (text.length > 1200) score -= 1;
  if (score < 2) return null;
  return automaticSubject || absenceSubject ? 'subject' : 'body';
}
