// visionforge web page: plain JS, no build step. Data comes from the server's JSON API
// (/models, /predict, /ui/api/...); the API key, when the server has one, is sent as X-API-Key.
"use strict";

const state = { key: sessionStorage.getItem("vf-key") || "", models: [], loaded: {}, viewer: null };
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// replaceChildren without the null placeholders of optional parts
const fill = (node, ...children) => node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
const fmt = (v, d = 4) => (typeof v === "number" ? v.toFixed(d) : String(v ?? "–"));
const pct = (v) => (100 * v).toFixed(1) + " %";
const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

// ---- API --------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["X-API-Key"] = state.key;
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (res.status === 401) {
    askKey(state.key ? "The server refused this key." : "Enter the server's API key.");
    throw new Error("API key needed");
  }
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(`${res.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return res;
}
const apiJSON = async (path, options) => (await api(path, options)).json();

function askKey(msg) {
  const form = $("#keyform");
  form.hidden = false;
  $("#keymsg").textContent = msg;
  $("#apikey").focus();
}

$("#keyform").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.key = $("#apikey").value.trim();
  sessionStorage.setItem("vf-key", state.key);
  $("#keyform").hidden = true;
  state.loaded = {};
  showTab(currentTab());
});

// ---- tabs (arrow keys move between them, as in the ARIA tabs pattern) --------------------
const tabs = [...document.querySelectorAll('[role="tab"]')];
const loaders = { models: loadModels, try: loadTry, slides: loadSlides, runs: loadRuns };
const currentTab = () => tabs.find((t) => t.getAttribute("aria-selected") === "true").getAttribute("aria-controls");

function showTab(name) {
  for (const t of tabs) {
    const on = t.getAttribute("aria-controls") === name;
    t.setAttribute("aria-selected", on);
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  if (!state.loaded[name]) {
    state.loaded[name] = true;
    loaders[name]().catch((e) => { state.loaded[name] = false; setStatus(name, e.message, true); });
  }
}
tabs.forEach((t, i) => {
  t.addEventListener("click", () => showTab(t.getAttribute("aria-controls")));
  t.addEventListener("keydown", (ev) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
    if (!step) return;
    const next = tabs[(i + step + tabs.length) % tabs.length];
    next.focus();
    showTab(next.getAttribute("aria-controls"));
  });
});

function setStatus(section, text, error = false) {
  const node = document.getElementById(section + "-status");
  if (!node) return;
  node.textContent = text;
  node.classList.toggle("error", error);
}

// ---- models ------------------------------------------------------------------------------
async function getModels() {
  if (!state.models.length) state.models = (await apiJSON("/ui/api/models")).models;
  return state.models;
}

function classList(m) {
  return el("ul", { class: "classes", "aria-label": "classes" },
    (m.class_names || []).map((n, i) => el("li", {},
      el("span", { class: "swatch", style: `background:${rgb(m.colors[i])}`, "aria-hidden": "true" }), n)));
}

function kvTable(rows, head) {
  return el("table", { class: "data" },
    head ? el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i ? "num" : "", text: h })))) : null,
    el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { class: "num", text: v })))));
}

async function loadModels() {
  const models = await getModels();
  setStatus("models", `${models.length} model${models.length === 1 ? "" : "s"} served`);
  const list = $("#model-list");
  list.replaceChildren(...models.map((m) => {
    const pre = m.preprocessing || {};
    const contract = [["input size", JSON.stringify(m.input_size)], ["layout", m.input_layout],
      ["value range", JSON.stringify(pre.input_range)], ["channel order", pre.channel_order],
      ["mean", JSON.stringify(pre.mean)], ["std", JSON.stringify(pre.std)],
      ["interpolation", pre.interpolation]].filter(([, v]) => v !== undefined);
    const metrics = Object.entries(m.metrics || {}).map(([k, v]) => [k, fmt(v)]);
    return el("article", { class: "card", "data-model": m.name },
      el("h2", {}, `${m.name} `, el("span", { class: "badge", text: `v${m.version}` }),
        el("span", { class: "badge", text: m.task })),
      classList(m),
      el("h3", { text: metrics.length ? `Metrics (${m.split || "test"} split)` : "Metrics" }),
      metrics.length ? kvTable(metrics, ["metric", m.split || "test"])
        : el("p", { class: "status", text: "no held-out evaluation recorded" }),
      m.task === "detection" ? el("p", { class: "status", text: `Default score threshold ${fmt(m.score_threshold, 2)} ` +
        "(model.json's score_threshold, else 0.5): /detect's default and where Try it's slider starts" }) : null,
      el("h3", { text: "Input contract" }), kvTable(contract),
      el("details", {}, el("summary", { text: "Model card" }), el("pre", { class: "card-text", text: m.card })));
  }));
}

// ---- try it ------------------------------------------------------------------------------
async function loadTry() {
  const models = await getModels();
  const select = $("#try-model");
  select.replaceChildren(...models.filter((m) => m.task !== "signal").map((m) =>
    el("option", { value: `${m.name}|${m.version}`, text: `${m.name} v${m.version} (${m.task})` })));
  setStatus("try", "Pick or drop one or more images.");
}

function chosenModel() {
  const [name, version] = $("#try-model").value.split("|");
  return state.models.find((m) => m.name === name && m.version === version);
}

const drop = $("#drop");
drop.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); $("#files").click(); }
});
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  runFiles([...ev.dataTransfer.files]);
});
$("#files").addEventListener("change", (ev) => { runFiles([...ev.target.files]); ev.target.value = ""; });

async function runFiles(files) {
  const m = chosenModel();
  if (!m || !files.length) return;
  setStatus("try", `${files.length} image${files.length > 1 ? "s" : ""} with ${m.name} v${m.version}`);
  for (const file of files) {
    const box = el("article", { class: "card result-card" }, el("h2", { text: file.name }));
    $("#results").prepend(box);
    try {
      const img = await loadImage(file);
      if (m.task === "classification") await classify(m, file, img, box);
      else if (m.task === "detection") await detect(m, file, img, box);
      else await segment(m, file, img, box);
    } catch (e) {
      box.append(el("p", { class: "error", role: "alert", text: e.message }));
    }
  }
}

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`${file.name}: the browser cannot show this image (TIFF?); ` +
      "the API still reads it: use /predict or /segment"));
    img.src = URL.createObjectURL(file);
  });
}

function formData(file) { const fd = new FormData(); fd.append("file", file, file.name); return fd; }
const query = (m, extra = "") => `?model=${encodeURIComponent(m.name)}&version=${encodeURIComponent(m.version)}${extra}`;

function download(name, blob) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a); a.click(); a.remove();
}
const csvBlob = (rows) => new Blob([rows.map((r) => r.join(",")).join("\n") + "\n"], { type: "text/csv" });
const stem = (name) => name.replace(/\.[^.]+$/, "");

function whyControls(m, file, names, onHeat) {
  const target = el("select", { "aria-label": "class to explain" },
    el("option", { value: "", text: "predicted class" }), names.map((n) => el("option", { value: n, text: n })));
  const toggle = el("input", { type: "checkbox", class: "why" });
  const note = el("span", { class: "status", role: "status" });
  async function update() {
    if (!toggle.checked) { onHeat(null); note.textContent = ""; return; }
    note.textContent = "computing Grad-CAM…";
    try {
      const t = target.value ? `&target=${encodeURIComponent(target.value)}` : "";
      const r = await apiJSON("/ui/api/explain" + query(m, t), { method: "POST", body: formData(file) });
      const heat = await pngImage(r.overlay_png);
      onHeat(heat);
      note.textContent = `Grad-CAM for class ${r.target_name}`;
    } catch (e) { toggle.checked = false; onHeat(null); note.textContent = e.message; note.classList.add("error"); }
  }
  toggle.addEventListener("change", update);
  target.addEventListener("change", () => toggle.checked && update());
  return el("span", {}, el("label", {}, toggle, " why? (heatmap)"), " ", target, " ", note);
}

function pngImage(b64) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("bad PNG from the server"));
    img.src = "data:image/png;base64," + b64;
  });
}

async function classify(m, file, img, box) {
  const busy = el("progress", { "aria-label": "predicting" });
  box.append(busy);
  const r = await apiJSON("/predict" + query(m), { method: "POST", body: formData(file) });
  busy.remove();
  const probs = Object.entries(r.probabilities).sort((a, b) => b[1] - a[1]);
  const canvas = el("canvas", { width: img.naturalWidth, height: img.naturalHeight, "aria-label": file.name });
  const draw = (heat) => canvas.getContext("2d").drawImage(heat || img, 0, 0);
  draw(null);
  const bars = el("div", { class: "bars", "aria-label": "top classes" }, probs.slice(0, 5).map(([n, p]) =>
    el("div", { class: "bar", "data-class": n, "data-probability": p },
      el("span", { class: "label", text: n }),
      el("span", { class: "track" }, el("span", { class: "fill", style: `width:${(100 * p).toFixed(1)}%` })),
      el("span", { class: "value", text: pct(p) }))));
  const downloads = el("div", { class: "downloads" },
    el("button", { type: "button", text: "Download CSV", onclick: () => download(stem(file.name) + "_probabilities.csv",
      csvBlob([["file", "class", "probability"], ...probs.map(([n, p]) => [file.name, n, p])])) }),
    el("button", { type: "button", text: "Download PNG", onclick: () => canvas.toBlob((b) => download(stem(file.name) + "_view.png", b)) }));
  box.append(el("div", { class: "result" },
    el("div", {}, canvas, el("div", { class: "controls" }, whyControls(m, file, m.class_names || [], draw))),
    el("div", {}, el("h3", { text: `Top class: ${r.top_class}` }), bars, downloads)));
}

function tileCount(m, img) {
  const [th, tw] = m.input_size.slice(-2);
  const step = (t) => Math.max(1, Math.round(t * 0.75));
  const n = (size, t) => (size <= t ? 1 : Math.ceil((size - t) / step(t)) + 1);
  return n(img.naturalHeight, th) * n(img.naturalWidth, tw);
}

async function segment(m, file, img, box) {
  const [th, tw] = m.input_size.slice(-2);
  const windowed = img.naturalHeight !== th || img.naturalWidth !== tw;
  const msg = windowed ? `sliding-window inference: ${img.naturalWidth}×${img.naturalHeight} px in ` +
    `${tileCount(m, img)} tiles of ${tw}×${th}…` : "segmenting…";
  const bar = el("progress", { "aria-label": "segmenting" });
  const note = el("p", { class: "status", role: "status", text: msg });
  const busy = el("div", { class: "busy" }, note, bar);
  box.append(busy);
  // the sliding window reports the tiles done under a job id while the request runs
  const job = windowed ? Math.random().toString(36).slice(2, 14) : null;
  const poll = job && setInterval(async () => {
    try {
      const p = await apiJSON(`/ui/api/progress/${job}`);
      bar.max = p.total; bar.value = p.done;
      note.textContent = `sliding-window inference: ${p.done} of ${p.total} tiles of ${tw}×${th}`;
    } catch (e) { /* not started yet, or finished */ }
  }, 300);
  let r;
  try {
    r = await apiJSON("/ui/api/segment" + query(m, job ? `&job=${job}` : ""), { method: "POST", body: formData(file) });
  } finally { if (poll) clearInterval(poll); busy.remove(); }
  const labelsImg = await pngImage(r.labels_png);
  const w = r.width, h = r.height;
  const off = el("canvas", { width: w, height: h });
  const octx = off.getContext("2d", { willReadFrequently: true });
  octx.drawImage(labelsImg, 0, 0);
  const px = octx.getImageData(0, 0, w, h).data;
  const labels = new Uint8Array(w * h);
  const counts = new Array(r.class_names.length).fill(0);
  for (let i = 0; i < labels.length; i++) { labels[i] = px[4 * i]; counts[labels[i]] = (counts[labels[i]] || 0) + 1; }
  const shown = r.class_names.map((n) => !/^(background|whitespace)$/i.test(n));
  const view = { opacity: 0.5, heat: null };
  const canvas = el("canvas", { width: w, height: h, class: "overlay", "aria-label": `${file.name} with labels` });

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.globalAlpha = 1;
    ctx.drawImage(view.heat || img, 0, 0, w, h);
    if (view.heat) { canvas.dataset.heatmap = "on"; return; }
    canvas.dataset.heatmap = "off";
    const base = ctx.getImageData(0, 0, w, h);
    const d = base.data, a = view.opacity;
    let painted = 0;
    for (let i = 0; i < labels.length; i++) {
      const k = labels[i];
      if (!shown[k]) continue;
      const c = r.colors[k];
      d[4 * i] = (1 - a) * d[4 * i] + a * c[0];
      d[4 * i + 1] = (1 - a) * d[4 * i + 1] + a * c[1];
      d[4 * i + 2] = (1 - a) * d[4 * i + 2] + a * c[2];
      painted++;
    }
    ctx.putImageData(base, 0, 0);
    canvas.dataset.painted = painted;
    canvas.dataset.overlay = "drawn";
  }

  const opacity = el("input", { type: "range", min: 0, max: 1, step: 0.05, value: 0.5, "aria-label": "overlay opacity",
    oninput: (ev) => { view.opacity = +ev.target.value; draw(); } });
  const legend = el("table", { class: "data fractions" },
    el("thead", {}, el("tr", {}, el("th", { text: "show" }), el("th", { text: "class" }), el("th", { class: "num", text: "fraction" }))),
    el("tbody", {}, r.class_names.map((n, k) => el("tr", { "data-class": n, "data-fraction": counts[k] / labels.length },
      el("td", {}, el("input", { type: "checkbox", checked: shown[k], "aria-label": `show ${n}`,
        onchange: (ev) => { shown[k] = ev.target.checked; draw(); } })),
      el("td", {}, el("span", { class: "swatch", style: `background:${rgb(r.colors[k])}` }), n),
      el("td", { class: "num", text: pct(counts[k] / labels.length) })))));
  const rows = [["file", "class", "pixels", "fraction"], ...r.class_names.map((n, k) => [file.name, n, counts[k], counts[k] / labels.length])];
  const downloads = el("div", { class: "downloads" },
    el("button", { type: "button", text: "Download CSV", onclick: () => download(stem(file.name) + "_fractions.csv", csvBlob(rows)) }),
    el("button", { type: "button", text: "Download PNG", onclick: () => canvas.toBlob((b) => download(stem(file.name) + "_overlay.png", b)) }));
  const why = whyControls(m, file, r.class_names, (heat) => { view.heat = heat; draw(); });
  box.append(el("div", { class: "result" },
    el("div", {}, canvas, el("div", { class: "controls" }, el("label", {}, "opacity ", opacity), why)),
    el("div", {}, el("h3", { text: "Class fractions" + (r.sliding_window ? " (sliding window)" : "") }), legend, downloads)));
  draw();
}

// boxes from /detect (all of them, score=0): the score slider filters them here, no new request
async function detect(m, file, img, box) {
  const busy = el("progress", { "aria-label": "detecting" });
  box.append(busy);
  let r;
  try {
    r = await apiJSON("/detect" + query(m, "&score=0"), { method: "POST", body: formData(file) });
  } finally { busy.remove(); }
  const names = [...(m.class_names || [])];
  for (const b of r.boxes) if (!names.includes(b.class_name)) names.push(b.class_name);
  const spare = [[40, 60, 200], [150, 90, 20], [200, 40, 40], [40, 160, 60], [160, 60, 170], [230, 160, 30]];
  const colors = names.map((n, k) => (m.colors || [])[k] || spare[k % spare.length]);
  // i: the box's index, best score first: box=I of /ui/api/explain (at score=0) and of the CLI
  const boxes = r.boxes.map((b) => Object.assign({ k: names.indexOf(b.class_name) }, b))
    .sort((a, b) => b.score - a.score).map((b, i) => Object.assign(b, { i }));
  const shown = names.map(() => true);
  const view = { t: typeof m.score_threshold === "number" ? m.score_threshold : 0.5, labels: true };
  // small images are drawn at a whole multiple of their size so labels stay legible
  const s = Math.max(1, Math.floor(640 / Math.max(r.width, r.height)));
  const W = r.width * s, H = r.height * s;
  const canvas = el("canvas", { width: W, height: H, class: "boxes", role: "img" });
  const visible = () => boxes.filter((b) => b.score >= view.t && shown[b.k]);
  const headline = el("h3", { role: "status" });
  const value = el("output", { text: view.t.toFixed(2) });

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = s === 1;
    ctx.drawImage(why.heat || img, 0, 0, W, H);
    // canvas pixels per CSS pixel: lines and labels keep their on-screen size at any width
    const ui = Math.max(1, W / (canvas.clientWidth || Math.min(W, 512)));
    const lw = Math.max(1, Math.round(2 * ui)), font = Math.round(12 * ui);
    ctx.font = `${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    const vis = visible();
    // with a heatmap, only the explained box: white with a dark edge, visible on any colour
    const drawn = why.heat ? [boxes[why.i]] : vis;
    for (const b of [...drawn].reverse()) {  // lowest first: the best boxes end up on top
      const rect = [b.x1 * s, b.y1 * s, Math.max(1, (b.x2 - b.x1) * s), Math.max(1, (b.y2 - b.y1) * s)];
      if (why.heat) { ctx.strokeStyle = "#000"; ctx.lineWidth = lw + 2 * Math.max(1, Math.round(ui)); ctx.strokeRect(...rect); }
      ctx.strokeStyle = why.heat ? "#fff" : rgb(colors[b.k]);
      ctx.lineWidth = lw;
      ctx.strokeRect(...rect);
    }
    // labels best first, each above its box (inside it at the top edge); one that would cover
    // a label already placed is left out (the box list has them all)
    const placed = [];
    for (const b of view.labels ? drawn : []) {
      const c = colors[b.k];
      const text = `${why.heat ? `box ${b.i}: ` : ""}${b.class_name} ${b.score.toFixed(2)}`;
      const tw = ctx.measureText(text).width + 6, th = font + 4;
      const ty = b.y1 * s - th >= 0 ? b.y1 * s - th : b.y1 * s;
      const tx = Math.max(0, Math.min(b.x1 * s, W - tw));
      if (placed.some((p) => tx < p[0] + p[2] && p[0] < tx + tw && ty < p[1] + p[3] && p[1] < ty + th)) continue;
      placed.push([tx, ty, tw, th]);
      ctx.fillStyle = rgb(c);
      ctx.fillRect(tx, ty, tw, th);
      ctx.fillStyle = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 150 ? "#000" : "#fff";
      ctx.fillText(text, tx + 3, ty + 2);
    }
    canvas.dataset.labels = placed.length;
    canvas.dataset.boxes = vis.length;
    canvas.dataset.threshold = view.t;
    canvas.dataset.heatmap = why.heat ? "on" : "off";
    canvas.dataset.why = why.heat ? why.i : "";
    canvas.dataset.overlay = "drawn";
    canvas.setAttribute("aria-label", `${file.name}: ${vis.length} boxes with score ≥ ${view.t.toFixed(2)}`);
    value.textContent = view.t.toFixed(2);
    headline.textContent = `${vis.length} of ${boxes.length} box${boxes.length === 1 ? "" : "es"} with score ≥ ${view.t.toFixed(2)}`;
    const counts = names.map((n, k) => vis.filter((b) => b.k === k).length);
    for (const row of counts_tbody.children) {
      const k = +row.dataset.k;
      row.dataset.count = counts[k];
      row.lastChild.textContent = counts[k];
    }
    for (const row of list_tbody.children) row.hidden = !(+row.dataset.score >= view.t && shown[+row.dataset.k]);
    for (const btn of list_tbody.querySelectorAll("button")) btn.setAttribute("aria-pressed", !!why.heat && +btn.dataset.box === why.i);
  }

  // "why": Grad-CAM of one box (/ui/api/explain?box=I), asked for once per box and kept
  const why = { i: null, heat: null, cache: new Map() };
  const whyBox = el("input", { type: "checkbox", class: "why", onchange: (ev) => {
    const first = visible()[0];
    whyNote.classList.remove("error");
    if (!ev.target.checked) { why.i = null; why.heat = null; whyNote.textContent = whyHint; draw(); }
    else if (why.i === null && !first) { ev.target.checked = false; whyNote.textContent = "no box shown to explain"; }
    else explainBox(why.i ?? first.i);
  } });
  const whyHint = "click a box, or its number in the list, to see why it was found";
  const whyNote = el("span", { class: "status", role: "status", text: whyHint });
  async function explainBox(i) {
    why.i = i;
    whyBox.checked = true;
    whyNote.classList.remove("error");
    whyNote.textContent = `computing Grad-CAM of box ${i}…`;
    try {
      if (!why.cache.has(i)) {
        const e = await apiJSON("/ui/api/explain" + query(m, `&box=${i}&score=0`), { method: "POST", body: formData(file) });
        why.cache.set(i, { e, heat: await pngImage(e.overlay_png) });
      }
      if (why.i !== i) return;  // another box was picked meanwhile
      const { e, heat } = why.cache.get(i);
      why.heat = heat;
      whyNote.textContent = `Grad-CAM of box ${i} (${e.target_name}, score ${e.score.toFixed(2)})`;
    } catch (err) {
      if (why.i !== i) return;
      Object.assign(why, { i: null, heat: null });
      whyBox.checked = false;
      whyNote.textContent = err.message;
      whyNote.classList.add("error");
    }
    draw();
  }
  canvas.addEventListener("click", (ev) => {
    // image pixels under the pointer; the smallest box there wins (nested boxes stay reachable)
    const k = W / (canvas.clientWidth || W) / s;
    const x = ev.offsetX * k, y = ev.offsetY * k;
    const hit = visible().filter((b) => b.x1 <= x && x <= b.x2 && b.y1 <= y && y <= b.y2)
      .sort((a, b) => (a.x2 - a.x1) * (a.y2 - a.y1) - (b.x2 - b.x1) * (b.y2 - b.y1))[0];
    if (hit) explainBox(hit.i);
  });

  const slider = el("input", { type: "range", min: 0, max: 1, step: 0.01, value: view.t, class: "score",
    "aria-label": "score threshold", oninput: (ev) => { view.t = +ev.target.value; draw(); } });
  const labelsBox = el("input", { type: "checkbox", checked: view.labels, "aria-label": "show labels",
    onchange: (ev) => { view.labels = ev.target.checked; draw(); } });
  const counts_tbody = el("tbody", {}, names.map((n, k) => el("tr", { "data-class": n, "data-k": k },
    el("td", {}, el("input", { type: "checkbox", checked: true, "aria-label": `show ${n}`,
      onchange: (ev) => { shown[k] = ev.target.checked; draw(); } })),
    el("td", {}, el("span", { class: "swatch", style: `background:${rgb(colors[k])}` }), n),
    el("td", { class: "num" }))));
  const classTable = el("table", { class: "data counts" },
    el("thead", {}, el("tr", {}, el("th", { text: "show" }), el("th", { text: "class" }), el("th", { class: "num", text: "boxes" }))),
    counts_tbody);
  const list_tbody = el("tbody", {}, boxes.map((b, i) => el("tr", { "data-score": b.score, "data-k": b.k },
    el("td", { class: "num" }, el("button", { type: "button", class: "why-box", "data-box": i, "aria-pressed": "false",
      "aria-label": `why box ${i}? (Grad-CAM)`, text: i, onclick: () => explainBox(i) })),
    el("td", {}, el("span", { class: "swatch", style: `background:${rgb(colors[b.k])}` }), b.class_name),
    el("td", { class: "num", text: b.score.toFixed(3) }),
    [b.x1, b.y1, b.x2, b.y2].map((v) => el("td", { class: "num", text: v.toFixed(1) })))));
  const boxTable = el("div", { class: "box-list", tabindex: 0, "aria-label": "boxes" }, el("table", { class: "data" },
    el("thead", {}, el("tr", {}, ["box", "class", "score", "x1", "y1", "x2", "y2"].map((h, i) =>
      el("th", { class: i === 1 ? "" : "num", text: h })))), list_tbody));
  const csv = () => csvBlob([["file", "x1", "y1", "x2", "y2", "score", "label", "class"],
    ...visible().map((b) => [file.name, b.x1.toFixed(3), b.y1.toFixed(3), b.x2.toFixed(3), b.y2.toFixed(3),
      b.score.toFixed(6), b.label, b.class_name])]);
  const downloads = el("div", { class: "downloads" },
    el("button", { type: "button", text: "Download CSV", onclick: () => download(stem(file.name) + "_boxes.csv", csv()) }),
    el("button", { type: "button", text: "Download PNG", onclick: () => canvas.toBlob((b) => download(stem(file.name) + "_boxes.png", b)) }));
  box.append(el("div", { class: "result" },
    el("div", {}, canvas, el("div", { class: "controls" },
      el("label", {}, "score ≥ ", slider, " ", value), el("label", {}, labelsBox, " labels"),
      el("label", {}, whyBox, " why? (heatmap)"), whyNote)),
    el("div", {}, headline, classTable, el("h3", { text: "Boxes" }), boxTable, downloads)));
  draw();
  let drawnAt = canvas.clientWidth;  // redraw when the layout changes the canvas's width
  new ResizeObserver(() => { if (canvas.clientWidth !== drawnAt) { drawnAt = canvas.clientWidth; draw(); } }).observe(canvas);
}

