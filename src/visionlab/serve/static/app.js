// visionlab page: upload or snapshot -> POST /v1/predict -> boxes on a canvas and a table of faces;
// the labelling view walks GET /v1/queue/next and writes POST /v1/labels. No framework, no build step.
"use strict";

const PALETTE = ["#4575b4", "#9970ab", "#bf812d", "#35978f", "#f46d43", "#762a83", "#8c510a", "#01665e"];
const GREEN = "#1a9850", RED = "#d73027", AMBER = "#e69500", ORANGE = "#f06e00";
const UNSURE = "unsure";
const $ = (id) => document.getElementById(id);
let classes = [];

// as visionlab.detect's label_color: mask -> green, no mask -> red, mask worn below the nose or on the chin ->
// orange (it is not a mask), unsure -> amber, others a palette colour
function colour(label, index = classes.indexOf(label)) {
  if (label === UNSURE) return AMBER;
  const key = label.toLowerCase().replace(/[^a-z]/g, "");
  if (key.includes("mask")) {
    if (["incorrect", "wrong", "improper", "weared", "chin", "nose", "partial"].some((w) => key.includes(w))) return ORANGE;
    return key.startsWith("without") || key.startsWith("no") || key.startsWith("unmask") || key.includes("nomask") ? RED : GREEN;
  }
  return PALETTE[Math.max(0, index) % PALETTE.length];
}

function faceText(f) {
  return f.label === UNSURE ? `unsure (${f.guess}?)` : f.label;
}

async function api(path, options = {}) {
  const res = await fetch(path, options);
  const body = res.headers.get("content-type")?.includes("application/json") ? await res.json() : null;
  if (!res.ok) {
    const err = new Error(body?.detail || `${res.status} ${res.statusText}`);
    err.status = res.status;
    err.code = body?.error;
    throw err;
  }
  return body;
}

function show(el, on = true) { el.hidden = !on; }
function setError(el, message) { el.textContent = message || ""; show(el, !!message); }

// ---- views ------------------------------------------------------------------------------------------
function selectView(name) {
  if (!$(`view-${name}`).hidden && name === "label" && current) return; // already there
  for (const tab of document.querySelectorAll(".tabs button")) {
    const on = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(on));
    show($(`view-${tab.dataset.view}`), on);
  }
  if (name === "label") loadNext();
  else stopCamera();
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

// ---- model ------------------------------------------------------------------------------------------
async function loadModel() {
  try {
    const m = await api("/v1/model");
    classes = m.classes;
    const acc = m.metrics.test_acc ?? m.metrics.val_acc;
    $("model-info").innerHTML = "";
    const parts = [["model", m.model], ["classes", m.classes.join(", ")], ["version", m.version]];
    if (typeof acc === "number") parts.push(["accuracy", `${(acc * 100).toFixed(1)}%`]);
    parts.forEach(([k, v], i) => {
      if (i) $("model-info").append(" · ");
      const b = document.createElement("b");
      b.textContent = v;
      $("model-info").append(`${k} `, b);
    });
  } catch (e) {
    $("model-info").textContent = `model unavailable: ${e.message}`;
  }
}

// ---- detection --------------------------------------------------------------------------------------
let predicting = false;

async function predict(file, fromCamera = false) {
  predicting = true;
  setError($("error"), "");
  show($("busy"));
  $("summary").textContent = `${file.name || "snapshot"}…`;
  const form = new FormData();
  form.append("file", file, file.name || "snapshot.jpg");
  try {
    const data = await api("/v1/predict", { method: "POST", body: form });
    await draw(file, data);
    fillTable(data);
    if (fromCamera) session.add(data.faces);
    if (alerts.timer) refreshEvents();
    const n = data.faces.length;
    $("summary").textContent = `${n} face${n === 1 ? "" : "s"} · ${data.width}×${data.height} · ${Math.round(data.timings.total_ms)} ms`;
  } catch (e) {
    setError($("error"), e.message);
    $("summary").textContent = "failed";
  } finally {
    show($("busy"), false);
    predicting = false;
  }
}

// ---- the result picture: as large as the window allows, zoomable, face numbers, hover linked to the table --
const view = { src: null, data: null, zoom: 1, hl: null };
const ZOOMS = [1, 1.5, 2, 3, 4, 6];

