"""The dashboard's inline stylesheet and script: no files to serve, nothing fetched from elsewhere.

System fonts only. The script does two things: it swaps in fresh server-rendered numbers
every few seconds, and it appends the live audit feed (text only: it never parses HTML from
the WebSocket) with the columns the server rendered.
"""

from __future__ import annotations

import json

REFRESH_SECONDS = 10
FEED_COLUMNS = ("offset", "at", "kind", "payment", "user", "plan", "amount", "detail")
FEED_LIMIT = 50

CSS = """
:root { --ink:#1d2433; --muted:#6b7385; --line:#e3e6ee; --card:#fff; --bg:#f4f6fa; --accent:#2f6fde;
        --ok:#1f9d55; --bad:#d64545; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { display:flex; align-items:baseline; gap:16px; padding:14px 24px; background:#1d2433; color:#fff; }
header h1 { margin:0; font-size:18px; font-weight:600; }
header .meta { color:#b9c0d0; font-size:12px; }
main, section.feed { padding:0 24px; }
h2 { font-size:14px; margin:22px 0 10px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.tiles { display:grid; grid-template-columns:repeat(6,minmax(0,1fr)); gap:12px; margin-top:18px; }
.tile, .card, table { background:var(--card); border:1px solid var(--line); border-radius:8px; }
.tile { padding:12px 14px; }
.tile .label { color:var(--muted); font-size:12px; }
.tile .value { font-size:26px; font-weight:600; font-variant-numeric:tabular-nums; }
.tile .sub { color:var(--muted); font-size:12px; }
.tile.bad .value { color:var(--bad); }
.cards { display:grid; grid-template-columns:repeat(2,minmax(0,1fr)); gap:12px; }
.card { padding:10px 12px; }
.card h3 { margin:0 0 4px; font-size:13px; }
.card .pair { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
.card .caption { color:var(--muted); font-size:11px; }
.chart { width:100%; height:auto; display:block; }
.chart .bar { fill:var(--accent); }
.chart .line { fill:none; stroke:var(--accent); stroke-width:1.6; }
.chart .dot { fill:var(--accent); }
.chart .grid { stroke:var(--line); stroke-dasharray:3 3; }
.chart .axis { stroke:#c3c8d4; }
.chart text { font-size:10px; fill:var(--muted); }
.chart .value { fill:var(--ink); font-weight:600; }
.chart .muted { fill:var(--muted); }
.split { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
table { width:100%; border-collapse:separate; border-spacing:0; overflow:hidden; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); font-size:12.5px; }
th { color:var(--muted); font-weight:500; background:#fafbfd; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td { white-space:nowrap; }
.failures td:last-child { white-space:normal; }
tr:last-child td { border-bottom:none; }
td.empty { color:var(--muted); font-style:italic; }
.feed td { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; white-space:nowrap; }
.feed td:last-child { white-space:normal; }
tr.failed td { color:var(--bad); }
tr.confirmed td:nth-child(3) { color:var(--ok); }
.status { font-size:12px; color:var(--muted); text-transform:none; letter-spacing:0; margin-left:8px; }
footer { color:var(--muted); font-size:12px; padding:18px 24px 28px; }
"""

_SCRIPT = """
(() => {
  const COLUMNS = %(columns)s, LIMIT = %(limit)d;
  const live = document.getElementById("live");
  setInterval(async () => {
    const answer = await fetch("/dashboard/live", {credentials: "same-origin", cache: "no-store"});
    if (answer.ok) live.innerHTML = await answer.text();  // our own escaped, server-rendered markup
  }, %(refresh)d * 1000);
  const feed = document.getElementById("feed"), status = document.getElementById("feed-status");
  let next = Number(feed.dataset.next);
  function add(item) {
    feed.querySelector("td.empty")?.parentElement.remove();
    const row = document.createElement("tr");
    row.className = item.kind;
    for (const key of COLUMNS) {
      const cell = document.createElement("td");
      cell.textContent = item[key];
      row.appendChild(cell);
    }
    feed.prepend(row);
    while (feed.rows.length > LIMIT) feed.deleteRow(-1);
  }
  function connect() {
    const socket = new WebSocket(`ws://${location.host}/dashboard/audit?from=${next}`);
    socket.onopen = () => { status.textContent = "live"; };
    socket.onmessage = (message) => { const item = JSON.parse(message.data); next = item.offset + 1; add(item); };
    socket.onclose = () => { status.textContent = "reconnecting…"; setTimeout(connect, 3000); };
  }
  connect();
})();
"""

SCRIPT = _SCRIPT % {"columns": json.dumps(list(FEED_COLUMNS)), "limit": FEED_LIMIT, "refresh": REFRESH_SECONDS}
