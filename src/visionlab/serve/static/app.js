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

async function draw(file, data) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode(); // the browser applies EXIF orientation, as the server did
    const canvas = $("result-canvas");
    const scale = Math.min(1, 1600 / Math.max(img.naturalWidth, img.naturalHeight));
    canvas.width = Math.round(img.naturalWidth * scale);
    canvas.height = Math.round(img.naturalHeight * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const sx = canvas.width / data.width, sy = canvas.height / data.height;
    const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 300));
    const fontPx = Math.max(12, Math.round(Math.max(canvas.width, canvas.height) / 45));
    ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    data.faces.forEach((f, i) => {
      const [x, y, w, h] = [f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy];
      const c = colour(f.label);
      ctx.strokeStyle = c;
      ctx.lineWidth = line;
      ctx.strokeRect(x, y, w, h);
      const text = `${i + 1} ${faceText(f)} ${Math.floor(f.confidence * 100)}%`;
      const tw = ctx.measureText(text).width + 10;
      const ty = y - fontPx - 8 >= 0 ? y - fontPx - 8 : y + h;
      ctx.fillStyle = c;
      ctx.fillRect(x - line / 2, ty, tw, fontPx + 8);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 5 - line / 2, ty + 4);
    });
    canvas.dataset.boxes = String(data.faces.length);
  } finally {
    URL.revokeObjectURL(url);
  }
}

function fillTable(data) {
  const tbody = $("faces").querySelector("tbody");
  tbody.replaceChildren();
  data.faces.forEach((f, i) => {
    const tr = document.createElement("tr");
    const cell = (content) => {
      const td = document.createElement("td");
      if (content instanceof Node) td.append(content); else td.textContent = content;
      tr.append(td);
    };
    cell(String(i + 1));
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
  show($("label-body"));
}

function renderButtons(names) {
  const box = $("class-buttons");
  if (box.dataset.classes === names.join("\n")) return;
  box.dataset.classes = names.join("\n");
  box.replaceChildren();
  const keyOf = Object.fromEntries(Object.entries(keys).map(([k, c]) => [c, k]));
  for (const name of names) {
    const b = document.createElement("button");
    b.type = "button";
    b.style.background = colour(name, names.indexOf(name));
    const kbd = document.createElement("kbd");
    kbd.textContent = keyOf[name] ?? "";
    b.append(kbd, ` ${name}`);
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

// ---- start ------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => selectView(tab.dataset.view));
  }
  wireUpload();
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
  selectView(location.hash === "#label" ? "label" : "detect");
});
