// merkit live: the session's events (Server-Sent Events from /events) drawn on the page.
"use strict";
const SPAN = 30; // seconds of score trace shown
const points = []; // [time, score over threshold]
const counts = { micro: 0, macro: 0 };
const $ = (id) => document.getElementById(id);

function text(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = content;
  return node;
}

function status(s) {
  $("frames").textContent = s.frames;
  $("fps").textContent = s.fps.toFixed(1);
  $("latency").textContent = (1000 * s.latency).toFixed(0) + " ms";
  $("dropped").textContent = s.dropped;
  $("stalls").textContent = s.stalls;
  if (s.time !== undefined) $("time").textContent = s.time.toFixed(1) + " s";
}

function interval(row) {
  const none = $("none");
  if (none) none.remove();
  counts[row.kind] += 1;
  $("counts").textContent = counts.micro + " / " + counts.macro;
  const card = document.createElement("div");
  card.className = "card " + row.kind;
  if (row.face) {
    const img = document.createElement("img");
    img.src = row.face;
    img.alt = "apex face";
    card.appendChild(img);
  }
  const body = document.createElement("div");
  body.appendChild(text("h3", "", `${row.kind} ${row.onset_s.toFixed(2)}-${row.offset_s.toFixed(2)} s ` +
    `(apex ${row.apex_s.toFixed(2)} s, score ${row.score.toFixed(2)})`));
  if (row.prediction) body.appendChild(text("p", "prediction", row.prediction));
  for (const [key, value] of Object.entries(row)) {
    if (!key.startsWith("p_") || value === null) continue;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.appendChild(text("span", "name", key.slice(2)));
    const track = text("span", "track", "");
    const fill = text("span", "fill", "");
    fill.style.width = (100 * value).toFixed(0) + "%";
    track.appendChild(fill);
    bar.appendChild(track);
    bar.appendChild(text("span", "", value.toFixed(2)));
    body.appendChild(bar);
  }
  if (row.note) body.appendChild(text("p", "note", row.note));
  card.appendChild(body);
  $("intervals").prepend(card);
}

function draw() {
  const canvas = $("trace");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, m = 24;
  g.fillStyle = "white";
  g.fillRect(0, 0, w, h);
  if (!points.length) return;
  const end = points[points.length - 1][0], start = end - SPAN;
  const top = Math.min(4, Math.max(2, ...points.map((p) => p[1]))); // the threshold stays in view; higher peaks are cut
  const x = (t) => m + (w - 2 * m) * (t - start) / SPAN;
  const y = (v) => h - m - (h - 2 * m) * Math.min(v, top) / top;
  g.strokeStyle = "#d62728";
  g.setLineDash([6, 4]);
  g.beginPath(); g.moveTo(m, y(1)); g.lineTo(w - m, y(1)); g.stroke();
  g.setLineDash([]);
  g.strokeStyle = "#1f6fd0";
  g.lineWidth = 2;
  g.beginPath();
  points.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
  g.stroke();
  g.fillStyle = "#222";
  g.font = "11px sans-serif";
  g.fillText("score / threshold (dashed line = 1), last " + SPAN + " s", m, 14);
}

function frame() {
  const img = $("frame");
  const next = () => setTimeout(frame, 200);
  img.onload = next;
  img.onerror = next;
  img.src = "/frame.jpg?t=" + Date.now();
}

const events = new EventSource("/events");
events.onopen = () => { $("state").textContent = "live"; };
events.onerror = () => { $("state").textContent = "reconnecting…"; };
events.addEventListener("status", (e) => status(JSON.parse(e.data)));
events.addEventListener("interval", (e) => interval(JSON.parse(e.data)));
events.addEventListener("note", (e) => $("notes").appendChild(text("li", "", JSON.parse(e.data).text)));
events.addEventListener("scores", (e) => {
  for (const p of JSON.parse(e.data).points) points.push(p);
  const end = points.length ? points[points.length - 1][0] : 0;
  while (points.length && points[0][0] < end - SPAN) points.shift();
  draw();
});
events.addEventListener("end", (e) => {
  status(JSON.parse(e.data));
  $("state").textContent = "session ended";
  events.close();
});
frame();
