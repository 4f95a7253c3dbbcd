/** Verdict on one tracking hit. `reason` is a stable snake_case code that reports and tests rely on. */
export type Classification = {
  human: boolean;
  reason: ClassificationReason;
};

export type ClassificationReason =
  | 'human'
  | 'google_image_proxy'
  | 'yahoo_image_proxy'
  | 'apple_mpp'
  | 'scanner_ua'
  | 'scanner_ip'
  | 'automation_ua'
  | 'preview_bot'
  | 'missing_ua'
  | 'head_request'
  | 'too_soon_after_send'
  | 'honeypot'
  | 'link_burst';

export const human = (reason: ClassificationReason = 'human'): Classification => ({ human: true, reason });
export const machine = (reason: ClassificationReason): Classification => ({ human: false, reason });

/** Seconds between our send and the hit, or null when either time is unknown. */
export function secondsSinceSend(at: Date, sentAt: Date | null): number | null {
  if (!sentAt) return null;
  return (at.getTime() - sentAt.getTime()) / 1000;
}