async function draw(file, data) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode(); // the browser applies EXIF orientation, as the server did
    // kept as a canvas of its own (at most 4096 px a side) so the picture can be redrawn at any zoom
    const k = Math.min(1, 4096 / Math.max(img.naturalWidth, img.naturalHeight));
    const src = document.createElement("canvas");
    src.width = Math.round(img.naturalWidth * k);
    src.height = Math.round(img.naturalHeight * k);
    src.getContext("2d").drawImage(img, 0, 0, src.width, src.height);
    Object.assign(view, { src, data, zoom: 1, hl: null });
    render();
    $("result-canvas").dataset.boxes = String(data.faces.length);
    show($("zoom-bar"), true);
  } finally {
    URL.revokeObjectURL(url);
  }
}

const faceId = (f, i) => f.id ?? i + 1;

function fitWidth() {
  // the whole photo in view: the wrapper's width, and the window's height less the page's header
  const avail = $("canvas-wrap").clientWidth || 600;
  const maxH = Math.max(240, window.innerHeight - 110);
  return Math.max(50, Math.min(avail, maxH * view.src.width / view.src.height));
}

function overlap(a, b) {
  return Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) * Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
}

// as visionlab.detect's place_labels: of the spots above, below, inside the top, left and right of a face, the
// one covering least of the labels placed so far, of the other faces and of the picture's edge
function placeLabels(rects, sizes, W, H) {
  const placed = [];
  return rects.map(([x, y, w, h], i) => {
    const [lw, lh] = sizes[i];
    const spots = [[x, y - lh - 1], [x, y + h + 1], [x + 1, y + 1], [x - lw - 1, y + (h - lh) / 2], [x + w + 1, y + (h - lh) / 2]];
    let best = null, bestCost = Infinity;
    spots.forEach(([sx, sy], rank) => {
      const cx = Math.min(Math.max(sx, 0), Math.max(0, W - lw)), cy = Math.min(Math.max(sy, 0), Math.max(0, H - lh));
      const a = [cx, cy, cx + lw, cy + lh];
      let cost = Math.abs(cx - sx) * lh + Math.abs(cy - sy) * lw + 0.01 * rank * lw * lh;
      for (const p of placed) cost += 3 * overlap(a, p);
      rects.forEach(([fx, fy, fw, fh], j) => { cost += (j === i ? 1 : 2) * overlap(a, [fx, fy, fx + fw, fy + fh]); });
      if (cost < bestCost) { best = a; bestCost = cost; }
    });
    placed.push(best);
    return best;
  });
}

function render() {
  if (!view.src) return;
  const canvas = $("result-canvas");
  const cssW = fitWidth() * view.zoom, cssH = cssW * view.src.height / view.src.width;
  const k = Math.min(window.devicePixelRatio || 1, 8192 / Math.max(cssW, cssH)); // sharp, within canvas limits
  canvas.width = Math.round(cssW * k);
  canvas.height = Math.round(cssH * k);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(k, 0, 0, k, 0, 0);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(view.src, 0, 0, cssW, cssH);
  const s = cssW / view.data.width; // CSS px per image px
  canvas.dataset.scale = String(canvas.width / view.data.width);
  canvas.dataset.zoom = String(view.zoom);
  canvas.dataset.highlight = view.hl == null ? "" : String(view.hl);
  const faces = view.data.faces;
  // on whole pixels: a 2 px line centred on a pixel edge is drawn in full colour, not blurred over three pixels
  const rects = faces.map((f) => f.box.map((v) => Math.round(v * s)));
  if (view.hl != null) { // everything but the highlighted face dimmed
    const i = faces.findIndex((f, j) => faceId(f, j) === view.hl);
    if (i >= 0) {
      const [x, y, w, h] = rects[i];
      ctx.save();
      ctx.fillStyle = "rgba(0, 0, 0, 0.45)";
      ctx.beginPath();
      ctx.rect(0, 0, cssW, cssH);
      ctx.rect(x + w, y, -w, h); // counter-clockwise: a hole over the face
      ctx.fill("evenodd");
      ctx.restore();
    }
  }
  ctx.font = "600 12px system-ui, sans-serif";
  ctx.textBaseline = "top";
  const texts = faces.map((f, i) => String(faceId(f, i)));
  const sizes = texts.map((t) => [ctx.measureText(t).width + 6, 15]);
  const spots = placeLabels(rects, sizes, cssW, cssH);
  faces.forEach((f, i) => {
    const [x, y, w, h] = rects[i];
    const on = view.hl === faceId(f, i);
    if (on) { ctx.strokeStyle = "#fff"; ctx.lineWidth = 6; ctx.strokeRect(x, y, w, h); }
    ctx.strokeStyle = colour(f.label);
    ctx.lineWidth = on ? 3 : 2;
    ctx.strokeRect(x, y, w, h);
  });
  faces.forEach((f, i) => {
    const [lx, ly, lx2, ly2] = spots[i];
    ctx.fillStyle = view.hl === faceId(f, i) ? "#111" : colour(f.label);
    ctx.fillRect(lx, ly, lx2 - lx, ly2 - ly);
    ctx.fillStyle = "#fff";
    ctx.fillText(texts[i], lx + 3, ly + 2);
  });
}

