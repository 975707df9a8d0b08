"""The stream page and the recordings page: plain HTML + JS, no third-party assets.

Both must work on a machine with no internet access: plots are inline SVG drawn here,
and every request goes back to this viewer. Names from senders and the event log are
set with textContent, never parsed as HTML.
"""

from __future__ import annotations

__all__ = ["RECORDINGS_PAGE", "STREAM_PAGE"]

_STYLE = """<style>
  body { font-family: system-ui, sans-serif; margin: 1rem; background: #111; color: #ddd; }
  h1 { font-size: 1.2rem; margin: 0 0 .5rem; } h2 { font-size: 1rem; margin: 1rem 0 .3rem; }
  a { color: #8bf; } img, video { max-width: 100%; background: #000; border: 1px solid #333; }
  .plots { display: flex; gap: 1rem; flex-wrap: wrap; }
  .plot { background: #181818; border: 1px solid #333; }
  .plot polyline { fill: none; stroke: #5c5; stroke-width: 1.5; }
  .plot text { fill: #aaa; font-size: 11px; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { padding: .2rem .6rem; border-bottom: 1px solid #333; text-align: left; }
  .error { color: #e55; font-weight: bold; }
  .stale, .waiting { color: #e55; } .live { color: #5c5; }
</style>"""

# Shared helpers: formatting, safe URLs for recordings, and the recordings table.
_COMMON_JS = """
"use strict";
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : "?"; }
function size(n) {
  return n > 1e9 ? (n / 1e9).toFixed(2) + " GB" : n > 1e6 ? (n / 1e6).toFixed(1) + " MB"
       : (n / 1e3).toFixed(0) + " kB";
}
function fileUrl(path) { return "/files/" + path.split("/").map(encodeURIComponent).join("/"); }
function showError(err) {
  const box = document.getElementById("recorder-error");
  box.textContent = err ? "recorder error" + (err.stream ? " (" + err.stream + ")" : "") +
    " at " + when(err.ts) + ": " + (err.message || err.error || err.detail || "see the event log")
    : "";
}
function play(path) {
  const video = document.getElementById("player");
  video.hidden = false;
  video.src = fileUrl(path);
  video.dataset.path = path;
  video.play().catch(() => {});  // autoplay may be refused; the controls still work
}
async function loadRecordings(query) {
  const res = await fetch("/api/recordings" + query, {cache: "no-store"});
  const data = await res.json();
  const section = document.getElementById("recordings");
  section.hidden = !data.enabled;
  if (!data.enabled) return;
  showError(data.error);
  const body = document.querySelector("#segments tbody");
  body.replaceChildren(...data.segments.map(s => {
    const tr = el("tr");
    tr.dataset.path = s.path;
    const action = el("td");
    if (s.kind === "mp4") {
      const button = el("button", "play");
      button.addEventListener("click", () => play(s.path));
      const link = el("a", "download");
      link.href = fileUrl(s.path);
      link.download = s.name;
      action.append(button, " ", link);
    } else {
      action.textContent = s.files + " JPEG files";
    }
    const status = s.complete === false ? "incomplete" : s.complete ? "complete" : "";
    tr.append(el("td", s.stream), el("td", s.day), el("td", when(s.start)),
              el("td", s.duration === null ? "?" : s.duration.toFixed(0) + " s"),
              el("td", size(s.size)), el("td", status), action);
    return tr;
  }));
}
"""

_SEGMENTS = """<section id="recordings" hidden>
<h2>Recordings</h2>
<video id="player" controls muted playsinline hidden></video>
<table id="segments"><thead><tr><th>stream</th><th>day</th><th>start</th><th>duration</th>
<th>size</th><th>state</th><th></th></tr></thead><tbody></tbody></table>
</section>"""

STREAM_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netgear stream</title>
{_STYLE}
</head>
<body>
<p><a href="/">&larr; montage</a></p>
<h1 id="name">stream</h1>
<p id="status"></p>
<p id="recorder-error" class="error"></p>
<img id="live" alt="live view of this stream">
<div class="plots">
  <svg class="plot" id="plot-fps" data-key="1" data-label="fps" width="300" height="90"></svg>
  <svg class="plot" id="plot-latency" data-key="2" data-label="latency ms" width="300"
       height="90"></svg>
  <svg class="plot" id="plot-kbps" data-key="3" data-label="kbit/s" width="300"
       height="90"></svg>
