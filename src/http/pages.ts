// The unsubscribe page a person sees. A GET only shows the button; the POST does the work.
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function unsubscribePage(p: { email: string; done: boolean; action: string }): string {
  const body = p.done
    ? `<h1>You're unsubscribed</h1><p>${esc(p.email)} will get no more email from us. Sorry to see you go.</p>`
    : `<h1>Unsubscribe?</h1><p>Stop all email to <strong>${esc(p.email)}</strong>.</p>
       <form method="post" action="${esc(p.action)}"><button type="submit">Unsubscribe</button></form>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>Unsubscribe</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}button{font:inherit;padding:.5rem 1.25rem}</style>
</head><body>${body}</body></html>`;
}

/** The preference centre. Each choice is its own POST form; the GET that shows them changes nothing. */
export function preferencesPage(p: { email: string; preference: string; pausedUntil: Date | null; status: string; action: string; saved: boolean }): string {
  const form = (choice: string, label: string, extra = '') =>
    `<form method="post" action="${esc(p.action)}"><input type="hidden" name="choice" value="${choice}">${extra}<button type="submit" name="submit" value="${choice}">${esc(label)}</button></form>`;
  const now = p.pausedUntil && p.pausedUntil > new Date() ? `paused until ${p.pausedUntil.toISOString().slice(0, 10)}` : null;
  const state =
    p.status === 'unsubscribed' ? 'You are unsubscribed from everything.' : p.status !== 'active' ? `We don't send to this address (${esc(p.status)}).` : p.preference === 'rep_only' ? 'You hear only from your contact at our company, no newsletters.' : 'You get all our mail.';
  const pause = `<select name="days" aria-label="for how long">${[7, 30, 90].map((d) => `<option value="${d}">${d} days</option>`).join('')}</select> `;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>Email preferences</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}form{margin:.75rem 0}button,select{font:inherit;padding:.4rem 1rem}</style>
</head><body><h1>Email preferences</h1>${p.saved ? '<p role="status"><strong>Saved.</strong></p>' : ''}
<p>For <strong>${esc(p.email)}</strong>: <span id="state">${state}${now ? ` Mail is ${now}.` : ''}</span></p>
${form('pause', 'Pause all mail', pause)}
${form('rep_only', 'Only mail from my contact (no newsletters)')}
${p.status === 'unsubscribed' || p.preference !== 'all' || now ? form('all', 'Send me everything again') : ''}
${p.status === 'unsubscribed' ? '' : form('unsubscribe', 'Unsubscribe from everything')}
</body></html>`;
}
