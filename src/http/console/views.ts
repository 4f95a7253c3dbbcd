// The console's pages: pure functions from what a use case read to HTML. Every value is escaped by the
// html tag; times are written in UTC inside <time> (the script shows them in the viewer's zone) and, where
// a lead is concerned, also as the lead read them.
import { html, trusted, type Html } from '../html.js';
import type { ActivityEvent, ActivityFilter, ActivityPage } from '../../usecases/activityFeed.js';
import type { LeadTimeline } from '../../usecases/leadTimeline.js';
import type { AccountView } from '../../usecases/accountView.js';
import type { SequenceView } from '../../usecases/sequencesView.js';
import type { QueueHealth } from '../../usecases/queueHealth.js';
import type { MessagePage, MessageSummary } from '../../usecases/messages.js';

export type Section = 'live' | 'leads' | 'sequences' | 'accounts' | 'attention' | 'queues' | 'login';

export interface Chrome {
  csrf: string;
  /** How the viewer got in; null on the sign-in page for a visitor. */
  via: 'loopback' | 'token' | 'session' | null;
  notice?: { text: string; error?: boolean } | null;
}

const NAV: [Section, string, string][] = [
  ['live', 'Live log', '/'],
  ['attention', 'Needs a person', '/attention'],
  ['sequences', 'Sequences', '/sequences'],
  ['accounts', 'Accounts', '/accounts'],
  ['queues', 'Queues', '/queues'],
];

export function layout(title: string, section: Section, chrome: Chrome, body: Html): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${title} · nurture</title>
<link rel="stylesheet" href="/console.css"><script src="/console.js" defer></script></head>
<body><header class="top"><a class="brand" href="/">nurture</a>
${chrome.via ? html`<nav>${NAV.map(([s, label, href]) => html`<a href="${href}" class="${s === section ? 'on' : ''}">${label}</a>`)}</nav>
<form class="search" method="get" action="/leads"><input type="search" name="q" placeholder="lead email" aria-label="Find a lead by email"><button class="secondary">Find</button></form>
${chrome.via === 'session' ? html`<form class="inline" method="post" action="/logout"><input type="hidden" name="_csrf" value="${chrome.csrf}"><button class="secondary">Sign out</button></form>` : ''}` : ''}
</header><main>
${chrome.notice ? html`<p class="notice ${chrome.notice.error ? 'error' : ''}" role="status">${chrome.notice.text}</p>` : ''}
${body}
</main></body></html>`.text;
}

// Pieces -----------------------------------------------------------------------------------------------

export const when = (iso: string | Date | null | undefined): Html => {
  if (!iso) return html`<span class="muted">–</span>`;
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  return html`<time datetime="${d.toISOString()}" data-local>${d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')}</time>`;
};

/** The time as the lead read it, in their zone. */
export function leadLocal(iso: string | Date, zone: string | null): Html {
  if (!zone) return html``;
  try {
    const text = new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(iso));
    return html`<div class="muted" title="the lead's time">${text} · ${zone}</div>`;
  } catch {
    return html``;
  }
}

export const leadLink = (email: string | null): Html => (email ? html`<a href="/leads/${encodeURIComponent(email)}">${email}</a>` : html`<span class="muted">–</span>`);
const accountLink = (key: string, label: string): Html => html`<a href="/accounts/${encodeURIComponent(key)}">${label}</a>`;

export function verdictBadge(v: { human: boolean; reason: string; provisional?: boolean; settled?: boolean } | null): Html {
  if (!v) return html``;
  const provisional = v.provisional ?? v.settled === false;
  const label = v.human ? 'human' : 'machine';
  // The rule that decided, unless it only repeats the verdict.
  const why = v.reason && v.reason !== label ? ` · ${v.reason}` : '';
  return html`<span class="badge ${label}" title="${v.human ? 'a person' : 'a machine'}: ${v.reason}">${label}${why}</span>${provisional && v.human ? html` <span class="badge pend" title="counts once settled: later hits may still show it was a scanner">provisional</span>` : ''}`;
}

const STATUS_CLASS: Record<string, string> = { sent: 'ok', bounced: 'bad', failed: 'bad', uncertain: 'pend', held: 'machine', cancelled: '', queued: '', sending: 'pend' };
export const statusBadge = (s: string): Html => html`<span class="badge ${STATUS_CLASS[s] ?? ''}">${s}</span>`;