// ---- slides ------------------------------------------------------------------------------
async function loadSlides() {
  const r = await apiJSON("/ui/api/slides");
  if (!r.configured) { setStatus("slides", "No slides folder: start the server with --slides-dir OUT (the out= folder of visionforge slides segment)."); return; }
  setStatus("slides", `${r.slides.length} slide${r.slides.length === 1 ? "" : "s"} in ${r.root}`);
  $("#slide-list").replaceChildren(...r.slides.map((s) => el("li", {},
    el("button", { type: "button", "data-slide": s.name, "aria-pressed": "false", onclick: () => openSlide(s) },
      `${s.name} `, el("span", { class: "badge", text: s.status })))));
  if (r.slides.length) openSlide(r.slides[0]);
}

function openSlide(s) {
  for (const b of document.querySelectorAll("#slide-list button")) b.setAttribute("aria-pressed", b.dataset.slide === s.name);
  const base = `/ui/api/slides/${encodeURIComponent(s.name)}`;
  const headers = state.key ? { "X-API-Key": state.key } : {};
  if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
  const sources = [];
  if (s.slide_readable) sources.push(base + "/slide.dzi");
  const labels = s.has_labels ? base + "/labels.dzi" : null;
  if (!sources.length && !labels) {
    fill($("#slide-side"), el("h2", { text: s.name }), el("p", { class: "error",
      text: `nothing to show: status ${s.status}${s.reason ? ` (${s.reason})` : ""}, no labels.tif and the slide file is gone` }));
    return;
  }
  state.viewer = OpenSeadragon({
    element: $("#viewer"), prefixUrl: "/static/vendor/openseadragon/images/", showNavigator: true,
    tileSources: sources.length ? sources[0] : labels, loadTilesWithAjax: true, ajaxHeaders: headers,
    crossOriginPolicy: false, keyboardNavEnabled: true,
    // zoom past the scan's own pixels (to check labels pixel by pixel), drawn without blurring
    maxZoomPixelRatio: 8, imageSmoothingEnabled: false,
  });
  window.vfViewer = state.viewer;
  const opacity = el("input", { type: "range", min: 0, max: 1, step: 0.05, value: 0.5, "aria-label": "label opacity" });
  if (sources.length && labels) {
    state.viewer.addHandler("open", () => state.viewer.addTiledImage({
      tileSource: labels, x: 0, y: 0, width: 1, opacity: 0.5,
      success: (ev) => { state.labelsImage = ev.item; opacity.oninput = () => ev.item.setOpacity(+opacity.value); },
    }));
  }
  const comp = s.composition || {};
  const compRows = Object.entries(comp).filter(([k]) => k !== "Image name").map(([k, v]) => [k, typeof v === "number" && !Number.isInteger(v) ? fmt(v, 2) : String(v)]);
  fill($("#slide-side"),
    el("h2", { text: s.name }),
    s.slide_readable ? null : el("p", { class: "status", text: "slide file not found: showing the labels only" }),
    el("ul", { class: "classes", "aria-label": "legend" }, s.class_names.map((n, i) => el("li", {},
      el("span", { class: "swatch", style: `background:${rgb(s.colors[i])}` }), n))),
    sources.length && labels ? el("label", {}, "label opacity ", opacity) : null,
    el("h3", { text: "Composition" }), kvTable(compRows),
    el("div", { class: "downloads" }, el("button", { type: "button", text: "Download composition CSV",
      onclick: async () => download(s.name + "_composition.csv", await (await api(base + "/composition.csv")).blob()) })));
}