function faceAt(e) {
  // the smallest face box under the pointer (faces in a crowd overlap), as its number; null for none
  if (!view.data) return null;
  const canvas = $("result-canvas"), r = canvas.getBoundingClientRect();
  const px = (e.clientX - r.left) * view.data.width / r.width, py = (e.clientY - r.top) * view.data.height / r.height;
  let best = null, area = Infinity;
  view.data.faces.forEach((f, i) => {
    const [x, y, w, h] = f.box;
    if (px >= x && px <= x + w && py >= y && py <= y + h && w * h < area) { best = faceId(f, i); area = w * h; }
  });
  return best;
}

function highlight(id, fromPicture = false) {
  if (view.hl === id) return;
  view.hl = id;
  const wrap = $("faces-wrap");
  for (const tr of $("faces").querySelectorAll("tbody tr")) {
    const on = tr.dataset.id === String(id);
    tr.classList.toggle("hl", on);
    if (on && fromPicture) { // the row into view inside the table's own scroll box; the window stays put
      const top = tr.offsetTop - $("faces").tHead.offsetHeight, bottom = tr.offsetTop + tr.offsetHeight;
      if (top < wrap.scrollTop) wrap.scrollTop = top;
      else if (bottom > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = bottom - wrap.clientHeight;
    }
  }
  render();
}

function setZoom(zoom, e) {
  // keeps the point under the pointer (or the middle of the view) where it was
  const wrap = $("canvas-wrap"), r = $("result-canvas").getBoundingClientRect(), w = wrap.getBoundingClientRect();
  const ax = e ? e.clientX - w.left : w.width / 2, ay = e ? e.clientY - w.top : w.height / 2;
  const fx = (wrap.scrollLeft + ax) / r.width, fy = (wrap.scrollTop + ay) / r.height;
  view.zoom = Math.min(ZOOMS[ZOOMS.length - 1], Math.max(1, zoom));
  render();
  const n = $("result-canvas").getBoundingClientRect();
  wrap.scrollLeft = fx * n.width - ax;
  wrap.scrollTop = fy * n.height - ay;
  $("zoom-level").textContent = `${Math.round(view.zoom * 100)}%`;
}

function step(dir) {
  const i = ZOOMS.findIndex((z) => z >= view.zoom - 1e-6);
  return ZOOMS[Math.min(ZOOMS.length - 1, Math.max(0, (i < 0 ? ZOOMS.length - 1 : i) + dir))];
}

function wirePicture() {
  const canvas = $("result-canvas");
  canvas.addEventListener("mousemove", (e) => highlight(faceAt(e), true));
  canvas.addEventListener("mouseleave", () => highlight(null));
  canvas.addEventListener("click", (e) => { if (view.src) setZoom(view.zoom > 1 ? 1 : 2.5, e); });
  canvas.addEventListener("wheel", (e) => { // Ctrl + wheel (a trackpad's pinch) zooms; the plain wheel scrolls
    if (!view.src || !e.ctrlKey) return;
    e.preventDefault();
    setZoom(step(e.deltaY < 0 ? 1 : -1), e);
  }, { passive: false });
  $("zoom-in").addEventListener("click", () => setZoom(step(1)));
  $("zoom-out").addEventListener("click", () => setZoom(step(-1)));
  $("zoom-fit").addEventListener("click", () => setZoom(1));
  window.addEventListener("resize", () => render());
}

function fillTable(data) {
  const tbody = $("faces").querySelector("tbody");
  tbody.replaceChildren();
  data.faces.forEach((f, i) => {
    const tr = document.createElement("tr");
    tr.dataset.id = String(faceId(f, i));
    tr.addEventListener("mouseenter", () => highlight(faceId(f, i)));
    tr.addEventListener("mouseleave", () => highlight(null));
    const cell = (content) => {
      const td = document.createElement("td");
      if (content instanceof Node) td.append(content); else td.textContent = content;
      tr.append(td);
    };
    cell(String(faceId(f, i)));
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.background = colour(f.label);
    chip.textContent = faceText(f);
    if (f.label === UNSURE) chip.title = "the classifier is not sure; its best guess is shown";
    cell(chip);
    const conf = document.createElement("span");
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("i");
    fill.style.width = `${(f.confidence * 100).toFixed(1)}%`;
    fill.style.background = colour(f.label);
    bar.append(fill);
    conf.append(bar, `${(f.confidence * 100).toFixed(1)}%`);
    cell(conf);
    cell(f.detector_score.toFixed(2));
    cell(f.box.join(", "));
    tbody.append(tr);
  });
  show($("faces-wrap"), data.faces.length > 0);
  show($("faces"), data.faces.length > 0);
  show($("unsure-note"), data.faces.some((f) => f.label === UNSURE));
  show($("no-faces"), data.faces.length === 0);
}

function wireUpload() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => {
    if (e.target.files[0]) predict(e.target.files[0]);
    e.target.value = ""; // choosing the same file again still fires change
  });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    const file = e.dataTransfer?.files?.[0];
    if (file) predict(file);
  });
  // a photo dropped anywhere else must not make the browser navigate away from the page
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

