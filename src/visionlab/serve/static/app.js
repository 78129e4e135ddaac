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
async function predict(file) {
  setError($("error"), "");
  show($("busy"));
  $("summary").textContent = `${file.name || "snapshot"}…`;
  const form = new FormData();
  form.append("file", file, file.name || "snapshot.jpg");
  try {
    const data = await api("/v1/predict", { method: "POST", body: form });
    await draw(file, data);
    fillTable(data);
    const n = data.faces.length;
    $("summary").textContent = `${n} face${n === 1 ? "" : "s"} · ${data.width}×${data.height} · ${Math.round(data.timings.total_ms)} ms`;
  } catch (e) {
    setError($("error"), e.message);
    $("summary").textContent = "failed";
  } finally {
    show($("busy"), false);
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
  show(video); show($("cam-snap")); show($("cam-stop")); show($("cam-start"), false);
}

function stopCamera() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("cam").srcObject = null;
  show($("cam"), false); show($("cam-snap"), false); show($("cam-stop"), false); show($("cam-start"));
}

function snapshot() {
  const video = $("cam");
  if (!video.videoWidth) return;
  const c = document.createElement("canvas");
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext("2d").drawImage(video, 0, 0);
  c.toBlob((blob) => {
    if (blob) predict(new File([blob], "webcam.jpg", { type: "image/jpeg" }));
  }, "image/jpeg", 0.92);
}

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
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => selectView(location.hash === "#label" ? "label" : "detect"));
  await loadModel();
  selectView(location.hash === "#label" ? "label" : "detect");
});