// ---- runs --------------------------------------------------------------------------------
async function loadRuns() {
  const r = await apiJSON("/ui/api/runs");
  if (!r.configured) { setStatus("runs", "No project dir: start the server with --project-dir DIR (the project_dir= of visionforge train)."); return; }
  setStatus("runs", `${r.runs.length} run${r.runs.length === 1 ? "" : "s"} under ${r.root}; tick two to overlay their curves`);
  const keys = [...new Set(r.runs.flatMap((run) => Object.keys(run.metrics)))].slice(0, 4);
  const picked = [];
  const table = $("#run-table");
  table.replaceChildren(
    el("thead", {}, el("tr", {}, ["compare", "run", "model", "epochs", "split", ...keys, "report"].map((h, i) =>
      el("th", { class: i > 2 && i !== 4 ? "num" : "", text: h })))),
    el("tbody", {}, r.runs.map((run) => {
      const id = `${run.task}/${run.name}`;
      const box = el("input", { type: "checkbox", "aria-label": `compare ${id}`, disabled: !run.has_history,
        onchange: (ev) => {
          if (ev.target.checked) picked.push(run); else picked.splice(picked.indexOf(run), 1);
          while (picked.length > 2) { const old = picked.shift(); table.querySelector(`[aria-label="compare ${old.task}/${old.name}"]`).checked = false; }
          drawCurves(picked);
        } });
      return el("tr", { "data-run": id }, el("td", {}, box), el("td", { text: id }), el("td", { text: run.model || "–" }),
        el("td", { class: "num", text: run.epochs }), el("td", { text: run.split || "–" }),
        keys.map((k) => el("td", { class: "num", text: k in run.metrics ? fmt(run.metrics[k]) : "–" })),
        el("td", {}, run.has_report ? el("button", { type: "button", text: "Open report", onclick: () => openReport(run) }) : "–"));
    })));
}