// ---- webcam (only after a click) --------------------------------------------------------------------
let stream = null;

async function startCamera() {
  setError($("error"), "");
  if (!navigator.mediaDevices?.getUserMedia) {
    setError($("error"), "This browser gives no camera here (it needs https or localhost).");
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
  } catch (e) {
    setError($("error"), `Camera unavailable: ${e.message || e.name}`);
    return;
  }
  const video = $("cam");
  video.srcObject = stream;
  await video.play();
  show(video); show($("cam-snap")); show($("cam-auto")); show($("cam-stop")); show($("cam-start"), false);
}

function stopCamera() {
  setAuto(false);
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("cam").srcObject = null;
  show($("cam"), false); show($("cam-snap"), false); show($("cam-auto"), false); show($("cam-stop"), false);
  show($("cam-start"));
}

let autoTimer = null;

function setAuto(on) {
  clearInterval(autoTimer);
  autoTimer = on ? setInterval(() => { if (!predicting && !document.hidden) snapshot(); }, 2000) : null;
  $("cam-auto").setAttribute("aria-pressed", String(on));
}

function snapshot() {
  const video = $("cam");
  if (!video.videoWidth || predicting) return;
  const c = document.createElement("canvas");
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext("2d").drawImage(video, 0, 0);
  c.toBlob((blob) => {
    if (blob) predict(new File([blob], "webcam.jpg", { type: "image/jpeg" }), true);
  }, "image/jpeg", 0.92);
}

// ---- webcam session: counts and mask rate over time, kept in this page only (no image is kept) ----------
// which count a face goes to follows colour(): green with mask, red without, orange worn incorrectly, amber unsure
function maskKey(label) {
  return { [GREEN]: "with", [RED]: "without", [ORANGE]: "incorrect", [AMBER]: "unsure" }[colour(label)] || "other";
}

