"""The viewer's single HTML page: the MJPEG montage and a stats table polled from /stats."""

from __future__ import annotations

__all__ = ["PAGE"]

# Plain HTML + a little JS, no build step and no third-party assets: the page must work on
# a machine with no internet access.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netgear montage</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1rem; background: #111; color: #ddd; }
  h1 { font-size: 1.2rem; margin: 0 0 .5rem; }
  #montage { max-width: 100%; border: 1px solid #333; background: #000; display: block; }
  table { border-collapse: collapse; margin-top: 1rem; font-variant-numeric: tabular-nums; }
  th, td { padding: .25rem .75rem; border-bottom: 1px solid #333; text-align: right; }
  th:first-child, td:first-child, td.status { text-align: left; }
  tr.stale, tr.waiting { color: #777; }
  tr.stale td.status { color: #e55; font-weight: bold; }
  tr.live td.status { color: #5c5; }
  #error { color: #e55; }
  a { color: #8bf; }
</style>
</head>
<body>
<h1>netgear montage</h1>
<p id="links" hidden><a href="/recordings">recordings</a></p>
<img id="montage" src="/montage.mjpg" alt="live montage of every stream">
<table id="stats">
  <thead><tr><th>stream</th><th>port</th><th>status</th><th>codec</th><th>fps</th>
  <th>kbit/s</th><th>frames</th><th>dropped</th><th>latency ms</th><th>last seen</th></tr>
  </thead>
  <tbody></tbody>
</table>
<p id="error"></p>
<script>
"use strict";
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function ago(age) {
  return age === null ? "never" : age.toFixed(1) + " s ago";
}
async function refresh() {
  try {
    const res = await fetch("/stats", {cache: "no-store"});
    const data = await res.json();
    const body = document.querySelector("#stats tbody");
    const rows = data.streams.map(s => {
      const tr = document.createElement("tr");
      tr.className = s.status;
      tr.dataset.port = s.port;
      const link = document.createElement("a");  // the stream's own page: plots, events
      link.href = "/stream/" + encodeURIComponent(s.port);
      link.textContent = s.port;
      const portCell = cell("");
      portCell.append(link);
      tr.append(cell(s.name), portCell, cell(s.status.toUpperCase(), "status"),
                cell(s.codec || "-", "codec"), cell(s.fps.toFixed(1)),
                cell(s.kbps.toFixed(0), "kbps"), cell(s.frames), cell(s.dropped),
                cell(s.latency_ms.toFixed(1)), cell(ago(s.age)));
      return tr;
    });
    body.replaceChildren(...rows);
    document.getElementById("error").textContent =
      data.receiving ? "" : "receiver stopped";
  } catch (err) {
    document.getElementById("error").textContent = "viewer unreachable: " + err;
  }
}
refresh();
setInterval(refresh, 1000);
// one cheap listing (no stream is named "-") just to learn whether recordings are on
fetch("/api/recordings?stream=-", {cache: "no-store"}).then(r => r.json())
  .then(d => { document.getElementById("links").hidden = !d.enabled; }).catch(() => {});
</script>
</body>
</html>
"""