const num = (n: number | null | undefined) => (n === null || n === undefined ? '–' : String(n));
const pct = (r: number | null) => (r === null ? '–' : `${(r * 100).toFixed(1)}%`);

function json(value: unknown): Html {
  if (!value || (typeof value === 'object' && !Object.keys(value).length)) return html`<span class="muted">–</span>`;
  return html`<pre>${JSON.stringify(value, null, 2)}</pre>`;
}

const csrfField = (csrf: string) => html`<input type="hidden" name="_csrf" value="${csrf}">`;

// Live log ---------------------------------------------------------------------------------------------

export function activityRow(e: ActivityEvent): Html {
  const where = [e.sequence, e.step].filter(Boolean).join(' / ');
  return html`<tr data-id="${e.id}" data-kind="${e.kind}">
<td data-label="when">${when(e.at)}${leadLocal(e.at, e.zone)}</td>
<td data-label="lead">${leadLink(e.lead)}${e.account ? html`<div class="muted">${e.account}</div>` : ''}</td>
<td data-label="where">${where || html`<span class="muted">–</span>`}</td>
<td data-label="kind"><span class="badge">${e.kind}</span> ${verdictBadge(e.verdict)}</td>
<td data-label="detail">${e.detail}</td></tr>`;
}

export function liveLogPage(page: ActivityPage, filter: ActivityFilter, stream: string, chrome: Chrome): string {
  const f = (v: string | undefined) => v ?? '';
  const rows = [...page.events].reverse();
  const body = html`<h1>Live log</h1>
<form class="filters" method="get" action="/">
<label>lead<input name="lead" type="email" value="${f(filter.lead)}" placeholder="ada@example.com"></label>
<label>account<input name="account" value="${f(filter.account)}" placeholder="example.com"></label>
<label>sequence<input name="sequence" value="${f(filter.sequence)}"></label>
<label>step<input name="step" value="${f(filter.step)}"></label>
<label>kind<input name="kind" value="${filter.kinds?.join(',') ?? ''}" placeholder="sent,click,reply"></label>
<button>Filter</button> <a href="/">clear</a></form>
<div class="live"><span id="live-dot" class="dot"></span><span id="live-state" class="muted">live updates need JavaScript; reload to see new events</span>
<button id="live-toggle" type="button" class="secondary" hidden>Pause</button></div>
<div class="scroll"><table id="live-log" class="stack" data-stream="${stream}">
<thead><tr><th>when (yours · the lead's)</th><th>lead</th><th>sequence / step</th><th>kind</th><th>what happened</th></tr></thead>
<tbody>${rows.length ? rows.map(activityRow) : html`<tr class="empty"><td colspan="5" class="muted">Nothing yet: events appear here as they happen.</td></tr>`}</tbody></table></div>
${page.older ? html`<p><a href="/?${new URLSearchParams({ ...filterParams(filter), before: String(page.older) }).toString()}">older events</a></p>` : ''}`;
  return layout('Live log', 'live', chrome, body);
}

export function filterParams(f: ActivityFilter): Record<string, string> {
  return Object.fromEntries(
    Object.entries({ lead: f.lead, account: f.account, sequence: f.sequence, step: f.step, kind: f.kinds?.join(',') }).filter((e): e is [string, string] => !!e[1]),
  );
}

// Lead -------------------------------------------------------------------------------------------------