// Wilson 95% interval of k successes in n, as scipy's binomtest(k, n).proportion_ci(method="wilson")
function wilson(k, n) {
  if (!n) return null;
  const z = 1.959963984540054, p = k / n, d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d, half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return { rate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

const pct = (x) => `${Math.round(x * 100)}%`;

const session = {
  start: null,
  snaps: [], // {t: seconds since the first snapshot, with, without, incorrect, unsure, other, total}
  labels: {}, // label -> faces (unsure faces under "unsure")

  add(faces) {
    const now = performance.now() / 1000;
    if (this.start === null) this.start = now;
    const snap = { t: now - this.start, with: 0, without: 0, incorrect: 0, unsure: 0, other: 0, total: faces.length };
    for (const f of faces) {
      snap[maskKey(f.label)] += 1;
      this.labels[f.label] = (this.labels[f.label] || 0) + 1;
    }
    this.snaps.push(snap);
    this.render();
  },

  reset() {
    this.start = null;
    this.snaps = [];
    this.labels = {};
    this.render();
  },

  totals() {
    const t = { with: 0, without: 0, incorrect: 0, unsure: 0, other: 0, total: 0 };
    for (const s of this.snaps) for (const k in t) t[k] += s[k];
    return t;
  },

  render() {
    show($("session"), this.snaps.length > 0);
    if (!this.snaps.length) return;
    const t = this.totals();
    const n = this.snaps.length;
    $("session-meta").textContent = `${n} snapshot${n === 1 ? "" : "s"} · ${t.total} face${t.total === 1 ? "" : "s"}` +
      ` · ${Math.round(this.snaps[n - 1].t)} s`;
    const box = $("session-counts");
    box.replaceChildren();
    const w = wilson(t.with, t.with + t.without + t.incorrect);
    const rate = document.createElement("span");
    rate.className = "rate";
    rate.id = "session-rate";
    rate.textContent = w ? `mask rate ${pct(w.rate)} (${pct(w.low)}–${pct(w.high)})` : "mask rate –";
    box.append(rate);
    const names = Object.keys(this.labels).sort((a, b) => (a === UNSURE) - (b === UNSURE) || classes.indexOf(a) - classes.indexOf(b));
    for (const name of names) {
      const item = document.createElement("span");
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.style.background = colour(name);
      chip.textContent = name;
      item.append(chip, ` ${this.labels[name]}`);
      item.dataset.label = name;
      box.append(item);
    }
    this.chart();
  },

  // each snapshot's mask rate as a dot (none where it had no face with a verdict), the session's running rate as a
  // line inside its Wilson band
  chart() {
    const canvas = $("session-chart");
    const dpr = window.devicePixelRatio || 1;
    const cw = canvas.clientWidth || 600, ch = canvas.clientHeight || 170;
    canvas.width = Math.round(cw * dpr);
    canvas.height = Math.round(ch * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    const L = 40, R = 10, T = 10, B = 24;
    const tMax = Math.max(10, this.snaps[this.snaps.length - 1].t);
    const X = (t) => L + (t / tMax) * (cw - L - R), Y = (r) => T + (1 - r) * (ch - T - B);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#677285";
    ctx.strokeStyle = "#e1e5eb";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const r of [0, 0.5, 1]) {
      ctx.beginPath(); ctx.moveTo(L, Y(r)); ctx.lineTo(cw - R, Y(r)); ctx.stroke();
      ctx.fillText(pct(r), L - 6, Y(r));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText("0 s", X(0), ch - B + 6);
    ctx.fillText(`${Math.round(tMax)} s`, X(tMax) - 10, ch - B + 6);
    // running totals after each snapshot
    const run = [];
    let k = 0, m = 0;
    for (const s of this.snaps) {
      k += s.with; m += s.with + s.without + s.incorrect;
      const w = wilson(k, m);
      if (w) run.push({ t: s.t, ...w });
    }
    if (run.length) {
      ctx.fillStyle = "rgba(26, 152, 80, 0.15)";
      ctx.beginPath();
      run.forEach((p, i) => (i ? ctx.lineTo(X(p.t), Y(p.high)) : ctx.moveTo(X(p.t), Y(p.high))));
      for (let i = run.length - 1; i >= 0; i--) ctx.lineTo(X(run[i].t), Y(run[i].low));
      ctx.closePath();
      ctx.fill();
      ctx.strokeStyle = GREEN;
      ctx.lineWidth = 2;
      ctx.beginPath();
      run.forEach((p, i) => (i ? ctx.lineTo(X(p.t), Y(p.rate)) : ctx.moveTo(X(p.t), Y(p.rate))));
      ctx.stroke();
    }
    for (const s of this.snaps) {
      const n = s.with + s.without + s.incorrect;
      if (!n) continue;
      const r = s.with / n;
      ctx.fillStyle = r >= 0.5 ? GREEN : RED;
      ctx.beginPath();
      ctx.arc(X(s.t), Y(r), 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    canvas.dataset.points = String(this.snaps.length);
  },
};

// ---- labelling --------------------------------------------------------------------------------------
const skipped = new Set();
const undoStack = []; // {entry_id, label} written from this page, newest last
let current = null;
let keys = {};
let labelBusy = false;

function setStatus(text) { $("label-status").textContent = text; }

async function loadNext() {
  setError($("label-error"), "");
  const params = new URLSearchParams();
  skipped.forEach((id) => params.append("skip", id));
  let q;
  try {
    q = await api(`/v1/queue/next?${params}`);
  } catch (e) {
    current = null;
    show($("label-body"), false);
    const empty = $("label-empty");
    if (e.code === "no_active_project") {
      empty.innerHTML = "No active-learning project is loaded. Start the server with " +
        "<code>visionlab serve RUN --active PROJECT</code>.";
    } else if (e.code === "no_queue") {
      empty.innerHTML = "The project has no queue yet. Run <code>visionlab active query PROJECT --k 20</code>, then reload.";
    } else {
      empty.textContent = e.message;
    }
    show(empty);
    $("progress").textContent = "";
    return;
  }
  keys = q.keys;
  $("progress").textContent = `${q.labelled} of ${q.total} labelled · ${q.remaining} left`;
  renderButtons(q.classes);
  current = q.item;
  if (!current) {
    show($("label-body"), false);
    const empty = $("label-empty");
    empty.innerHTML = q.remaining && skipped.size
      ? `Only skipped images are left (${q.remaining}). <button id="unskip" class="secondary" type="button">Show them again</button>`
      : "Every queued image has a label. Next: <code>visionlab active retrain PROJECT</code>, then <code>query</code>.";
    $("unskip")?.addEventListener("click", () => { skipped.clear(); loadNext(); });
    show(empty);
    return;
  }
  show($("label-empty"), false);
  const img = $("queue-img");
  img.dataset.id = current.id;
  img.src = current.image_url;
  $("queue-name").textContent = current.name;
  $("queue-hint").textContent = current.prediction
    ? `· model guess: ${current.prediction} (${(current.confidence * 100).toFixed(0)}%)` : "";
  // a face pool's item: the face enlarged beside its photo or video frame, the face outlined there
  const ctx = $("queue-context");
  if (current.context) {
    ctx.dataset.id = current.id;
    ctx.src = current.context.image_url;
    $("queue-where").textContent = `· ${current.context.caption}`;
  } else {
    ctx.removeAttribute("src");
    delete ctx.dataset.id;
    $("queue-where").textContent = "";
  }
  show(ctx, Boolean(current.context));
  document.querySelector(".label-card").classList.toggle("with-context", Boolean(current.context));
  show($("label-body"));
}

function renderButtons(names) {
  const box = $("class-buttons");
  if (box.dataset.classes === names.join("\n")) return;
  box.dataset.classes = names.join("\n");
  box.replaceChildren();
  const keyOf = Object.fromEntries(Object.entries(keys).reverse().map(([k, c]) => [c, k]));
  for (const name of names) {
    const b = document.createElement("button");
    b.type = "button";
    b.style.background = colour(name, names.indexOf(name));
    const kbd = document.createElement("kbd");
    kbd.textContent = keyOf[name] ?? "";
    b.append(kbd, ` ${name === "NotAFace" ? "not a face" : name}`);
    if (keys.n === name && keyOf[name] !== "n") b.title = `${keyOf[name]} or n`;
    b.addEventListener("click", () => label(name));
    box.append(b);
  }
}

async function label(name) {
  if (!current || labelBusy) return;
  labelBusy = true;
  const item = current;
  try {
    const res = await api("/v1/labels", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: item.id, label: name }),
    });
    undoStack.push(res);
    $("undo").disabled = false;
    setStatus(`Saved #${res.entry_id}: ${item.name} → ${name}  (u undoes)`);
  } catch (e) {
    if (e.status === 409) setStatus(`${item.name} was already labelled (perhaps in another window); moving on.`);
    else { setError($("label-error"), e.message); labelBusy = false; return; }
  }
  await loadNext();
  labelBusy = false;
}

async function skip() {
  if (!current || labelBusy) return;
  skipped.add(current.id);
  setStatus(`Skipped ${current.name} (for this session).`);
  await loadNext();
}

async function undo() {
  if (!undoStack.length || labelBusy) return;
  labelBusy = true;
  const last = undoStack.pop();
  try {
    await api("/v1/labels/undo", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ entry_id: last.entry_id }),
    });
    skipped.delete(last.id);
    setStatus(`Undone #${last.entry_id} (was ${last.label}).`);
  } catch (e) {
    setError($("label-error"), e.message);
  }
  $("undo").disabled = undoStack.length === 0;
  await loadNext();
  labelBusy = false;
}

