// Everything nurture holds about one person, as one JSON document (GDPR art. 15 and 20): the lead and
// account, enrollments, messages with their content (bodies are rendered at send time and not kept, so
// each is rendered again from its template, said so beside the version that was sent), signals with their
// evidence, stage moves, suppressions and the activity log. Reads only.
import { asc, eq, or } from 'drizzle-orm';
import type { Context } from '../context.js';
import { accounts, activity, advances, enrollments, leads, messages, signals, suppressions } from '../db/schema.js';
import { UseCaseError } from './errors.js';
import { previewTemplate, storedLeadContext } from './previewTemplate.js';
import { isEmail } from './inputs.js';

export interface LeadExport {
  format: 'nurture.lead-export/1';
  exportedAt: string;
  lead: Record<string, unknown>;
  account: Record<string, unknown> | null;
  enrollments: Record<string, unknown>[];
  messages: Record<string, unknown>[];
  signals: Record<string, unknown>[];
  stageMoves: Record<string, unknown>[];
  suppressions: Record<string, unknown>[];
  activity: Record<string, unknown>[];
}

export async function exportLead(ctx: Pick<Context, 'db' | 'now' | 'templates' | 'config' | 'settings'>, emailInput: string): Promise<LeadExport> {
  const email = emailInput.trim().toLowerCase();
  if (!isEmail(email)) throw new UseCaseError('invalid_email', `"${emailInput.slice(0, 100)}" is not an email address`, 'email');
  const [lead] = await ctx.db.select().from(leads).where(eq(leads.email, email));
  if (!lead) throw new UseCaseError('unknown_lead', `no lead with email ${email}`, 'email');
  const [account] = await ctx.db.select().from(accounts).where(eq(accounts.id, lead.accountId));
  const [enr, msgs, sigs, moves, sup, log] = await Promise.all([
    ctx.db.select().from(enrollments).where(eq(enrollments.leadId, lead.id)).orderBy(asc(enrollments.enteredAt)),
    ctx.db.select().from(messages).where(eq(messages.leadId, lead.id)).orderBy(asc(messages.queuedAt)),
    ctx.db.select().from(signals).where(eq(signals.leadId, lead.id)).orderBy(asc(signals.occurredAt)),
    ctx.db.select().from(advances).where(eq(advances.leadId, lead.id)).orderBy(asc(advances.at)),
    ctx.db.select().from(suppressions).where(eq(suppressions.email, email)),
    ctx.db.select().from(activity).where(or(eq(activity.leadId, lead.id), eq(activity.email, email))).orderBy(asc(activity.id)),
  ]);
  return {
    format: 'nurture.lead-export/1',
    exportedAt: ctx.now().toISOString(),
    lead,
    account: account ?? null,
    enrollments: enr,
    messages: await withContent(ctx, email, msgs),
    signals: sigs,
    stageMoves: moves,
    suppressions: sup,
    activity: log,
  };
}

/** Each message with what it said: rendered again for this person from its template, untracked. */
async function withContent(ctx: Pick<Context, 'db' | 'templates' | 'config' | 'settings'>, email: string, msgs: (typeof messages.$inferSelect)[]): Promise<Record<string, unknown>[]> {
  if (!msgs.length) return [];
  const renderCtx = await storedLeadContext(ctx.db, ctx.settings.publicUrl, email);
  const out: Record<string, unknown>[] = [];
  for (const m of msgs) {
    try {
      const r = await previewTemplate(ctx.templates, ctx.config.templatesDir, m.templateName, renderCtx, ctx.config);
      const content = { subject: m.subject ?? r.subject, text: r.text, html: r.html, renderedFrom: `template ${m.templateName} version ${r.version} (sent: ${m.templateVersion ?? 'not sent'})` };
      out.push({ ...m, content });
    } catch (err) {
      // A template removed since: the message's stored facts stay, and why there is no content.
      out.push({ ...m, content: null, contentUnavailable: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}