async function openReport(run) {
  const html = await (await api(`/ui/api/runs/${encodeURIComponent(run.task)}/${encodeURIComponent(run.name)}/report`)).text();
  $("#report-title").textContent = `Report: ${run.task}/${run.name}`;
  $("#report").srcdoc = html;
  $("#report-wrap").hidden = false;
  $("#report-wrap").scrollIntoView();
  $("#report-close").focus({ preventScroll: true });
}
$("#report-close").addEventListener("click", () => { $("#report-wrap").hidden = true; $("#report").srcdoc = ""; });

async function drawCurves(runs) {
  const wrap = $("#curves");
  if (!runs.length) { wrap.replaceChildren(); return; }
  const hist = await Promise.all(runs.map((run) =>
    apiJSON(`/ui/api/runs/${encodeURIComponent(run.task)}/${encodeURIComponent(run.name)}/history`)));
  const series = (h) => Object.assign({ train_loss: h.train_loss || [], val_loss: h.val_loss || [] },
    Object.fromEntries(Object.entries(h.val_metrics || {}).map(([k, v]) => ["val_" + k, v])));
  const all = hist.map(series);
  const names = [...new Set(all.flatMap((s) => Object.keys(s)))].filter((n) => all.some((s) => (s[n] || []).length));
  const losses = names.filter((n) => n.endsWith("loss"));
  const metrics = names.filter((n) => !n.endsWith("loss"));
  // one metric both runs logged; runs of different tasks: each run's first metric
  const common = metrics.filter((n) => all.every((s) => (s[n] || []).length));
  const others = common.length ? common.slice(0, 1)
    : [...new Set(all.map((s) => metrics.find((n) => (s[n] || []).length)).filter(Boolean))];
  wrap.replaceChildren(...[losses, others].filter((g) => g.length).map((group) =>
    lineChart(group.join(", "), runs.map((run, i) => group.map((n) => ({ label: `${run.name} ${n}`, values: all[i][n] || [], dash: i, series: n }))).flat()
      .filter((l) => l.values.length))));
}