function onKey(e) {
  if ($("view-label").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
  const k = e.key.toLowerCase();
  if (keys[k]) { e.preventDefault(); label(keys[k]); }
  else if (k === "s") { e.preventDefault(); skip(); }
  else if (k === "u") { e.preventDefault(); undo(); }
}

// ---- alerts -----------------------------------------------------------------------------------------
// The service's --alert rules fire on every photo it detects (this page's, and any other client's); the panel
// shows the latest events and asks for new ones every few seconds and after each photo.
const alerts = { last: 0, events: [], timer: null, busy: false };

async function refreshEvents() { // whether the service has rules
  if (alerts.busy) return true;
  alerts.busy = true;
  try {
    const data = await api(`/v1/events?after=${alerts.last}`);
    if (!data.rules.length) return false;
    show($("events-card"));
    const fresh = data.events.filter((e) => e.id > alerts.last);
    alerts.events = fresh.reverse().concat(alerts.events).slice(0, 100);
    if (fresh.length) alerts.last = Math.max(...fresh.map((e) => e.id));
    const list = $("events");
    list.innerHTML = "";
    for (const e of alerts.events) {
      const li = document.createElement("li");
      li.dataset.id = String(e.id);
      if (fresh.includes(e)) li.className = "new";
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = e.time.slice(11, 19);
      const rule = document.createElement("span");
      rule.className = "rule";
      rule.textContent = e.rule;
      const what = document.createElement("span");
      const value = Number.isInteger(e.value) ? e.value : e.value.toFixed(2);
      const counts = Object.entries(e.counts).map(([k, v]) => `${k} ${v}`).join(", ");
      what.textContent = `value ${value} · ${counts}`;
      li.append(when, rule, what);
      list.append(li);
    }
    show($("events-none"), alerts.events.length === 0);
    $("events-meta").textContent = `${data.total} event${data.total === 1 ? "" : "s"} · rules ${data.rules.join(", ")}` +
      ` · cool-down ${data.cooldown} s`;
    $("events-card").dataset.total = String(data.total);
    return true;
  } catch (e) {
    $("events-meta").textContent = `events unavailable: ${e.message}`;
    return true; // try again later
  } finally {
    alerts.busy = false;
  }
}

async function startEvents() {
  if (await refreshEvents()) alerts.timer = setInterval(() => { if (!document.hidden) refreshEvents(); }, 3000);
}

// ---- start ------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => selectView(tab.dataset.view));
  }
  wireUpload();
  wirePicture();
  $("cam-start").addEventListener("click", startCamera);
  $("cam-stop").addEventListener("click", stopCamera);
  $("cam-snap").addEventListener("click", snapshot);
  $("cam-auto").addEventListener("click", () => setAuto(!autoTimer));
  $("session-reset").addEventListener("click", () => session.reset());
  window.addEventListener("resize", () => { if (session.snaps.length) session.chart(); });
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => selectView(location.hash === "#label" ? "label" : "detect"));
  await loadModel();
  startEvents();
  selectView(location.hash === "#label" ? "label" : "detect");
});
