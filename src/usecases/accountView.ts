// An account as a buying committee: its people by persona, who is engaged, the account's stage and
// what it still needs to reach the next stage the funnel defines for accounts. The console's account
// page and GET /v1/accounts/:domain.
import type { Context } from '../context.js';
import { accountAdvances, accountByKeyOrDomain, accountsPage, leadsOfAccount } from '../db/reads.js';
import { UseCaseError } from './errors.js';

export interface AccountView {
  account: { key: string; name: string; domain: string | null; industry: string | null; tier: string | null; stage: string | null; stageEnteredAt: string | null };
  personas: { persona: string; label: string; leads: number; engaged: number; people: { email: string; name: string | null; stage: string; status: string; engagedAt: string | null }[] }[];
  engagedLeads: number;
  /** The next stage accounts can reach, and what is still missing for it; null when none is configured beyond this one. */
  next: { stage: string; needs: { engagedLeads: number; personas: number }; has: { engagedLeads: number; personas: number }; missing: string[]; moveLeads: boolean } | null;
  advances: { from: string | null; to: string; rule: string; evidence: Record<string, unknown>; at: string }[];
}

export async function accountView(ctx: Pick<Context, 'db' | 'config'>, keyOrDomainInput: string): Promise<AccountView> {
  const keyOrDomain = keyOrDomainInput.trim().toLowerCase();
  if (!/^[\w.@-]{1,253}$/.test(keyOrDomain)) throw new UseCaseError('invalid_field', `"${keyOrDomainInput.slice(0, 100)}" is not an account key or domain`, 'domain');
  const account = await accountByKeyOrDomain(ctx.db, keyOrDomain);
  if (!account) throw new UseCaseError('unknown_account', `no account with key or domain ${keyOrDomain}`, 'domain');
  const [members, advances] = await Promise.all([leadsOfAccount(ctx.db, account.id), accountAdvances(ctx.db, account.id)]);
  const funnel = ctx.config.funnel;
  const byPersona = new Map<string, AccountView['personas'][number]>();
  for (const p of Object.keys(funnel.personas)) byPersona.set(p, { persona: p, label: funnel.personas[p]!.label, leads: 0, engaged: 0, people: [] });
  for (const m of members) {
    let g = byPersona.get(m.persona);
    if (!g) byPersona.set(m.persona, (g = { persona: m.persona, label: m.persona, leads: 0, engaged: 0, people: [] }));
    g.leads++;
    if (m.engagedAt) g.engaged++;
    g.people.push({ email: m.email, name: [m.firstName, m.lastName].filter(Boolean).join(' ') || null, stage: m.stage, status: m.status, engagedAt: m.engagedAt?.toISOString() ?? null });
  }
  const engaged = members.filter((m) => m.engagedAt);
  const engagedPersonas = new Set(engaged.map((m) => m.persona)).size;
  const at = account.stage ? funnel.stages.indexOf(account.stage) : -1;
  const upcoming = Object.entries(funnel.accounts.stages)
    .filter(([stage]) => funnel.stages.indexOf(stage) > at)
    .sort(([a], [b]) => funnel.stages.indexOf(a) - funnel.stages.indexOf(b))[0];
  let next: AccountView['next'] = null;
  if (upcoming) {
    const [stage, rule] = upcoming;
    const missing: string[] = [];
    if (engaged.length < rule.engagedLeads) missing.push(`${rule.engagedLeads - engaged.length} more engaged ${rule.engagedLeads - engaged.length === 1 ? 'person' : 'people'}`);
    if (engagedPersonas < rule.personas) {
      const quiet = [...byPersona.values()].filter((p) => p.engaged === 0).map((p) => p.persona);
      missing.push(`${rule.personas - engagedPersonas} more persona${rule.personas - engagedPersonas === 1 ? '' : 's'} engaged${quiet.length ? ` (none yet from ${quiet.join(', ')})` : ''}`);
    }
    next = { stage, needs: { engagedLeads: rule.engagedLeads, personas: rule.personas }, has: { engagedLeads: engaged.length, personas: engagedPersonas }, missing, moveLeads: rule.moveLeads };
  }
  return {
    account: { key: account.key, name: account.name, domain: account.domain, industry: account.industry, tier: account.tier, stage: account.stage, stageEnteredAt: account.stageEnteredAt?.toISOString() ?? null },
    personas: [...byPersona.values()],
    engagedLeads: engaged.length,
    next,
    advances: advances.map((a) => ({ from: a.fromStage, to: a.toStage, rule: a.rule, evidence: a.evidence, at: a.at.toISOString() })),
  };
}

/** Accounts by key, a page at a time; `next` is the key to pass as `after`. */
export async function listAccounts(ctx: Pick<Context, 'db'>, after: string | null, limit = 100) {
  const rows = await accountsPage(ctx.db, after, limit);
  return { accounts: rows, next: rows.length === limit ? rows.at(-1)!.key : null };
}
