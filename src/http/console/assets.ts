// The console's stylesheet and script, served as files (/console.css, /console.js) so the pages can
// forbid inline script and style (Content-Security-Policy). The pages read fine without the script:
// it only turns UTC times into the viewer's own, and keeps the live log live.
export const CONSOLE_CSS = `
:root{--bg:#f7f7f5;--fg:#1d1d1b;--muted:#6b6b66;--line:#e2e1dc;--card:#fff;--accent:#2457c5;--human:#17753a;--human-bg:#e3f4e8;--machine:#7a5a00;--machine-bg:#fbf0d0;--bad:#a52a1a;--bad-bg:#fbe5e1;--pend:#5b4bb7;--pend-bg:#ebe8fb}
@media (prefers-color-scheme:dark){:root{--bg:#161615;--fg:#ecebe6;--muted:#a19f97;--line:#2f2e2b;--card:#1f1f1d;--accent:#7ea3ff;--human:#7fd69a;--human-bg:#1d3424;--machine:#f0c866;--machine-bg:#3a3017;--bad:#ff9b8a;--bad-bg:#3d1f1a;--pend:#b9aefc;--pend-bg:#2b2747}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header.top .brand{font-weight:700;margin-right:.5rem}
header.top nav{display:flex;flex-wrap:wrap;gap:.1rem .9rem}
header.top nav a{color:var(--fg);padding:.15rem 0;border-bottom:2px solid transparent}
header.top nav a.on{border-color:var(--accent);font-weight:600}
header.top form.search{margin-left:auto;display:flex;gap:.3rem}
main{padding:1rem;max-width:88rem;margin:0 auto}
h1{font-size:1.35rem;margin:.2rem 0 .8rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.muted{color:var(--muted);font-size:.85em}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem;margin:.6rem 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));gap:.6rem}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .9rem;margin:0}.facts dt{color:var(--muted)}.facts dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:8px}
th,td{text-align:left;padding:.4rem .55rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);font-weight:600;background:var(--bg)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:650;background:var(--bg)}
tr.new{animation:flash 2s ease-out}@keyframes flash{from{background:var(--pend-bg)}to{background:transparent}}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:999px;font-size:.78rem;font-weight:600;white-space:nowrap;background:var(--line)}
.human{background:var(--human-bg);color:var(--human)}.machine{background:var(--machine-bg);color:var(--machine)}
.bad{background:var(--bad-bg);color:var(--bad)}.pend{background:var(--pend-bg);color:var(--pend)}
.ok{background:var(--human-bg);color:var(--human)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.2rem 0;font-size:.8rem;max-height:14rem;overflow:auto}
form.filters{display:flex;flex-wrap:wrap;gap:.4rem;align-items:end;margin:.4rem 0 .8rem}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted)}
input,select,textarea,button{font:inherit;padding:.3rem .5rem;border:1px solid var(--line);border-radius:6px;background:var(--card);color:var(--fg)}
button{cursor:pointer;background:var(--accent);color:#fff;border-color:var(--accent)}
button.secondary{background:var(--card);color:var(--fg);border-color:var(--line)}
button.danger{background:var(--bad);border-color:var(--bad)}
form.inline{display:inline-flex;gap:.3rem;flex-wrap:wrap;align-items:center;margin:.15rem 0}
.notice{padding:.6rem .9rem;border-radius:8px;background:var(--human-bg);color:var(--human);margin:.5rem 0}
.notice.error{background:var(--bad-bg);color:var(--bad)}
.live{display:flex;align-items:center;gap:.6rem;margin:.3rem 0}
.dot{width:.6rem;height:.6rem;border-radius:50%;background:var(--muted);display:inline-block}
.dot.on{background:var(--human)}.dot.off{background:var(--bad)}
details summary{cursor:pointer;color:var(--accent)}
.bar{display:inline-block;height:.5rem;background:var(--accent);border-radius:2px;vertical-align:middle}
@media (max-width:700px){
  main{padding:.6rem}
  table.stack thead{display:none}
  table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
  table.stack tr{border-bottom:1px solid var(--line);padding:.35rem 0}
  table.stack td{border:0;padding:.1rem .55rem}
  table.stack td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-size:.8em}
  header.top form.search{margin-left:0;width:100%}header.top form.search input{flex:1}
}
`;

export const CONSOLE_JS = `(() => {
  'use strict';
  const fmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
  // Times arrive in UTC; show them in the viewer's zone (the UTC time stays in the tooltip).
  function localize(root) {
    root.querySelectorAll('time[data-local]').forEach((t) => {
      const d = new Date(t.getAttribute('datetime'));
      if (!isNaN(d.getTime())) { t.title = t.textContent; t.textContent = fmt.format(d); }
      t.removeAttribute('data-local');
    });
  }
  localize(document);

  const log = document.getElementById('live-log');
  if (!log || !window.EventSource) return;
  const body = log.querySelector('tbody');
  const state = document.getElementById('live-state');
  const dot = document.getElementById('live-dot');
  const toggle = document.getElementById('live-toggle');
  const seen = new Set(Array.from(body.querySelectorAll('tr[data-id]'), (r) => r.dataset.id));
  const held = [];
  let paused = false;
  const say = (text, cls) => { state.textContent = text; dot.className = 'dot ' + (cls || ''); };
  const insert = (markup) => {
    const t = document.createElement('tbody');
    t.innerHTML = markup; // rendered and escaped by the server
    const row = t.firstElementChild;
    if (!row) return;
    row.classList.add('new');
    localize(row);
    body.insertBefore(row, body.firstChild);
    const empty = body.querySelector('tr.empty');
    if (empty) empty.remove();
    while (body.children.length > 500) body.lastElementChild.remove();
  };
  const source = new EventSource(log.dataset.stream);
  source.addEventListener('open', () => say(paused ? 'paused' : 'live', paused ? '' : 'on'));
  source.addEventListener('error', () => say('reconnecting…', 'off'));
  source.addEventListener('row', (e) => {
    const ev = JSON.parse(e.data);
    if (seen.has(String(ev.id))) return;
    seen.add(String(ev.id));
    if (paused) { held.push(ev.html); say('paused: ' + held.length + ' new', ''); } else insert(ev.html);
  });
  toggle.hidden = false;
  toggle.addEventListener('click', () => {
    paused = !paused;
    toggle.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) { held.splice(0).forEach(insert); say('live', 'on'); } else say('paused', '');
  });
})();
`;