</div>
<h2>Recent events</h2>
<table id="events"><thead><tr><th>time</th><th>event</th><th>detail</th></tr></thead>
<tbody></tbody></table>
{_SEGMENTS}
<p id="error" class="error"></p>
<script>
{_COMMON_JS}
const port = decodeURIComponent(location.pathname.split("/")[2]);
document.getElementById("live").src = "/stream/" + encodeURIComponent(port) + "/live.mjpg";
const NS = "http://www.w3.org/2000/svg";
function draw(svg, samples) {{
  // the last five minutes of one-second samples, scaled to the largest value shown
  const key = Number(svg.dataset.key), w = svg.width.baseVal.value, h = svg.height.baseVal.value;
  const values = samples.map(s => s[key]);
  const top = Math.max(1, ...values);
  const t1 = samples.length ? samples[samples.length - 1][0] : 0, span = 300;
  const points = samples.map(s => [(w * (1 - (t1 - s[0]) / span)).toFixed(1),
                                   (h - 4 - (h - 18) * s[key] / top).toFixed(1)].join(","));
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points.join(" "));
  const label = document.createElementNS(NS, "text");
  label.setAttribute("x", 4); label.setAttribute("y", 12);
  const last = values.length ? values[values.length - 1] : 0;
  label.textContent = svg.dataset.label + " " + last.toFixed(1) + " (max " + top.toFixed(1) + ")";
  svg.replaceChildren(line, label);
  svg.dataset.points = String(points.length);
}}
function detail(e) {{
  const rest = Object.assign({{}}, e);
  delete rest.ts; delete rest.event; delete rest.stream; delete rest.port;
  return Object.keys(rest).length ? JSON.stringify(rest) : (e.stream || "");
}}
let recordingsLoaded = false;
async function refresh() {{
  try {{
    const res = await fetch("/api/streams/" + encodeURIComponent(port), {{cache: "no-store"}});
    const data = await res.json();
    const s = data.stream;
    document.getElementById("name").textContent = s.name + " (port " + s.port + ")";
    document.title = "netgear " + s.name;
    const status = document.getElementById("status");
    status.textContent = s.status.toUpperCase() + " \\u00b7 " + (s.codec || "-") + " \\u00b7 " +
      s.fps.toFixed(1) + " fps \\u00b7 " + s.kbps.toFixed(0) + " kbit/s \\u00b7 " + s.frames +
      " frames \\u00b7 " + s.dropped + " dropped";
    status.className = s.status;
    for (const svg of document.querySelectorAll("svg.plot")) draw(svg, data.samples);
    document.querySelector("#events tbody").replaceChildren(...data.events.map(e => {{
      const tr = el("tr");
      tr.append(el("td", when(e.ts)), el("td", e.event, e.event === "error" ? "error" : ""),
                el("td", detail(e)));
      return tr;
    }}));
    showError(data.recorder_error);
    if (data.recordings && !recordingsLoaded) {{
      recordingsLoaded = true;
      await loadRecordings("?stream=" + encodeURIComponent(port));
    }}
    document.getElementById("error").textContent = "";
  }} catch (err) {{
    document.getElementById("error").textContent = "viewer unreachable: " + err;
  }}
}}
refresh();
setInterval(refresh, 1000);
setInterval(() => {{ if (recordingsLoaded) loadRecordings("?stream=" +
  encodeURIComponent(port)).catch(() => {{}}); }}, 30000);
</script>
</body>
</html>
"""

RECORDINGS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netgear recordings</title>
{_STYLE}
</head>
<body>
<p><a href="/">&larr; montage</a></p>
<h1>Recordings</h1>
<p id="recorder-error" class="error"></p>
{_SEGMENTS}
<p id="error" class="error"></p>
<script>
{_COMMON_JS}
const wanted = new URLSearchParams(location.search).get("stream");
loadRecordings(wanted ? "?stream=" + encodeURIComponent(wanted) : "")
  .catch(err => {{ document.getElementById("error").textContent = "viewer unreachable: " + err; }});
</script>
</body>
</html>
"""
