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
