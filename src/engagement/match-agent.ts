import type { AgentRule } from './agents.js';
import { ipInAny } from './ip.js';

/** First rule in `rules` that matches the hit, honouring `appliesTo`. */
export function matchAgent(
  rules: readonly AgentRule[],
  hit: { userAgent: string | null; ip: string | null },
  kind: 'open' | 'click',
): AgentRule | null {
  const ua = hit.userAgent?.trim() ?? '';
  for (const rule of rules) {
    if (rule.appliesTo && rule.appliesTo !== kind) continue;
    if (rule.ua && ua && rule.ua.test(ua)) return rule;
    if (rule.ips && ipInAny(hit.ip, rule.ips)) return rule;
  }
  return null;
}