function lineChart(title, lines) {
  const W = 520, H = 300, P = { l: 52, r: 12, t: 28, b: 70 };
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("width", W); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `curves: ${title}`);
  const vals = lines.flatMap((l) => l.values).filter(Number.isFinite);
  const n = Math.max(2, ...lines.map((l) => l.values.length));
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (!(hi > lo)) { hi = lo + 1; }
  const x = (i) => P.l + (i / (n - 1)) * (W - P.l - P.r);
  const y = (v) => H - P.b - ((v - lo) / (hi - lo)) * (H - P.t - P.b);
  const add = (tag, attrs, text) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
  add("text", { x: P.l, y: 18, "font-size": 13, "font-weight": "bold" }, title);
  add("line", { x1: P.l, y1: H - P.b, x2: W - P.r, y2: H - P.b, stroke: "#888" });
  add("line", { x1: P.l, y1: P.t, x2: P.l, y2: H - P.b, stroke: "#888" });
  for (const v of [lo, (lo + hi) / 2, hi]) add("text", { x: P.l - 6, y: y(v) + 4, "font-size": 11, "text-anchor": "end" }, v.toPrecision(3));
  add("text", { x: (W + P.l) / 2, y: H - P.b + 16, "font-size": 11, "text-anchor": "middle" }, `epoch (1..${n})`);
  const palette = ["#1f5fbf", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c"];
  const seriesNames = [...new Set(lines.map((l) => l.series))];
  lines.forEach((l, k) => {
    const pts = l.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const color = palette[seriesNames.indexOf(l.series) % palette.length];
    add("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": l.dash ? "6 4" : "", "data-line": l.label });
    const ly = H - P.b + 30 + 14 * Math.floor(k / 2), lx = P.l + (k % 2) * 230;
    add("line", { x1: lx, y1: ly - 4, x2: lx + 22, y2: ly - 4, stroke: color, "stroke-width": 2, "stroke-dasharray": l.dash ? "6 4" : "" });
    add("text", { x: lx + 28, y: ly, "font-size": 11 }, l.label);
  });
  return svg;
}

// ---- start -------------------------------------------------------------------------------
const tabFromHash = () => (["models", "try", "slides", "runs"].includes(location.hash.slice(1)) ? location.hash.slice(1) : "models");
window.addEventListener("hashchange", () => showTab(tabFromHash()));
showTab(tabFromHash());