export function leadPage(t: LeadTimeline, chrome: Chrome): string {
  const { lead, account } = t;
  const path = `/leads/${encodeURIComponent(lead.email)}`;
  const active = t.enrollments.filter((e) => e.state === 'active');
  const body = html`<h1>${lead.name ?? lead.email} <span class="muted">${lead.name ? lead.email : ''}</span></h1>
<div class="grid">
<div class="card"><dl class="facts">
<dt>account</dt><dd>${accountLink(account.key, account.name)} <span class="muted">${account.stage ?? ''}</span></dd>
<dt>persona</dt><dd>${lead.persona}${lead.title ? html` · ${lead.title}` : ''}</dd>
<dt>stage</dt><dd><strong>${lead.stage}</strong> since ${when(lead.stageEnteredAt)}</dd>
<dt>status</dt><dd>${lead.status === 'active' ? html`<span class="badge ok">active</span>` : html`<span class="badge bad">${lead.status}</span>`}</dd>
<dt>owner</dt><dd>${lead.owner ? html`${lead.owner.name} &lt;${lead.owner.email}&gt;` : html`<span class="muted">–</span>`}</dd>
<dt>zone</dt><dd>${lead.zone}</dd>
</dl></div>
<div class="card"><dl class="facts">
<dt>score</dt><dd><strong>${lead.score}</strong> <span class="muted">in this stage, settled signals only</span></dd>
<dt>value pieces</dt><dd>${lead.valuePieces.length ? lead.valuePieces.map((p) => html`<span class="badge">${p}</span> `) : html`<span class="muted">none yet</span>`}</dd>
<dt>replied</dt><dd>${when(lead.repliedAt)}</dd>
<dt>engaged</dt><dd>${when(lead.engagedAt)}</dd>
<dt>suppressed</dt><dd>${t.suppression ? html`<span class="badge bad">${t.suppression.reason}</span> ${t.suppression.source} · ${when(t.suppression.since)}` : html`<span class="muted">no</span>`}</dd>
</dl></div></div>

<h2>Enrollments</h2>
${t.enrollments.length ? html`<div class="scroll"><table class="stack"><thead><tr><th>sequence</th><th>state</th><th>next step</th><th>due (yours · the lead's)</th><th>why it waits</th><th>sent so far</th><th></th></tr></thead><tbody>
${t.enrollments.map(
  (e) => html`<tr><td data-label="sequence">${e.sequence} <span class="muted">v${e.version.slice(0, 8)}</span></td>
<td data-label="state">${e.state === 'active' ? html`<span class="badge ok">active</span>` : html`<span class="badge">${e.state}</span>${e.exitReason ? html` <span class="muted">${e.exitReason}</span>` : ''}`}</td>
<td data-label="next">${e.nextStep ?? html`<span class="muted">–</span>`}</td>
<td data-label="due">${when(e.dueAt)}${e.dueLocal ? html`<div class="muted">${e.dueLocal}</div>` : ''}</td>
<td data-label="waiting">${e.waiting ?? html`<span class="muted">–</span>`}</td>
<td data-label="sent">${e.stepsSent.join(', ') || html`<span class="muted">–</span>`}</td>
<td>${e.state === 'active'
    ? html`${e.releasable ? html`<form class="inline" method="post" action="${path}/release">${csrfField(chrome.csrf)}<input type="hidden" name="step" value="${e.releasable}"><input name="reason" required maxlength="500" placeholder="why now?" aria-label="why it goes out now"><button>Send now</button></form>` : ''}
<form class="inline" method="post" action="${path}/exit">${csrfField(chrome.csrf)}<input type="hidden" name="sequence" value="${e.sequence}"><label class="muted"><input type="checkbox" name="confirm" value="yes" required> sure</label><button class="danger">Exit</button></form>`
    : ''}</td></tr>`,
)}</tbody></table></div>` : html`<p class="muted">Not enrolled in any sequence.</p>`}
${active.length > 1 ? html`<form class="inline" method="post" action="${path}/exit">${csrfField(chrome.csrf)}<label class="muted"><input type="checkbox" name="confirm" value="yes" required> exit every sequence</label><button class="danger">Exit all</button></form>` : ''}

<h2>Messages</h2>
${t.messages.length ? html`<div class="scroll"><table class="stack" id="messages"><thead><tr><th>queued</th><th>sequence / step</th><th>subject</th><th>state</th><th>sent</th><th>the relay's reply</th></tr></thead><tbody>
${t.messages.map(
  (m) => html`<tr id="m-${m.id}"><td data-label="queued">${when(m.queuedAt)}</td><td data-label="where">${m.sequence} / ${m.step}</td>
<td data-label="subject">${m.subject ?? html`<span class="muted">–</span>`}<div class="muted mono">&lt;${m.messageId}&gt;</div></td>
<td data-label="state">${statusBadge(m.status)}${m.attempts > 1 ? html` <span class="muted">${m.attempts} attempts</span>` : ''}${m.status === 'uncertain' ? html` <a href="/attention#m-${m.id}">settle</a>` : ''}</td>
<td data-label="sent">${when(m.sentAt)}${m.sentAt ? leadLocal(m.sentAt, lead.zone) : ''}</td>
<td data-label="reply"><span class="mono">${m.relayReply ?? m.error ?? '–'}</span>${m.error && m.relayReply && m.error !== m.relayReply ? html`<div class="muted">${m.error}</div>` : ''}</td></tr>`,
)}</tbody></table></div>` : html`<p class="muted">No messages yet.</p>`}

<h2>Signals</h2>
${t.signals.length ? html`<div class="scroll"><table class="stack" id="signals"><thead><tr><th>when</th><th>kind</th><th>verdict</th><th>sequence / step</th><th>evidence</th></tr></thead><tbody>
${t.signals.map(
  (s) => html`<tr><td data-label="when">${when(s.at)}${leadLocal(s.at, lead.zone)}</td><td data-label="kind"><span class="badge">${s.kind}</span>${s.link ? html` <span class="muted">link ${s.link}</span>` : ''}${s.tag ? html` <span class="muted">${s.tag}</span>` : ''}</td>
<td data-label="verdict">${verdictBadge(s)}${!s.settled && s.settlesAt ? html`<div class="muted">settles ${when(s.settlesAt)}</div>` : ''}</td>
<td data-label="where">${[s.sequence, s.step].filter(Boolean).join(' / ') || '–'}</td>
<td data-label="evidence"><details><summary>evidence</summary>${json(s.evidence)}</details></td></tr>`,
)}</tbody></table></div>` : html`<p class="muted">No opens, clicks or replies yet.</p>`}

<h2>Score over time</h2>
${t.score.length ? html`<div class="scroll"><table><thead><tr><th>when</th><th>signal</th><th class="num">score</th><th></th></tr></thead><tbody>
${t.score.map((p) => html`<tr><td>${when(p.at)}</td><td>${p.signal}</td><td class="num">${p.score}</td><td><meter min="0" max="${Math.max(...t.score.map((x) => x.score), 1)}" value="${p.score}">${p.score}</meter></td></tr>`)}
</tbody></table></div>` : html`<p class="muted">No settled signal has moved the score in this stage.</p>`}

<h2>Stage moves</h2>
${t.advances.length ? html`<div class="scroll"><table class="stack"><thead><tr><th>when</th><th>move</th><th>rule</th><th>evidence</th></tr></thead><tbody>
${t.advances.map((a) => html`<tr><td data-label="when">${when(a.at)}</td><td data-label="move">${a.scope === 'account' ? html`<span class="badge">account</span> ` : ''}${a.from ?? '(new)'} → <strong>${a.to}</strong></td><td data-label="rule"><code>${a.rule}</code></td><td data-label="evidence">${json(a.evidence)}</td></tr>`)}
</tbody></table></div>` : html`<p class="muted">No stage moves yet.</p>`}

${t.suppression || lead.status !== 'active'
    ? html`<h2>Resubscribe</h2><form class="card" method="post" action="${path}/resubscribe">${csrfField(chrome.csrf)}
<p>Mail to ${lead.email} is stopped (${t.suppression?.reason ?? lead.status}). Take that back only for a reason you can stand behind: it is kept in the log.</p>
<label>Reason <input name="reason" required maxlength="500" size="50" placeholder="asked on the phone to hear from us again"></label> <button class="danger">Resubscribe</button></form>`
    : ''}

<h2>Log</h2>
<div class="scroll"><table class="stack"><thead><tr><th>when</th><th>lead</th><th>where</th><th>kind</th><th>what happened</th></tr></thead>
<tbody>${[...t.activity.events].reverse().map(activityRow)}</tbody></table></div>
<p><a href="/?lead=${encodeURIComponent(lead.email)}">follow this lead live</a></p>`;
  return layout(lead.email, 'leads', chrome, body);
}

export function leadSearchPage(q: string, found: { email: string; firstName: string | null; lastName: string | null; stage: string; persona: string; status: string; account: string }[], chrome: Chrome): string {
  const body = html`<h1>Leads</h1>
<form class="filters" method="get" action="/leads"><label>email begins with<input name="q" value="${q}" autofocus></label><button>Find</button></form>
${q ? (found.length ? html`<div class="scroll"><table class="stack"><thead><tr><th>lead</th><th>name</th><th>account</th><th>persona</th><th>stage</th><th>status</th></tr></thead><tbody>
${found.map((l) => html`<tr><td>${leadLink(l.email)}</td><td>${[l.firstName, l.lastName].filter(Boolean).join(' ')}</td><td>${l.account}</td><td>${l.persona}</td><td>${l.stage}</td><td>${l.status}</td></tr>`)}
</tbody></table></div>` : html`<p class="muted">No lead's email begins with that.</p>`) : ''}`;
  return layout('Leads', 'leads', chrome, body);
}

// Sequences --------------------------------------------------------------------------------------------

export function sequencesPage(list: SequenceView[], chrome: Chrome): string {
  const body = html`<h1>Sequences</h1>
<p class="muted">Distinct messages. Opens and clicks are people's, settled; machines (proxies, prefetch, scanners) are counted apart.</p>
${list.map(
  (s) => html`<section class="card" id="seq-${s.id}"><h2>${s.name ?? s.id} <span class="muted">${s.id}${s.mode ? ` · ${s.mode}` : ''}${s.stage ? ` · ${s.stage}` : ''}${s.version ? '' : ' · no longer in config/'}</span></h2>
<p>${s.enrollments.active} active · ${s.enrollments.completed} completed · ${s.enrollments.exited} exited ·
advanced afterwards: <strong>${s.advancement.advanced}</strong> of ${s.advancement.enrolled} (${pct(s.advancement.rate)}), median ${s.advancement.medianDays === null ? '–' : `${s.advancement.medianDays} days`}</p>
<div class="scroll"><table><thead><tr><th>step</th><th class="num">waiting here</th><th class="num">sent</th><th class="num">opens</th><th class="num">open %</th><th class="num">machine opens</th><th class="num">clicks</th><th class="num">click %</th><th class="num">bot clicks</th><th class="num">replies</th><th class="num">unsubs</th><th class="num">bounces</th></tr></thead><tbody>
${s.steps.map((st) => html`<tr><td>${st.step} <span class="muted">${st.type ?? 'removed'}</span></td><td class="num">${st.activeHere}</td><td class="num">${st.sent}</td><td class="num">${st.humanOpens}</td><td class="num">${pct(st.openRate)}</td><td class="num">${st.machineOpens}</td><td class="num">${st.humanClicks}</td><td class="num">${pct(st.clickRate)}</td><td class="num">${st.botClicks}</td><td class="num">${st.replies}</td><td class="num">${st.unsubscribes}</td><td class="num">${st.bounced}</td></tr>`)}
<tr class="total"><td>total</td><td class="num">${s.enrollments.active}</td><td class="num">${s.totals.sent}</td><td class="num">${s.totals.humanOpens}</td><td class="num">${pct(s.totals.openRate)}</td><td class="num">${s.totals.machineOpens}</td><td class="num">${s.totals.humanClicks}</td><td class="num">${pct(s.totals.clickRate)}</td><td class="num">${s.totals.botClicks}</td><td class="num">${s.totals.replies}</td><td class="num">${s.totals.unsubscribes}</td><td class="num">${s.totals.bounced}</td></tr>
</tbody></table></div>
<details><summary>${s.versions.length} version${s.versions.length === 1 ? '' : 's'}</summary><ul>${s.versions.map((v) => html`<li><code>${v.version.slice(0, 12)}</code> loaded ${when(v.loadedAt)} · ${v.steps} steps${v.live ? html` <span class="badge ok">live</span>` : ''}</li>`)}</ul></details>
<p><a href="/?sequence=${encodeURIComponent(s.id)}">live log of this sequence</a></p></section>`,
)}`;
  return layout('Sequences', 'sequences', chrome, body);
}

// Accounts ---------------------------------------------------------------------------------------------

export function accountsPage(list: { key: string; name: string; domain: string | null; stage: string | null; leads: number; engaged: number }[], next: string | null, chrome: Chrome): string {
  const body = html`<h1>Accounts</h1>
<div class="scroll"><table class="stack"><thead><tr><th>account</th><th>domain</th><th>stage</th><th class="num">people</th><th class="num">engaged</th></tr></thead><tbody>
${list.length ? list.map((a) => html`<tr><td data-label="account">${accountLink(a.key, a.name)}</td><td data-label="domain">${a.domain ?? '–'}</td><td data-label="stage">${a.stage ?? '–'}</td><td class="num" data-label="people">${a.leads}</td><td class="num" data-label="engaged">${a.engaged}</td></tr>`) : html`<tr><td colspan="5" class="muted">No accounts yet.</td></tr>`}
</tbody></table></div>${next ? html`<p><a href="/accounts?after=${encodeURIComponent(next)}">more</a></p>` : ''}`;
  return layout('Accounts', 'accounts', chrome, body);
}

export function accountPage(v: AccountView, chrome: Chrome): string {
  const a = v.account;
  const body = html`<h1>${a.name} <span class="muted">${a.domain ?? a.key}</span></h1>
<div class="grid"><div class="card"><dl class="facts">
<dt>stage</dt><dd><strong>${a.stage ?? '(none yet)'}</strong>${a.stageEnteredAt ? html` since ${when(a.stageEnteredAt)}` : ''}</dd>
<dt>engaged people</dt><dd>${v.engagedLeads}</dd>
<dt>industry · tier</dt><dd>${a.industry ?? '–'} · ${a.tier ?? '–'}</dd></dl></div>
<div class="card">${v.next
    ? html`<p>Next: <strong>${v.next.stage}</strong> needs ${v.next.needs.engagedLeads} engaged people across ${v.next.needs.personas} personas; it has ${v.next.has.engagedLeads} across ${v.next.has.personas}.</p>
${v.next.missing.length ? html`<p>Still needs: ${v.next.missing.join('; ')}.</p>` : html`<p><span class="badge ok">met</span> it moves at the next engagement.</p>`}`
    : html`<p class="muted">No further account stage is configured (funnel.yaml accounts.stages).</p>`}</div></div>
<h2>Buying committee</h2>
<div class="scroll"><table class="stack"><thead><tr><th>persona</th><th class="num">people</th><th class="num">engaged</th><th>who</th></tr></thead><tbody>
${v.personas.map((p) => html`<tr><td data-label="persona">${p.label} <span class="muted">${p.persona}</span></td><td class="num" data-label="people">${p.leads}</td><td class="num" data-label="engaged">${p.engaged ? html`<span class="badge human">${p.engaged}</span>` : '0'}</td>
<td data-label="who">${p.people.length ? p.people.map((m) => html`<div>${leadLink(m.email)} <span class="muted">${m.name ?? ''} · ${m.stage}${m.status !== 'active' ? ` · ${m.status}` : ''}</span>${m.engagedAt ? html` <span class="badge human">engaged</span>` : ''}</div>`) : html`<span class="muted">nobody yet</span>`}</td></tr>`)}
</tbody></table></div>
<h2>Account stage moves</h2>
${v.advances.length ? html`<ul>${v.advances.map((x) => html`<li>${when(x.at)}: ${x.from ?? '(new)'} → <strong>${x.to}</strong> by <code>${x.rule}</code> ${json(x.evidence)}</li>`)}</ul>` : html`<p class="muted">None yet.</p>`}
<p><a href="/?account=${encodeURIComponent(a.domain ?? a.key)}">live log of this account</a></p>`;
  return layout(a.name, 'accounts', chrome, body);
}

// Needs a person ---------------------------------------------------------------------------------------

type Flagged = MessagePage['messages'][number];

function known(m: Flagged): Html {
  const human = (m.signals ?? []).filter((s) => s.human);
  return html`${m.lastReply ? html`<div class="mono">${m.lastReply}</div>` : html`<div class="muted">no reply from the relay recorded</div>`}
${m.signals?.length ? html`<div>${human.length ? html`<span class="badge human">opened or clicked by the recipient: it arrived</span>` : html`<span class="badge machine">${m.signals.length} machine hit(s): not proof</span>`}</div>` : ''}`;
}

function flaggedTable(list: Flagged[], actions: (m: Flagged) => Html): Html {
  if (!list.length) return html`<p class="muted">None.</p>`;
  return html`<div class="scroll"><table class="stack"><thead><tr><th>lead</th><th>sequence / step</th><th>subject</th><th>since</th><th class="num">attempts</th><th>what is known</th><th></th></tr></thead><tbody>
${list.map((m) => html`<tr id="m-${m.id}" data-message="${m.id}"><td data-label="lead">${leadLink(m.email)}<div class="muted">${m.accountName ?? ''}</div></td><td data-label="where">${m.sequenceId} / ${m.stepId}</td>
<td data-label="subject">${m.subject ?? '–'}<div class="muted mono">&lt;${m.messageId}&gt;</div></td><td data-label="since">${when(m.sendingAt ?? m.queuedAt)}</td><td class="num" data-label="attempts">${m.attempts}</td>
<td data-label="known">${known(m)}</td><td>${actions(m)}</td></tr>`)}
</tbody></table></div>`;
}

export function attentionPage(n: Record<'uncertain' | 'held' | 'failed', Flagged[]>, chrome: Chrome): string {
  const body = html`<h1>Needs a person</h1>
<h2>Uncertain <span class="badge pend">${n.uncertain.length}</span></h2>
<p class="muted">The relay may or may not have taken these: nurture never resends one on its own (a duplicate costs more trust than a gap). Check the relay's log, then decide.</p>
${flaggedTable(n.uncertain, (m) => html`<a href="/messages/${m.id}/settle?decision=resend">Resend…</a> · <a href="/messages/${m.id}/settle?decision=mark_sent">Mark sent…</a>`)}
<h2>Held <span class="badge machine">${n.held.length}</span></h2>
<p class="muted">A value the template needs is missing. Fix the lead in your CRM: the next update sends these.</p>
${flaggedTable(n.held, (m) => html`<a href="/leads/${encodeURIComponent(m.email)}#m-${m.id}">open lead</a>`)}
<h2>Failed <span class="badge bad">${n.failed.length}</span></h2>
<p class="muted">The relay kept refusing until the retry schedule ran out.</p>
${flaggedTable(n.failed, (m) => html`<a href="/leads/${encodeURIComponent(m.email)}#m-${m.id}">open lead</a>`)}`;
  return layout('Needs a person', 'attention', chrome, body);
}

export function settleConfirmPage(m: Flagged, decision: 'resend' | 'mark_sent', chrome: Chrome): string {
  const body = html`<h1>${decision === 'resend' ? 'Resend this message?' : 'Mark this message sent?'}</h1>
<div class="card"><dl class="facts">
<dt>to</dt><dd>${leadLink(m.email)}</dd><dt>sequence / step</dt><dd>${m.sequenceId} / ${m.stepId}</dd>
<dt>subject</dt><dd>${m.subject ?? '–'}</dd><dt>Message-ID</dt><dd class="mono">&lt;${m.messageId}&gt;</dd>
<dt>handed to the relay</dt><dd>${when(m.sendingAt)}</dd><dt>state</dt><dd>${statusBadge(m.status)}</dd>
<dt>what is known</dt><dd>${known(m)}</dd></dl></div>
<p>${decision === 'resend'
    ? 'It goes back to the queue with the same Message-ID, so a copy that did arrive threads with the new one. If the first one arrived, the person gets it twice.'
    : 'It is recorded as delivered, as of when it was handed to the relay. If it did not arrive, the person never gets it.'}</p>
<form method="post" action="/messages/${m.id}/settle">${csrfField(chrome.csrf)}<input type="hidden" name="decision" value="${decision}">
<button class="${decision === 'resend' ? 'danger' : ''}">${decision === 'resend' ? 'Yes, resend it' : 'Yes, mark it sent'}</button> <a href="/attention">cancel</a></form>`;
  return layout('Settle a message', 'attention', chrome, body);
}

// Queues -----------------------------------------------------------------------------------------------

export function queuesPage(h: QueueHealth, chrome: Chrome): string {
  const r = h.reconcile;
  const body = html`<h1>Queues</h1>
<p class="muted">Redis holds work in flight only; Postgres can rebuild every job (reconcile does, every run).</p>
<div class="scroll"><table class="stack"><thead><tr><th>queue</th><th class="num">waiting</th><th class="num">delayed</th><th class="num">active</th><th class="num">failed</th><th>due longest</th><th>next delayed</th></tr></thead><tbody>
${h.queues.map((q) => html`<tr><td data-label="queue"><strong>${q.name}</strong></td><td class="num" data-label="waiting">${q.counts.waiting + q.counts.prioritized}</td><td class="num" data-label="delayed">${q.counts.delayed}</td><td class="num" data-label="active">${q.counts.active}</td>
<td class="num" data-label="failed">${q.counts.failed ? html`<span class="badge bad">${q.counts.failed}</span>` : '0'}</td>
<td data-label="due longest">${q.oldestDue ? html`${q.oldestDue.waitingSeconds} s <span class="muted mono">${q.oldestDue.id}</span>` : html`<span class="muted">–</span>`}</td>
<td data-label="next delayed">${q.nextDelayed ? when(q.nextDelayed.dueAt) : html`<span class="muted">–</span>`}</td></tr>`)}
</tbody></table></div>
<h2>Reconcile</h2>
<div class="card">${r.last
    ? html`<p>Last run ${when(r.last.finishedAt)} ${r.last.ok ? html`<span class="badge ok">ok</span>` : html`<span class="badge bad">failed</span>`}${r.last.tookMs !== null ? ` in ${r.last.tookMs} ms` : ''}${r.last.error ? html`: ${r.last.error}` : ''}</p>${json(r.last.result)}`
    : html`<p class="muted">No run kept in Redis yet (are the workers running?).</p>`}
<p class="muted">${r.everySeconds ? `every ${r.everySeconds} s` : 'no schedule found'}${r.nextAt ? html` · next ${when(r.nextAt)}` : ''} · runs kept: ${r.keptRuns.ok} ok, ${r.keptRuns.failed} failed</p></div>
${h.mailboxes.length
    ? html`<h2>Mailboxes</h2>
<div class="scroll"><table class="stack"><thead><tr><th>rep's mailbox</th><th>state</th><th>since</th><th>last error</th><th>next retry</th></tr></thead><tbody>
${h.mailboxes.map((m) => html`<tr><td data-label="rep's mailbox"><strong>${m.address}</strong> <span class="muted">${[m.sends ? 'sends' : '', m.reads ? 'reads' : ''].filter(Boolean).join(' · ')}</span></td>
<td data-label="state">${m.state === 'watching' ? html`<span class="badge ok">watching</span>` : m.state === 'retrying' ? html`<span class="badge bad">retrying</span> <span class="muted">${m.failures} failed</span>` : html`<span class="badge">${m.state.replace('_', ' ')}</span>`}</td>
<td data-label="since">${m.connectedAt ? when(m.connectedAt) : html`<span class="muted">–</span>`}</td>
<td data-label="last error">${m.lastError ? html`${m.lastError} <span class="muted">${m.lastErrorAt ? when(m.lastErrorAt) : ''}</span>` : html`<span class="muted">–</span>`}</td>
<td data-label="next retry">${m.nextRetryAt ? when(m.nextRetryAt) : html`<span class="muted">–</span>`}</td></tr>`)}
</tbody></table></div>`
    : ''}
<h2>Failed jobs</h2>
${h.queues.some((q) => q.failed.length)
    ? html`<div class="scroll"><table class="stack"><thead><tr><th>queue</th><th>job</th><th>failed</th><th class="num">attempts</th><th>error</th></tr></thead><tbody>
${h.queues.flatMap((q) => q.failed.map((j) => html`<tr><td data-label="queue">${q.name}</td><td data-label="job" class="mono">${j.id}</td><td data-label="failed">${when(j.failedAt)}</td><td class="num" data-label="attempts">${j.attempts}</td><td data-label="error">${j.error}</td></tr>`))}
</tbody></table></div>`
    : html`<p class="muted">None.</p>`}`;
  return layout('Queues', 'queues', chrome, body);
}

// Sign-in ----------------------------------------------------------------------------------------------

export function signInPage(o: { next: string; tokenConfigured: boolean; failed?: boolean; csrf: string }): string {
  const body = html`<h1>Sign in</h1>
${o.tokenConfigured
    ? html`<p>The console is for the operator. From another machine, sign in with the admin token (ADMIN_TOKEN).</p>
${o.failed ? html`<p class="notice error">That is not the admin token.</p>` : ''}
<form class="card" method="post" action="/login">${csrfField(o.csrf)}<input type="hidden" name="next" value="${o.next}">
<label>Admin token <input type="password" name="token" required autocomplete="current-password" size="40"></label> <button>Sign in</button></form>
<p class="muted">The session cookie is Secure: reach the console over HTTPS.</p>`
    : html`<p>The console is available from this machine only: set ADMIN_TOKEN to sign in from elsewhere.</p>`}`;
  return layout('Sign in', 'login', { csrf: o.csrf, via: null }, body);
}

export const errorPage = (title: string, message: string, chrome: Chrome): string => layout(title, 'live', chrome, html`<h1>${title}</h1><p>${message}</p><p><a href="/">back to the live log</a></p>`);

export { trusted };
export type { MessageSummary };
