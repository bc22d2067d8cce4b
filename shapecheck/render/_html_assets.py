"""The HTML page's style sheet and script, inlined into every page (nothing is fetched)."""

PAGE_CSS = r"""
:root{--bg:#f7f7f5;--panel:#fff;--fg:#1d2127;--mute:#6a717c;--line:#d5d8dd;--node:#fff;--group:#eef1f5;
--accent:#2f6fdf;--bad:#d42a2a;--badbg:#fde8e8;--edge:#8a929e;--mark:#ffe58a;--code:#f3f4f6;--ok:#23863b}
@media (prefers-color-scheme:dark){:root{--bg:#15181d;--panel:#1c2027;--fg:#e3e6ea;--mute:#9aa3ad;--line:#353b45;
--node:#222731;--group:#1f252e;--accent:#6ea2ff;--bad:#ff5c5c;--badbg:#3a1d20;--edge:#7b8491;--mark:#6b5a12;
--code:#171a20;--ok:#4cc36b}}
*{box-sizing:border-box}
html,body{margin:0;height:100%;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;gap:16px;align-items:baseline;padding:10px 18px;border-bottom:1px solid var(--line);
background:var(--panel)}
header .file{font-family:ui-monospace,Menlo,Consolas,monospace}
header a{color:var(--accent)}
.meta{color:var(--mute);margin-left:auto;font-size:13px}
main{display:flex;height:calc(100% - 45px)}
#graphs{flex:1;overflow:auto;padding:12px 18px}
aside{width:min(480px,42vw);display:flex;flex-direction:column;gap:8px;border-left:1px solid var(--line);
background:var(--panel);padding:12px 14px}
#notes{flex:0 1 auto;overflow:auto;min-height:0}
h2{font-size:15px;margin:6px 0 8px}
h2 small{color:var(--mute);font-weight:normal;margin-left:8px}
.model{margin-bottom:24px}
.quiet{margin-bottom:2px}
.quiet h2{font-size:13px;font-weight:600;color:var(--mute);margin:2px 0}
svg{display:block;margin:0 auto}
svg text{font-size:12px;fill:var(--fg);pointer-events:none}
svg .sub{fill:var(--mute);font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}
.node rect{fill:var(--node);stroke:var(--line);stroke-width:1.2}
.node{cursor:pointer}
.node:hover rect{stroke:var(--accent)}
.node.group rect{fill:var(--group);stroke-dasharray:4 2}
.node.input rect{stroke:var(--accent)}
.node.sel rect{stroke:var(--accent);stroke-width:2.5}
.box rect{fill:none;stroke:var(--line);stroke-dasharray:5 3}
.box text{fill:var(--mute);font-size:11px;pointer-events:auto;cursor:pointer}
.box.bad rect{stroke:var(--bad)}
.node.bad rect{fill:var(--badbg);stroke:var(--bad);stroke-width:2.2}
.node.bad text{fill:var(--bad)}
.edge{fill:none;stroke:var(--edge);stroke-width:1.3}
.edge.far{stroke-opacity:.5}
.edge.bad{stroke:var(--bad);stroke-width:2.4}
.elabel{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:10.5px;fill:var(--mute)}
.elabel.bad{fill:var(--bad);font-weight:bold}
marker path{fill:var(--edge)}
#arrow-bad path{fill:var(--bad)}
.card{border:1px solid var(--line);border-left:4px solid var(--mute);border-radius:6px;padding:8px 10px;
margin:0 0 10px;cursor:pointer}
.card.error{border-left-color:var(--bad)}
.card.warning{border-left-color:#d98a00}
.card .code{font-weight:600;margin-right:6px}
.card .msg{margin:2px 0 6px}
.card ol{margin:4px 0;padding-left:20px;color:var(--mute);font-size:12.5px}
.fix{margin-top:6px;padding:6px 8px;background:var(--code);border-radius:4px;font-size:13px}
.fix code,.card code{font-family:ui-monospace,Menlo,Consolas,monospace}
.ok{color:var(--ok)}
#details{margin:8px 0}
#details dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0;font-size:13px}
#details dt{color:var(--mute)}
#details dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace}
#code{font:12px/1.5 ui-monospace,Menlo,Consolas,monospace;background:var(--code);border-radius:6px;
flex:0 0 auto;max-height:46vh;overflow:auto;padding:6px 0}
#code .ln{white-space:pre;padding:0 10px 0 0}
#code .ln.hl{background:color-mix(in srgb,var(--accent) 16%,transparent)}
#code .no{display:inline-block;width:3.5em;text-align:right;padding-right:10px;color:var(--mute);user-select:none}
#code mark{background:var(--mark);color:inherit;border-radius:2px}
#tip{position:fixed;max-width:440px;background:var(--panel);border:1px solid var(--line);border-radius:6px;
padding:6px 9px;font:12px/1.45 ui-monospace,Menlo,Consolas,monospace;box-shadow:0 4px 14px #0003;
pointer-events:none;z-index:5;white-space:pre-wrap}
.index .files{list-style:none;padding:10px 18px}
.index li{padding:6px 0;border-bottom:1px solid var(--line);display:flex}
.index li a{color:var(--accent);font-family:ui-monospace,Menlo,Consolas,monospace}
.index li.bad a{color:var(--bad)}
"""

