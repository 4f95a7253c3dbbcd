import { networksOf, type AgentRule } from './agents.js';

/**
 * First rule in `rules` that matches the hit: its user agent matches the rule's pattern, the rule applies to
 * this kind of hit, and, when the rule names networks, the address is in one of them.
 */
export function matchAgent(
  rules: readonly AgentRule[],
  hit: { userAgent: string | null; ip: string | null },
  kind: 'open' | 'click',
): AgentRule | null {
  const ua = hit.userAgent?.trim() ?? '';
  if (!ua) return null;
  let networkIds: Set<string> | null = null;
  for (const rule of rules) {
    if (rule.appliesTo && rule.appliesTo !== kind) continue;
    if (!rule.ua.test(ua)) continue;
    if (rule.networks) {
      networkIds ??= new Set(networksOf(hit.ip).map((n) => n.network.id));
      if (!rule.networks.some((id) => networkIds!.has(id))) continue;
    }
    return rule;
  }
  return null;
}
