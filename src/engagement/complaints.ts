/**
 * Feedback-loop complaints in the Abuse Reporting Format (RFC 5965: multipart/report;
 * report-type=feedback-report), as Yahoo, AOL, Microsoft's JMRP and other mailbox providers send them when a
 * person marks mail as spam. Pure over the parsed parts.
 */
import { headerFrom, normaliseMessageId, parseStatusFields } from './bounces.js';

export type ComplaintSource = {
  headers: Record<string, string>;
  /** Body of the message/feedback-report part. */
  feedbackReport: string | null;
  /** Header section of the message complained about (message/rfc822 or text/rfc822-headers part). */
  returnedHeaders: string | null;
};

export type Complaint = {
  /** An ARF report of any type. */
  isReport: boolean;
  /** A person said the mail was unwanted (abuse, fraud, other); not-spam, virus and auth-failure are not. */
  isComplaint: boolean;
  /** RFC 5965 §3.1 Feedback-Type, lower-cased. */
  feedbackType: string | null;
  /** Original-Rcpt-To, unless the provider redacted it (RFC 6590). */
  recipient: string | null;
  originalMessageId: string | null;
  /** Return-Path of the message complained about: our per-message envelope sender names it. */
  originalReturnPath: string | null;
  userAgent: string | null;
  sourceIp: string | null;
};

const COMPLAINT_TYPES = new Set(['abuse', 'fraud', 'other']);

const NOT_A_REPORT: Complaint = {
  isReport: false,
  isComplaint: false,
  feedbackType: null,
  recipient: null,
  originalMessageId: null,
  originalReturnPath: null,
  userAgent: null,
  sourceIp: null,
};

/** A usable address, or null when the provider redacted it ("redacted@…", "xxxxxxxx@…", a hash). */
function unredacted(value: string | undefined): string | null {
  const address = value?.replace(/^.*?</, '').replace(/>.*$/, '').trim().toLowerCase();
  if (!address || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) return null;
  const local = address.split('@')[0]!;
  if (/redacted|^x+$|^\*+$|^[0-9a-f]{32,}$/i.test(local)) return null;
  return address;
}

export function parseComplaint(mail: ComplaintSource): Complaint {
  const contentType = mail.headers['content-type']?.toLowerCase() ?? '';
  const isArf = contentType.includes('multipart/report') && contentType.includes('feedback-report');
  if (!isArf && !mail.feedbackReport) return NOT_A_REPORT;
  const fields = parseStatusFields(mail.feedbackReport ?? '')[0] ?? new Map<string, string>();
  const feedbackType = fields.get('feedback-type')?.trim().toLowerCase() ?? null;
  return {
    isReport: true,
    // A report without its machine-readable part is still the provider saying "spam" (the report type says so).
    isComplaint: feedbackType === null ? isArf : COMPLAINT_TYPES.has(feedbackType),
    feedbackType,
    recipient: unredacted(fields.get('original-rcpt-to')) ?? unredacted(headerFrom(mail.returnedHeaders, 'x-hmxmroriginalrecipient') ?? undefined),
    originalMessageId: normaliseMessageId(headerFrom(mail.returnedHeaders, 'message-id')),
    originalReturnPath: headerFrom(mail.returnedHeaders, 'return-path'),
    userAgent: fields.get('user-agent') ?? null,
    sourceIp: fields.get('source-ip') ?? null,
  };
}