PAGE_JS = r"""
"use strict";
const T0 = performance.now();
const D = JSON.parse(document.getElementById("data").textContent);
const NW = 184, NH = 42, GAP = 26, VGAP = 40, PAD = 12, HDR = 22, DW = 6, PORT = 24;
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const cut = (s, n) => s.length > n ? s.slice(0, n - 1) + "…" : s;
const views = [];

function Model(m, index) {
  this.m = m; this.g = m.graph; this.index = index;
  this.open = new Set(this.g.open);
  this.ins = {};  // node -> the nodes whose tensors it takes
  for (const [src, dst] of this.g.links) (this.ins[dst] = this.ins[dst] || []).push(src);
  this.el = document.createElement("div");
  this.el.className = "model";
  this.el.dataset.model = m.name;
  document.getElementById("graphs").appendChild(this.el);
}

Model.prototype.isGroup = function (id) { return id.startsWith("g:") || id === ""; };

Model.prototype.size = function (id) {
  if (id.startsWith("d")) return {w: DW, h: 8};
  if (this.isGroup(id) && this.open.has(id)) {
    const inner = this.measure(id);
    return {w: inner.w + 2 * PAD, h: inner.h + HDR + PAD};
  }
  return {w: this.width(id), h: NH};
};

// A node that takes two or more tensors is wide enough to label each one at its own port.
Model.prototype.width = function (id) {
  const ins = this.ins[id] || [];
  if (ins.length < 2) return NW;
  return Math.max(NW, ins.reduce((t, src) => t + labelWidth(this.shapeOf(src)) + PORT, 0));
};

Model.prototype.shapeOf = function (id) { return this.g.nodes[id] ? this.g.nodes[id].outs[0] || "" : ""; };

const labelWidth = text => 6.4 * text.length + 6;

Model.prototype.measure = function (gid) {
  if (this.sizes[gid]) return this.sizes[gid];
  const rows = this.g.groups[gid].layers.map(layer => {
    const items = layer.map(id => [id, this.size(id)]);
    const w = items.reduce((t, it) => t + it[1].w, 0) + GAP * (items.length - 1);
    return {items, w, h: Math.max(...items.map(it => it[1].h))};
  });
  const w = Math.max(NW, ...rows.map(r => r.w));
  let y = 0;
  const pos = {};
  for (const r of rows) {
    let x = (w - r.w) / 2;
    for (const [id, s] of r.items) {
      const h = id.startsWith("d") ? r.h : s.h;
      pos[id] = {x, y: y + (r.h - h) / 2, w: s.w, h};
      x += s.w + GAP;
    }
    y += r.h + VGAP;
  }
  return (this.sizes[gid] = {w, h: Math.max(0, y - VGAP), pos});
};

Model.prototype.place = function (gid, ox, oy) {
  const m = this.measure(gid);
  for (const id in m.pos) {
    const p = m.pos[id], box = {x: ox + p.x, y: oy + p.y, w: p.w, h: p.h};
    if (id.startsWith("d")) { this.dummies[gid + "/" + id] = box; continue; }
    this.boxes[id] = box;
    if (this.isGroup(id) && this.open.has(id)) this.place(id, box.x + PAD, box.y + HDR);
  }
};

Model.prototype.shown = function (id) {
  let chain = [], at = id;
  while (at in this.g.parent) { at = this.g.parent[at]; chain.unshift(at); }
  for (const gid of chain) if (gid !== "" && !this.open.has(gid)) return gid;
  return id;
};

Model.prototype.badIn = function (gid) {
  return Object.keys(this.g.nodes).some(id => this.g.nodes[id].findings.length && this.shown(id) === gid);
};

Model.prototype.draw = function () {
  this.sizes = {}; this.boxes = {}; this.dummies = {};
  const root = this.measure(""), W = root.w + 40, H = root.h + 20;
  this.place("", 20, 10);
  const parts = [];
  for (const id in this.boxes) if (this.isGroup(id) && this.open.has(id)) parts.push(this.boxSvg(id));
  parts.push(this.edgesSvg());
  for (const id in this.boxes) if (!(this.isGroup(id) && this.open.has(id))) parts.push(this.nodeSvg(id));
  const status = this.m.status === "checked" ? "" : " · " + this.m.status;
  this.el.innerHTML = `<h2>${esc(this.m.name)}<small>input ${esc(this.m.input.join(", "))}${esc(status)}</small></h2>` +
    `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><defs>` +
    `<marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L8 4L0 8z"/></marker>` +
    `<marker id="arrow-bad" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="6" markerHeight="6" orient="auto"><path d="M0 0L8 4L0 8z"/></marker>` +
    `</defs>${parts.join("")}</svg>`;
  this.bind();
};

Model.prototype.boxSvg = function (gid) {
  const b = this.boxes[gid], g = this.g.groups[gid];
  const label = g.count > 1 ? `${g.label}  (${g.span}, identical; showing the first)` : g.label;
  return `<g class="box${this.badIn(gid) ? " bad" : ""}" data-id="${esc(gid)}"><rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8"/>` +
    `<text x="${b.x + 8}" y="${b.y + 15}">▾ ${esc(label)}</text></g>`;
};

Model.prototype.nodeSvg = function (id) {
  const b = this.boxes[id];
  let cls = "node", title, sub;
  if (this.isGroup(id)) {
    const g = this.g.groups[id];
    cls += " group" + (this.badIn(id) ? " bad" : "");
    title = "▸ " + g.label; sub = g.count > 1 ? g.span : this.countIn(id) + " inside";
  } else {
    const n = this.g.nodes[id];
    cls += (n.kind === "input" ? " input" : "") + (n.findings.length ? " bad" : "") + (this.sel === id ? " sel" : "");
    title = this.title(id);
    sub = (n.outs[0] || "") + (n.line ? `  :${n.line}` : "");
  }
  return `<g class="${cls}" data-id="${esc(id)}"><rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="6"/>` +
    `<text x="${b.x + 10}" y="${b.y + 17}">${esc(cut(title, 27))}</text>` +
    `<text class="sub" x="${b.x + 10}" y="${b.y + 33}">${esc(cut(sub, 30))}</text></g>`;
};

// "conv1 · Conv2d" (the name inside its group: "downs.0" at the top), "add" for an op, "input".
Model.prototype.title = function (id) {
  const n = this.g.nodes[id], holder = this.g.parent[id].slice(2) + ".";
  if (n.kind === "input") return "input";
  if (n.kind === "op" || n.kind === "merge" || n.op === n.name) return n.op;
  return `${n.name.startsWith(holder) ? n.name.slice(holder.length) : n.name} · ${n.op}`;
};

Model.prototype.countIn = function (gid) {
  return Object.keys(this.g.nodes).filter(id => this.shown(id) === gid).length;
};

Model.prototype.edgesSvg = function () {
  const seen = new Set(), into = {}, labelled = new Set(), out = [];
  for (const [src, dst, route] of this.g.links) {
    const a = this.shown(src), b = this.shown(dst), key = a + ">" + b;
    if (a === b || seen.has(key) || !this.boxes[a] || !this.boxes[b]) continue;
    seen.add(key);
    (into[b] = into[b] || []).push({src, dst, a, b, pts: [this.bottom(a), ...this.lane(route)]});
  }
  for (const b in into) out.push(...this.entering(into[b], labelled));
  return out.join("");
};

Model.prototype.lane = function (route) {
  const pts = [];
  for (const [gid, k] of route) {
    for (const d of this.g.groups[gid].edges[k][2]) {
      const p = this.dummies[gid + "/" + d];
      if (p) pts.push({x: p.x + DW / 2, y: p.y}, {x: p.x + DW / 2, y: p.y + p.h});
    }
  }
  return pts;
};

// The edges into one node. One edge comes in at the middle, labelled where it starts (once per
// source). Two or more (a merge: add, cat, matmul...) come in side by side, left to right as they
// arrive, each to a port of its own and labelled there with the shape it brings. A closed group
// takes all its edges at the middle.
Model.prototype.entering = function (edges, labelled) {
  const box = this.boxes[edges[0].b], end = e => e.pts[e.pts.length - 1].x;
  const n = this.isGroup(edges[0].b) ? 1 : edges.length;
  edges.sort((p, q) => end(p) - end(q));
  return edges.map((e, i) => {
    const bad = e.b === e.dst && this.g.nodes[e.dst].findings.length > 0, shape = this.shapeOf(e.src);
    const port = {x: n > 1 ? box.x + box.w * i / n + PORT / 2 : box.x + box.w / 2, y: box.y};
    let label = n > 1 ? {text: shape, x: port.x + 5, y: port.y - 6} : null;
    if (n === 1 && (!labelled.has(e.a) || bad)) label = {text: shape, x: e.pts[0].x + 6, y: e.pts[0].y + 15};
    if (n === 1 && label) labelled.add(e.a);
    const far = this.g.parent[e.a] !== this.g.parent[e.b] && !bad;
    return this.edgeSvg([...e.pts, port], label, bad ? " bad" : far ? " far" : "");
  });
};

Model.prototype.bottom = function (id) { const b = this.boxes[id]; return {x: b.x + b.w / 2, y: b.y + b.h}; };

Model.prototype.edgeSvg = function (pts, label, cls) {
  let d = `M${pts[0].x} ${pts[0].y}`;
  for (let i = 1; i < pts.length; i++) {
    const p = pts[i - 1], q = pts[i], my = (p.y + q.y) / 2;
    d += ` C${p.x} ${my} ${q.x} ${my} ${q.x} ${q.y - (i === pts.length - 1 ? 2 : 0)}`;
  }
  const text = label && label.text ? `<text class="elabel${cls}" x="${label.x}" y="${label.y}">` +
    `${esc(label.text)}</text>` : "";
  return `<path class="edge${cls}" d="${d}" marker-end="url(#arrow${cls === " bad" ? "-bad" : ""})"/>` + text;
};

Model.prototype.bind = function () {
  for (const el of this.el.querySelectorAll(".node,.box text")) {
    const id = (el.closest("[data-id]") || el).dataset.id;
    el.addEventListener("click", ev => { ev.stopPropagation(); this.click(id, el); });
    el.addEventListener("mousemove", ev => tip(ev, this.tipText(id)));
    el.addEventListener("mouseleave", () => tip(null));
  }
};

Model.prototype.click = function (id, el) {
  if (this.isGroup(id)) {
    if (this.open.has(id)) this.open.delete(id); else this.open.add(id);
    this.draw();
    return;
  }
  select(this, id);
};

Model.prototype.tipText = function (id) {
  if (this.isGroup(id)) return this.open.has(id) ? "click to close" : "click to open";
  const n = this.g.nodes[id];
  const io = `${n.ins.join(", ") || "—"} → ${n.outs.join(", ")}`;
  return [n.name + (n.line ? `  (line ${n.line})` : ""), io, n.note || "", ...(n.steps || [])].filter(Boolean).join("\n");
};

Model.prototype.reveal = function (id) {
  let at = id;
  while (at in this.g.parent) { at = this.g.parent[at]; this.open.add(at); }
  this.draw();
  const b = this.boxes[id], pane = document.getElementById("graphs"), svg = this.el.querySelector("svg");
  if (!b || !svg) return;
  const top = svg.getBoundingClientRect().top - pane.getBoundingClientRect().top + pane.scrollTop;
  pane.scrollTop = Math.max(0, top + b.y - pane.clientHeight / 3);
  pane.scrollLeft = Math.max(0, b.x - pane.clientWidth / 3);
};

function tip(ev, text) {
  const t = document.getElementById("tip");
  if (!ev || !text) { t.hidden = true; return; }
  t.textContent = text; t.hidden = false;
  t.style.left = Math.min(ev.clientX + 14, innerWidth - t.offsetWidth - 8) + "px";
  t.style.top = Math.min(ev.clientY + 14, innerHeight - t.offsetHeight - 8) + "px";
}

function select(view, id) {
  for (const v of views) v.sel = null;
  view.sel = id;
  view.draw();
  const n = view.g.nodes[id];
  const spans = n.findings.map(i => D.findings[i].span).filter(Boolean);
  const rows = [["layer", n.name], ["type", n.op], ["line", n.line || "—"], ["in", n.ins.join(", ") || "—"],
                ["out", n.outs.join(", ")], ["formula", n.note || "—"]];
  document.getElementById("details").innerHTML = "<h2>Selected</h2><dl>" +
    rows.map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join("") + "</dl>";
  showCode(n.line, spans);
}

function showCode(line, spans) {
  const code = document.getElementById("code");
  for (const el of code.querySelectorAll(".hl")) el.classList.remove("hl");
  for (const el of code.querySelectorAll("mark")) el.replaceWith(el.textContent);
  const marks = spans.length ? spans : (line ? [[line, 0, line, -1]] : []);
  for (const [l, c, el, ec] of marks) {
    for (let k = l; k <= el; k++) {
      const row = document.getElementById("L" + k);
      if (!row) continue;
      row.classList.add("hl");
      if (ec >= 0 && l === el) markSpan(row, c, ec);
    }
  }
  const first = document.getElementById("L" + (spans.length ? spans[0][0] : line));  // a finding's line first
  if (first) code.scrollTop = Math.max(0, first.offsetTop - code.offsetTop - code.clientHeight / 3);
}

function markSpan(row, c, ec) {
  const text = row.querySelector("code"), s = D.source[+row.id.slice(1) - 1] || "";
  text.innerHTML = esc(s.slice(0, c)) + "<mark>" + esc(s.slice(c, ec)) + "</mark>" + esc(s.slice(ec));
}

function findingsPanel() {
  const box = document.getElementById("findings");
  if (!D.findings.length) { box.innerHTML = '<h2 class="ok">No shape problems found</h2>'; return; }
  box.innerHTML = "<h2>Findings</h2>" + D.findings.map((f, i) => {
    const where = f.span ? `line ${f.span[0]}` : "";
    const notes = f.notes.length ? "<ol>" + f.notes.map(n => `<li>${esc(n)}</li>`).join("") + "</ol>" : "";
    const fix = f.fix ? `<div class="fix">Fix: ${esc(f.fix.title)}${f.fix.code ? `<br><code>${esc(f.fix.code)}</code>` : ""}</div>` : "";
    return `<div class="card ${f.severity}" data-finding="${i}"><span class="code">${f.code}</span>${esc(f.name)}` +
      `<span class="meta"> ${where}</span><div class="msg">${esc(f.message)}</div>${notes}${fix}</div>`;
  }).join("");
  for (const card of box.querySelectorAll(".card")) card.addEventListener("click", () => goToFinding(+card.dataset.finding));
}

function goToFinding(i) {
  for (const v of views) {
    for (const id in v.g.nodes) {
      if (v.g.nodes[id].findings.includes(i)) { v.reveal(id); select(v, id); return; }
    }
  }
  const f = D.findings[i];
  if (f.span) showCode(f.span[0], [f.span]);
}

function codePanel() {
  document.getElementById("code").innerHTML = D.source.map((s, i) =>
    `<div class="ln" id="L${i + 1}"><span class="no">${i + 1}</span><code>${esc(s)}</code></div>`).join("");
}

function notDrawn(m) {
  const div = document.createElement("div");
  div.className = "model quiet";
  div.dataset.model = m.name;
  div.innerHTML = `<h2>${esc(m.name)}<small>${esc(m.status.replace("_", " "))}${m.reason ? ": " + esc(m.reason) : ""}</small></h2>`;
  document.getElementById("graphs").appendChild(div);
}

function start() {
  codePanel();
  findingsPanel();
  D.models.forEach((m, i) => { if (m.graph) { const v = new Model(m, i); views.push(v); v.draw(); } });
  D.models.forEach(m => { if (!m.graph) notDrawn(m); });
  const first = D.findings.findIndex((f, i) => views.some(v => Object.values(v.g.nodes).some(n => n.findings.includes(i))));
  if (first >= 0) goToFinding(first);
  document.body.dataset.drawMs = (performance.now() - T0).toFixed(1);
  document.body.dataset.ready = "1";
}
start();
"""
