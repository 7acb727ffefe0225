// impasto serve: the page. Plain ES module, no framework, no build step; talks to the server's API
// (GET /api/info, POST /api/uploads, POST /api/jobs, GET /api/events …), described in docs/serve.md
// and at the top of impasto/serve/routes.py.

const $ = (sel) => document.querySelector(sel);

const state = {
  info: null,
  jobs: new Map(),        // id -> job (the server's object)
  content: null,          // {id, name, url, width, height}
  styles: [],             // [{id, name, url, ...}]
  touched: new Set(),     // option names the user set (sent even under a preset)
  focus: null,            // id of the job shown on the canvas
  live: false,            // the event stream is open
};

const ENDED = new Set(["done", "cancelled", "interrupted", "failed"]);
const STATE_WORDS = {
  queued: "waiting", running: "painting", done: "done", cancelled: "cancelled",
  interrupted: "interrupted", failed: "failed",
};
const COLOR_WORDS = {
  transfer: "from the painting",
  luminance: "keep the photo's",
  match: "matched to photo",
  ink: "ink tones",
};
// FastConfig's colour choices (a fast model has no "match"); used when /api/info names none.
const FAST_COLORS = ["transfer", "luminance"];

// ---------------------------------------------------------------- small helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function sci(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 0.01 && a < 10000) return String(+x.toPrecision(3));
  const [m, e] = x.toExponential(2).split("e");
  return `${+m}e${+e}`;
}

function ratioText(r) {
  const e = Math.log10(r);
  if (Math.abs(e - Math.round(e)) < 1e-9) return `1e${Math.round(e)}`;
  return sci(r);
}

function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60), r = s % 60;
  if (m < 60) return r ? `${m} min ${r} s` : `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
               : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function uploadIdOf(url) {
  const m = /\/api\/uploads\/([^/?#]+)/.exec(url || "");
  return m ? decodeURIComponent(m[1]) : null;
}

async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: "application/json" }, ...options });
  } catch (err) {
    throw new Error("The server cannot be reached. Is impasto serve still running?");
  }
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok) {
    const e = new Error(explain(res.status, body && body.error));
    e.status = res.status;
    throw e;
  }
  return body;
}

function explain(status, message) {
  const lead = {
    400: "These settings cannot be used",
    403: "The server refused the request",
    404: "Not found",
    409: "Too late",
    413: "Too large",
    415: "Not an image",
    429: "The queue is full — wait for a painting to finish, or cancel one",
  }[status] || `The server answered ${status}`;
  if (!message) return `${lead}.`;
  // "x.txt is not an image …", "x.png is too large …", "the queue is full …" say it all.
  if ([413, 415, 429].includes(status)) return message.charAt(0).toUpperCase() + message.slice(1);
  return `${lead}: ${message}`;
}

// ---------------------------------------------------------------- messages

function showError(text) {
  const box = $("#form-error");
  box.textContent = text;
  box.hidden = !text;
}

// ---------------------------------------------------------------- the form

const form = $("#job-form");
const fields = {
  size: $("#size"), strength: $("#strength"), iterations: $("#iterations"),
  color: $("#color"), preset: $("#preset"), model: $("#model"), seed: $("#seed"),
  mode: $("#video-mode"), temporal: $("#temporal"), temporalFeatures: $("#temporal-features"),
  frameIterations: $("#frame-iterations"),
  temporalWeight: $("#temporal-weight"),
};

function method() {
  return form.querySelector("input[name=method]:checked").value;
}

// What the form is set for: "transfer", "fast", "video-fast" or "video-optimisation" (the
// elements with data-for="…" show for the kinds they name).
function kind() {
  const m = method();
  return m === "video" ? `video-${fields.mode.value}` : m;
}

const optimising = (k = kind()) => k === "transfer" || k === "video-optimisation";
const isClip = (item) => Boolean(item && item.kind === "clip");

function setMethod(m) {
  const radio = form.querySelector(`input[name=method][value="${m}"]`);
  if (radio) radio.checked = true;
  applyMethod();
}

function applyMethod() {
  const m = method(), k = kind();
  document.body.dataset.method = m;
  document.body.dataset.kind = k;
  for (const el of form.querySelectorAll("[data-for]")) el.hidden = !el.dataset.for.split(" ").includes(k);
  $("#styles-section").hidden = !optimising(k);
  fillColors();
  showPresetHint();
}

function fillColors() {
  const info = state.info;
  if (!info) return;
  const all = (info.choices && info.choices.color) || ["transfer"];
  const fast = (info.choices && info.choices.fast_color) || all.filter((c) => FAST_COLORS.includes(c));
  const list = optimising() ? all : fast;
  const keep = fields.color.value || (fields.preset.value ? "" : info.defaults.color);
  fields.color.replaceChildren(...list.map((c) => h("option", { value: c, text: COLOR_WORDS[c] || c })));
  fields.color.value = list.includes(keep) ? keep : list[0];
}

// Style strength: the slider is -log10(ratio) (more painting to the right = a smaller alpha/beta).
function ratioFromSlider() { return 10 ** -Number(fields.strength.value); }

function setSliderRatio(r) {
  if (!(r > 0)) return;
  let s = -Math.log10(r);
  const lo = Number(fields.strength.min), hi = Number(fields.strength.max);
  if (s < lo) fields.strength.min = String(Math.floor(s));
  if (s > hi) fields.strength.max = String(Math.ceil(s));
  fields.strength.value = String(s);
  showRatio();
}

function showRatio() {
  const fromPreset = fields.preset.value && !state.touched.has("ratio");
  const text = fromPreset ? "the preset's" : `α/β ${ratioText(ratioFromSlider())}`;
  $("#ratio-out").textContent = text;
  fields.strength.setAttribute("aria-valuetext", fromPreset ? "set by the preset" : `content over style ${ratioText(ratioFromSlider())}`);
}

// Under a preset, the options the user has not changed show "the preset's" and are not sent, so
// the preset's own values apply (the defaults < the preset < what was set by hand).
function showPresetHint() {
  if (!state.info) return;
  const preset = Boolean(fields.preset.value) && optimising();
  $("#preset-hint").hidden = !preset;
  const own = fields.color.querySelector('option[value=""]');
  if (preset && !state.touched.has("color")) {
    if (!own) fields.color.prepend(h("option", { value: "", text: "the preset's" }));
    fields.color.value = "";
  } else if (own) {
    own.remove();
    if (!fields.color.value) fields.color.value = state.info.defaults.color;
  }
  if (preset && !state.touched.has("iterations")) {
    fields.iterations.value = "";
    fields.iterations.placeholder = "the preset's";
  } else {
    fields.iterations.placeholder = "";
    if (fields.iterations.value === "" && !state.touched.has("iterations")) fields.iterations.value = state.info.defaults.iterations;
  }
  showRatio();
}

function resetForm() {
  const d = state.info.defaults;
  fields.size.value = d.size;
  setSliderRatio(d.ratio);
  fields.iterations.value = d.iterations;
  fields.preset.value = d.preset || "";
  fields.seed.value = "";
  const v = d.video || {};
  fields.temporal.value = v.temporal ?? 0.05;
  fields.temporalFeatures.value = v.temporal_features ?? 0.5;
  fields.frameIterations.value = v.frame_iterations ?? 20;
  fields.temporalWeight.value = v.temporal_weight ?? 30;
  showTemporal();
  fillColors();
  fields.color.value = d.color;
  state.touched.clear();
  showPresetHint();
}

function showTemporal() {
  $("#temporal-out").textContent = `blend ${Number(fields.temporal.value).toFixed(2)}`;
  $("#temporal-features-out").textContent = `features ${Number(fields.temporalFeatures.value).toFixed(2)}`;
}

function options() {
  const k = kind();
  const opts = {};
  const preset = optimising(k) ? fields.preset.value : "";
  const send = (name) => !preset || state.touched.has(name);
  const number = (el) => (el.value.trim() === "" ? null : Number(el.value.trim()));
  const size = fields.size.value.trim();
  if (size !== "") opts.size = Number(size);
  if (optimising(k)) {
    if (preset) opts.preset = preset;
    if (send("ratio")) opts.ratio = Number(ratioFromSlider().toPrecision(4));
    const it = fields.iterations.value.trim();
    if (send("iterations") && it !== "") opts.iterations = Number(it);
  }
  if ((!optimising(k) || send("color")) && fields.color.value) opts.color = fields.color.value;
  if (optimising(k)) {
    const seed = fields.seed.value.trim();
    if (seed !== "") opts.seed = Number(seed);
  }
  if (k === "video-fast") {
    opts.temporal_features = Number(fields.temporalFeatures.value);
    opts.temporal = Number(fields.temporal.value);
  }
  if (k === "video-optimisation") {
    const fi = number(fields.frameIterations), tw = number(fields.temporalWeight);
    if (fi !== null) opts.frame_iterations = fi;
    if (tw !== null) opts.temporal_weight = tw;
  }
  return opts;
}

async function submit(ev) {
  ev.preventDefault();
  showError("");
  const m = method(), k = kind();
  if (!state.content) { showError(m === "video" ? "Add a clip first (drop one or choose a file)." : "Add a photo first (drop one, choose a file, or pick an example)."); return; }
  if (m === "video" && !isClip(state.content)) { showError("A video needs a clip (MP4, MOV, WebM or an animated GIF) in place of the photo."); return; }
  if (m !== "video" && isClip(state.content)) { showError("That is a clip: choose Video to paint it, or add a photo."); return; }
  if (optimising(k) && !state.styles.length) { showError("Add at least one painting to copy the style from."); return; }
  if (!optimising(k) && !fields.model.value) { showError("No fast model is available."); return; }
  const body = { method: m, content: state.content.id, options: options() };
  if (m === "video") body.mode = fields.mode.value;
  if (optimising(k)) body.styles = state.styles.map((s) => s.id);
  else body.model = fields.model.value;
  const button = $("#start");
  button.disabled = true;
  try {
    const made = await api("/api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    state.focus = made.id;
    upsert(made.settings ? made : { id: made.id, method: m, state: made.state || "queued", position: made.position,
                                    settings: body, created: new Date().toISOString() });
    if (!state.live) refreshJob(made.id);   // else the event stream brings it
    renderAll();
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

// The form survives a reload (this browser only): the method, the options and the pictures that
// the server still has.
const SAVED = "impasto.form";

function saveForm() {
  const keep = (x) => (x && x.id && !x.pending && !x.failed
    ? { id: x.id, name: x.name, width: x.width, height: x.height, kind: x.kind || "image", frames: x.frames,
        duration: x.duration } : null);
  try {
    localStorage.setItem(SAVED, JSON.stringify({
      method: method(), content: keep(state.content), styles: state.styles.map(keep).filter(Boolean),
      size: fields.size.value, strength: fields.strength.value, iterations: fields.iterations.value,
      color: fields.color.value, preset: fields.preset.value, model: fields.model.value, seed: fields.seed.value,
      mode: fields.mode.value, temporal: fields.temporal.value, temporal_features: fields.temporalFeatures.value,
      frame_iterations: fields.frameIterations.value,
      temporal_weight: fields.temporalWeight.value, touched: [...state.touched],
    }));
  } catch { /* storage off: nothing kept */ }
}

async function restoreForm() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(SAVED) || "null"); } catch { saved = null; }
  if (!saved || typeof saved !== "object") return;
  const has = (select, v) => [...select.options].some((o) => o.value === v);
  if (has(fields.mode, saved.mode)) fields.mode.value = saved.mode;
  const methods = [...form.querySelectorAll("input[name=method]:not(:disabled)")].map((r) => r.value);
  if (methods.includes(saved.method)) setMethod(saved.method);
  if (typeof saved.temporal === "string" && saved.temporal !== "") { fields.temporal.value = saved.temporal; showTemporal(); }
  if (typeof saved.temporal_features === "string" && saved.temporal_features !== "") {
    fields.temporalFeatures.value = saved.temporal_features;
    showTemporal();
  }
  if (typeof saved.frame_iterations === "string") fields.frameIterations.value = saved.frame_iterations;
  if (typeof saved.temporal_weight === "string") fields.temporalWeight.value = saved.temporal_weight;
  for (const name of ["size", "iterations", "seed"]) if (typeof saved[name] === "string") fields[name].value = saved[name];
  if (typeof saved.strength === "string" && saved.strength !== "") fields.strength.value = saved.strength;
  if (has(fields.preset, saved.preset)) fields.preset.value = saved.preset;
  if (has(fields.model, saved.model)) fields.model.value = saved.model;
  if (has(fields.color, saved.color)) fields.color.value = saved.color;
  state.touched = new Set(Array.isArray(saved.touched) ? saved.touched.map(String) : []);
  const alive = async (x) => {
    if (!x || typeof x.id !== "string") return null;
    const url = `/api/uploads/${encodeURIComponent(x.id)}`;
    const clip = x.kind === "clip", poster = clip ? `${url}/poster` : null;
    try {
      const r = await fetch(poster || url);   // the chip shows it next, from the cache
      return r.ok ? { id: x.id, name: String(x.name || "picture"), url, width: x.width, height: x.height,
                      kind: clip ? "clip" : "image", poster, frames: x.frames, duration: x.duration } : null;
    } catch { return null; }
  };
  state.content = await alive(saved.content);
  state.styles = (await Promise.all((Array.isArray(saved.styles) ? saved.styles : []).map(alive))).filter(Boolean);
  showPresetHint();
}

// ---------------------------------------------------------------- uploads and examples

const pickers = {
  content: { input: $("#content-file"), drop: $("#content-drop"), list: $("#content-chosen"), multiple: false },
  styles: { input: $("#style-files"), drop: $("#styles-drop"), list: $("#styles-chosen"), multiple: true },
};

async function uploadFiles(kind, files) {
  showError("");
  files = [...files];
  if (!files.length) return;
  if (!pickers[kind].multiple) files = files.slice(0, 1);
  const limit = state.info && state.info.limits && state.info.limits.max_upload_bytes;
  const errors = [];
  const pending = files.map((f) => ({ name: f.name, pending: true }));
  const before = state.content;
  if (kind === "content") state.content = pending[0]; else state.styles.push(...pending);
  renderChosen();
  await Promise.all(files.map(async (file, i) => {
    const slot = pending[i];
    try {
      if (limit && file.size > limit) {
        throw new Error(explain(413, `${file.name} is too large (${mb(file.size)}; the limit is ${mb(limit)} per file)`));
      }
      const data = new FormData();
      data.append("file", file, file.name);
      const up = await api("/api/uploads", { method: "POST", body: data });
      Object.assign(slot, up, { name: up.name || file.name, pending: false });
    } catch (err) {
      slot.failed = true;
      errors.push(err.message.includes(file.name) ? err.message : `${file.name}: ${err.message}`);
    }
  }));
  if (kind === "content" && state.content && state.content.failed) state.content = before;   // keep the last good one
  state.styles = state.styles.filter((s) => !s.failed);
  for (const s of state.styles.filter(isClip)) errors.push(`${s.name} is a clip; a painting must be an image`);
  state.styles = state.styles.filter((s) => !isClip(s));
  // A clip is painted as a video; a photo after a clip goes back to a picture.
  if (kind === "content" && state.content && !state.content.failed) {
    if (isClip(state.content) && method() !== "video") setMethod("video");
    else if (!isClip(state.content) && method() === "video") setMethod("transfer");
  }
  pickers[kind].input.value = "";
  renderChosen();
  if (errors.length) showError(errors.join("\n"));
}

function pretty(name) { return String(name).replace(/[_-]+/g, " "); }

function mb(n) { return `${+(n / 1e6).toFixed(1)} MB`; }

function pickExample(ex) {
  showError("");
  const item = { id: ex.upload, name: pretty(ex.name), url: ex.url };
  if (ex.kind === "photo") state.content = item;
  else if (!state.styles.some((s) => s.id === item.id)) state.styles.push(item);
  renderChosen();
}

function renderChosen() {
  const chip = (item, remove) => h("li", { class: "chip" + (item.pending ? " pending" : ""), "data-kind": item.kind || null },
    item.url ? h("img", { src: item.poster || item.url, alt: "", loading: "lazy" }) : h("span", { class: "thumb-wait", "aria-hidden": "true" }),
    h("span", { class: "chip-name", text: item.pending ? `${item.name} — uploading…` : item.name }),
    item.width ? h("small", { text: `${item.width}×${item.height}` + (isClip(item) && item.frames ? ` · ${item.frames} frames, ${+Number(item.duration).toFixed(1)} s` : "") }) : null,
    item.pending ? null : h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${item.name}`, onclick: remove }, "×"));
  pickers.content.list.replaceChildren(...(state.content ? [chip(state.content, () => { state.content = null; renderChosen(); })] : []));
  pickers.styles.list.replaceChildren(...state.styles.map((s) =>
    chip(s, () => { state.styles = state.styles.filter((x) => x !== s); renderChosen(); })));
  saveForm();
  for (const b of document.querySelectorAll(".examples button")) {
    const id = b.dataset.upload;
    b.setAttribute("aria-pressed", String((state.content && state.content.id === id) || state.styles.some((s) => s.id === id)));
  }
}

function setupPicker(kind) {
  const { input, drop } = pickers[kind];
  input.addEventListener("change", () => uploadFiles(kind, input.files));
  for (const t of ["dragenter", "dragover"]) {
    drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const t of ["dragleave", "dragend"]) drop.addEventListener(t, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) uploadFiles(kind, e.dataTransfer.files);
  });
}

function renderExamples() {
  const ex = state.info.examples || [];
  const button = (e) => h("button", { type: "button", class: "example", "data-upload": e.upload, "aria-pressed": "false",
    "aria-label": pretty(e.name), title: pretty(e.name), onclick: () => pickExample(e) },
    h("img", { src: e.url, alt: "", loading: "lazy" }));
  const photos = ex.filter((e) => e.kind === "photo"), paintings = ex.filter((e) => e.kind !== "photo");
  const row = (label, list) => (list.length ? [h("span", { class: "hint", text: label }), h("span", { class: "tiles" }, list.map(button))] : []);
  $("#content-examples").replaceChildren(...row(photos.length > 1 ? "or an example:" : "or the example:", photos));
  $("#styles-examples").replaceChildren(...row("or examples:", paintings));
}

// ---------------------------------------------------------------- jobs

// Answers can arrive out of order (a GET sent before an event, answered after it): a job never
// goes back from ended to running, from running to waiting, or to an earlier iteration.
const RANK = { queued: 0, running: 1 };
const rank = (j) => (ENDED.has(j.state) ? 2 : RANK[j.state] ?? 0);

function stale(old, job) {
  if (rank(job) !== rank(old)) return rank(job) < rank(old);
  const a = old.progress && old.progress.done, b = job.progress && job.progress.done;
  return job.state === "running" && typeof a === "number" && (typeof b !== "number" || b < a);
}

function upsert(job) {
  const old = state.jobs.get(job.id);
  if (old && stale(old, job)) return;
  state.jobs.set(job.id, old ? { ...old, ...job } : job);
}

function sortedJobs() {
  return [...state.jobs.values()].sort((a, b) => String(b.created || "").localeCompare(String(a.created || "")));
}

async function refreshJob(id) {
  try { upsert(await api(`/api/jobs/${encodeURIComponent(id)}`)); renderAll(); } catch { /* the stream will tell */ }
}

async function cancelJob(id) {
  try {
    upsert(await api(`/api/jobs/${encodeURIComponent(id)}/cancel`, {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: "{}",
    }));
  } catch (err) {
    if (err.status !== 409) showError(err.message);
    refreshJob(id);
  }
  renderAll();
}

function settingsOf(job) {
  const s = job.settings || {};
  const opts = s.options || s;
  return { method: s.method || job.method, mode: s.mode || job.mode, content: s.content, styles: s.styles, model: s.model,
           options: opts };
}

function summary(job) {
  const s = settingsOf(job), o = s.options || {};
  const parts = [];
  if (s.method === "video") parts.push(s.mode === "fast" ? `video · fast · ${s.model || "model"}` : "video · optimisation");
  else if (s.method === "fast") parts.push(`fast · ${s.model || "model"}`);
  else parts.push("optimisation");
  if (o.preset) parts.push(`preset ${o.preset}`);
  if (o.size) parts.push(`${o.size} px`);
  if (o.ratio) parts.push(`α/β ${ratioText(o.ratio)}`);
  if (o.iterations) parts.push(`${o.iterations} it`);
  if (o.color) parts.push(o.color === "transfer" ? "painting's colours" : o.color === "luminance" ? "photo's colours" : `${o.color} colours`);
  if (o.seed !== undefined && o.seed !== null && o.seed !== "") parts.push(`seed ${o.seed}`);
  if (o.temporal_features !== undefined) parts.push(`steady strokes ${o.temporal_features}`);
  if (o.temporal !== undefined) parts.push(`steadiness ${o.temporal}`);
  if (o.frame_iterations !== undefined) parts.push(`${o.frame_iterations} it a frame`);
  if (o.temporal_weight !== undefined) parts.push(`temporal ${o.temporal_weight}`);
  return parts.join(" · ");
}

function lossText(losses) {
  if (!losses) return "";
  const bits = [];
  if ("content" in losses) bits.push(`content ${sci(losses.content)}`);
  if ("style" in losses) bits.push(`style ${sci(losses.style)}`);
  if ("total" in losses) bits.push(`total ${sci(losses.total)}`);
  return bits.join(" · ");
}

function withParam(url, key, value) {
  if (!url) return url;
  return url + (url.includes("?") ? "&" : "?") + `${key}=${value}`;
}

function downloadUrl(job) {
  return job.result ? withParam(job.result.split("?")[0], "download", "1") : null;
}

// "Use these settings again": the form takes the job's method, pictures and options.
function reuse(job) {
  showError("");
  const s = settingsOf(job), o = s.options || {};
  const video = s.method === "video";
  if (video) fields.mode.value = s.mode === "optimisation" ? "optimisation" : "fast";
  setMethod(video ? "video" : s.method === "fast" ? "fast" : "transfer");
  const contentId = s.content || uploadIdOf(job.inputs && job.inputs.content);
  const contentUrl = (job.inputs && job.inputs.content) || (contentId && `/api/uploads/${encodeURIComponent(contentId)}`);
  state.content = contentId ? { id: contentId, name: nameOf(contentId, video ? "the earlier clip" : "the earlier photo"), url: contentUrl,
                                kind: video ? "clip" : "image", poster: video ? `${contentUrl}/poster` : null } : state.content;
  if (optimising()) {
    const urls = (job.inputs && job.inputs.styles) || [];
    const ids = s.styles || urls.map(uploadIdOf);
    state.styles = ids.filter(Boolean).map((id, i) => ({ id, name: nameOf(id, `earlier painting ${i + 1}`),
                                                         url: urls[i] || `/api/uploads/${encodeURIComponent(id)}` }));
  } else if (s.model) {
    fields.model.value = s.model;
  }
  resetForm();
  if (o.preset) fields.preset.value = o.preset;
  if (o.size !== undefined) { fields.size.value = o.size; state.touched.add("size"); }
  if (o.ratio !== undefined) { setSliderRatio(o.ratio); state.touched.add("ratio"); }
  if (o.iterations !== undefined) { fields.iterations.value = o.iterations; state.touched.add("iterations"); }
  if (o.color !== undefined) { fields.color.value = o.color; state.touched.add("color"); }
  if (o.seed !== undefined && o.seed !== null) fields.seed.value = o.seed;
  if (o.temporal !== undefined) { fields.temporal.value = o.temporal; showTemporal(); }
  if (o.temporal_features !== undefined) { fields.temporalFeatures.value = o.temporal_features; showTemporal(); }
  if (o.frame_iterations !== undefined) fields.frameIterations.value = o.frame_iterations;
  if (o.temporal_weight !== undefined) fields.temporalWeight.value = o.temporal_weight;
  showPresetHint();
  renderChosen();
  form.scrollIntoView({ behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth", block: "start" });
  $("#start").focus({ preventScroll: true });
}

function nameOf(uploadId, otherwise) {
  const ex = (state.info.examples || []).find((e) => e.upload === uploadId);
  if (ex) return pretty(ex.name);
  for (const item of [state.content, ...state.styles]) if (item && item.id === uploadId) return item.name;
  return otherwise;
}

function openViewer(job) {
  const d = $("#viewer");
  const video = job.result_type === "video/mp4", img = $("#viewer-image"), vid = $("#viewer-video");
  img.hidden = video; vid.hidden = !video;
  if (video) { vid.poster = job.thumb || ""; if (vid.getAttribute("src") !== job.result) vid.src = job.result; }
  else { vid.pause(); vid.removeAttribute("src"); img.src = job.result; }
  img.alt = `Result of ${summary(job)}`;
  $("#viewer-title").textContent = `${STATE_WORDS[job.state] || job.state} · ${summary(job)}`;
  $("#viewer-download").href = downloadUrl(job);
  if (typeof d.showModal === "function") d.showModal(); else d.setAttribute("open", "");
}

// ---------------------------------------------------------------- rendering

function renderAll() {
  renderStudio();
  renderQueue();
  renderHistory();
}

function focusedJob() {
  const jobs = sortedJobs();
  const running = jobs.find((j) => j.state === "running");
  const focus = state.focus && state.jobs.get(state.focus);
  // Follow the job this page started until it ends; then whatever is running; else the last one.
  if (focus && !ENDED.has(focus.state)) return running && focus.state === "queued" ? running : focus;
  if (running) return running;
  return focus || jobs[0] || null;
}

function renderStudio() {
  const job = focusedJob();
  const img = $("#live"), empty = $("#easel-empty"), vid = $("#live-video");
  const prog = $("#live-progress"), nums = $("#live-numbers"), vnums = $("#video-numbers");
  const cancel = $("#live-cancel"), dl = $("#live-download");
  $("#studio").dataset.state = job ? job.state : "idle";
  if (!job) {
    img.hidden = true; vid.hidden = true; empty.hidden = false; prog.hidden = true; nums.hidden = true; vnums.hidden = true;
    cancel.hidden = true; dl.hidden = true; $("#live-state").textContent = "";
    return;
  }
  const video = job.method === "video";
  const playable = job.result_type === "video/mp4" && ENDED.has(job.state);
  const photo = job.inputs && (job.inputs.poster || job.inputs.content);
  const src = job.state === "running" || job.state === "queued"
    ? (job.preview || photo || null)
    : video ? (job.thumb || job.preview || null) : (job.result || job.preview || null);
  vid.hidden = !playable;
  if (playable) {
    if (vid.getAttribute("src") !== job.result) { vid.poster = job.thumb || ""; vid.src = job.result; }
    vid.dataset.job = job.id;
    img.hidden = true; empty.hidden = true;
  } else if (vid.getAttribute("src")) {
    vid.pause(); vid.removeAttribute("src"); vid.load();
  }
  if (playable) {
    /* the video shows the result */
  } else if (src) {
    if (img.dataset.want !== src) swapImage(img, src);
    img.alt = job.result && ENDED.has(job.state) ? `Result: ${summary(job)}` : "Live preview of the painting";
    img.hidden = false; empty.hidden = true;
  } else {
    img.hidden = true; empty.hidden = false;
    empty.textContent = job.state === "failed" ? "This job failed." : "Waiting for the first image…";
  }
  img.dataset.job = job.id;
  img.classList.toggle("is-preview", !(job.result && ENDED.has(job.state)));
  const p = job.progress;
  vnums.hidden = !(video && p);
  if (video && p) {
    const ended = ENDED.has(job.state);
    const frame = job.state === "done" ? p.frames : ended ? p.finished : p.frame;   // running: the one being painted
    $("#video-frame").textContent = p.frames ? `${frame ?? "–"} of ${p.frames}` : "–";
    $("#video-fpm").textContent = p.fpm ? sci(p.fpm) : job.state === "running" ? "measuring…" : "–";
    $("#video-eta-label").textContent = ended ? "Time taken" : "Time left";
    $("#video-eta").textContent = job.state === "running" ? (p.eta !== null && p.eta !== undefined ? duration(p.eta) : "estimating…")
      : ended ? duration(p.elapsed) : "–";
  }
  let line = `${STATE_WORDS[job.state] || job.state} · ${summary(job)}`;
  if (job.state === "queued") line = `waiting — place ${job.position ?? "?"} in the queue · ${summary(job)}`;
  if (job.message && ENDED.has(job.state)) line += ` — ${job.message}`;
  $("#live-state").textContent = line;
  const showNums = job.method === "transfer" && (p || job.losses);
  prog.hidden = !(p && p.total) || job.state === "done";
  if (p && p.total) { prog.max = p.total; prog.value = p.done || 0; }
  nums.hidden = !showNums;
  if (showNums) {
    $("#live-iter").textContent = p && p.total ? `${p.done} of ${p.total}` + (p.stage ? ` (${p.stage})` : "") : "–";
    const ended = ENDED.has(job.state);
    $("#live-eta-label").textContent = ended ? "Time taken" : "Time left";
    $("#live-eta").textContent = job.state === "running" ? (p && p.eta !== null && p.eta !== undefined ? duration(p.eta) : "estimating…")
      : ended && p ? duration(p.elapsed) : "–";
    const l = job.losses || {};
    $("#live-content").textContent = sci(l.content);
    $("#live-style").textContent = sci(l.style);
    $("#live-total").textContent = sci(l.total);
  }
  cancel.hidden = ENDED.has(job.state);
  cancel.onclick = () => cancelJob(job.id);
  cancel.textContent = job.state === "queued" ? "Remove from queue" : "Stop";
  dl.hidden = !(job.result && ENDED.has(job.state));
  if (!dl.hidden) dl.href = downloadUrl(job);
}

// Load the next preview off-screen first so the canvas never flashes empty; a late load of an
// older preview never replaces a newer one.
function swapImage(img, src) {
  img.dataset.want = src;
  if (!img.getAttribute("src")) { img.setAttribute("src", src); return; }
  const next = new Image();
  next.onload = next.onerror = () => { if (img.dataset.want === src) img.setAttribute("src", src); };
  next.src = src;
}

// A list whose items are rebuilt only when their signature changes; `live` updates the texts that
// change at every event, so thumbnails do not flicker and a button is not replaced while clicked.
function renderKeyed(list, entries, items, sigOf, build, live) {
  const keep = new Set(items.map((j) => j.id));
  for (const [id, entry] of entries) if (!keep.has(id)) { entry.el.remove(); entries.delete(id); }
  items.forEach((item, i) => {
    const sig = JSON.stringify(sigOf(item));
    let entry = entries.get(item.id);
    if (!entry || entry.sig !== sig) {
      const el = build(item);
      if (entry) entry.el.replaceWith(el);
      entry = { sig, el };
      entries.set(item.id, entry);
    }
    live(entry.el, item);
    const at = list.children[i] || null;
    if (at !== entry.el) list.insertBefore(entry.el, at);
  });
}

const queueItems = new Map(), cards = new Map();

function renderQueue() {
  const jobs = sortedJobs().filter((j) => j.state === "running" || j.state === "queued")
    .sort((a, b) => (a.state === "running" ? -1 : b.state === "running" ? 1 : (a.position ?? 1e9) - (b.position ?? 1e9)));
  $("#queue-empty").hidden = jobs.length > 0;
  renderKeyed($("#queue-list"), queueItems, jobs, (j) => [j.state, j.position, j.settings], (j) =>
    h("li", { class: `queue-item state-${j.state}`, "data-job": j.id },
      h("span", { class: "place", text: j.state === "running" ? "now" : `#${j.position ?? "?"}` }),
      h("span", { class: "what" },
        h("strong", { text: j.state === "running" ? "painting" : "waiting" }),
        h("small", { class: "what-detail" })),
      h("button", { type: "button", class: "small",
        "aria-label": j.state === "running" ? "Cancel the running job" : `Cancel waiting job ${j.position ?? ""}`.trim(),
        onclick: () => cancelJob(j.id) }, "Cancel")),
  (el, j) => {
    const p = j.progress;
    el.querySelector(".what-detail").textContent = summary(j) + (j.state === "running" && p && p.total ? ` · ${p.done}/${p.total}` : "");
  });
}

function renderHistory() {
  const jobs = sortedJobs();
  $("#history-empty").hidden = jobs.length > 0;
  renderKeyed($("#history-list"), cards, jobs,
    (j) => [j.state, j.thumb, j.result, j.position, j.message, j.settings, j.created, Boolean(j.losses)],
    historyCard, (el, j) => {
      const p = j.progress;
      el.querySelector(".badge").textContent = j.state === "running" && p && p.total ? `${STATE_WORDS.running} ${p.done}/${p.total}`
        : j.state === "queued" ? `waiting · place ${j.position ?? "?"}` : STATE_WORDS[j.state] || j.state;
      const losses = el.querySelector(".losses");
      if (losses) losses.textContent = lossText(j.losses);
    });
}

function historyCard(job) {
  const photo = job.inputs && (job.inputs.poster || job.inputs.content);
  const thumb = job.result_type === "video/mp4"
    ? h("video", { class: "thumb", src: job.result, poster: job.thumb || null, controls: true, preload: "metadata",
                   playsinline: true, muted: true, "aria-label": `Video: ${summary(job)}` })
    : job.thumb || job.result
    ? h("button", { type: "button", class: "thumb", disabled: !job.result, "aria-label": "Open full size",
        onclick: () => openViewer(job) }, h("img", { src: job.thumb || job.result, alt: `Thumbnail: ${summary(job)}`, loading: "lazy" }))
    : photo && !ENDED.has(job.state)   // not painted yet: its photo, faded
      ? h("span", { class: "thumb unpainted" }, h("img", { src: photo, alt: "", loading: "lazy" }))
      : h("span", { class: "thumb none", "aria-hidden": "true" });
  return h("li", { class: `card state-${job.state}`, "data-job": job.id, "data-state": job.state },
    thumb,
    h("div", { class: "card-body" },
      h("p", { class: "card-head" }, h("span", { class: `badge ${job.state}` }),
        h("time", { datetime: job.created || "", text: when(job.created) })),
      h("p", { class: "settings", text: summary(job) }),
      job.losses ? h("p", { class: "losses" }) : null,
      job.message ? h("p", { class: "note", text: job.message }) : null,
      h("div", { class: "card-actions" },
        job.result ? h("button", { type: "button", class: "small", onclick: () => openViewer(job) }, "Open") : null,
        job.result ? h("a", { class: "button small", href: downloadUrl(job), download: "" }, "Download") : null,
        h("button", { type: "button", class: "small reuse", onclick: () => reuse(job) }, "Use these settings again"),
        ENDED.has(job.state) ? null : h("button", { type: "button", class: "small", onclick: () => cancelJob(job.id) }, "Cancel"))));
}

// ---------------------------------------------------------------- the event stream

let source = null, poller = null, renderQueued = false;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderAll(); });
}

function setConnection(s) {
  const el = $("#connection");
  el.dataset.state = s;
  el.textContent = { live: "live", connecting: "connecting…", lost: "reconnecting…" }[s] || s;
}

function connect() {
  if (source) source.close();
  setConnection("connecting");
  source = new EventSource("/api/events");
  source.onopen = () => { state.live = true; setConnection("live"); stopPolling(); };
  source.onerror = () => { state.live = false; setConnection("lost"); startPolling(); };
  source.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === "hello") {
      state.jobs.clear();
      for (const j of msg.jobs || []) upsert(j);
    } else if (msg.type === "job" && msg.job) {
      upsert(msg.job);
    }
    scheduleRender();
  };
}

function startPolling() {
  if (poller) return;
  poller = setInterval(loadJobs, 3000);
}

function stopPolling() {
  if (poller) { clearInterval(poller); poller = null; }
}

async function loadJobs() {
  try {
    const { jobs } = await api("/api/jobs");
    for (const j of jobs || []) upsert(j);
    renderAll();
  } catch { /* still down */ }
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    state.info = await api("/api/info");
  } catch (err) {
    showError(`The page could not start: ${err.message}`);
    return;
  }
  const info = state.info;
  $("#version").textContent = info.version || "";
  const presets = (info.choices && info.choices.preset) || [];
  fields.preset.append(...presets.map((p) => typeof p === "string"
    ? h("option", { value: p, text: p })
    : h("option", { value: p.name, text: p.name, title: p.description || null })));
  fields.model.replaceChildren(...(info.models || []).map((m) => h("option", { value: m, text: pretty(m) })));
  if (!(info.models || []).length) form.querySelector("input[name=method][value=fast]").disabled = true;
  const methods = (info.choices && info.choices.method) || ["transfer", "fast"];
  form.querySelector("input[name=method][value=video]").disabled = !methods.includes("video");
  if (!(info.models || []).length) fields.mode.querySelector('option[value="fast"]').disabled = true;
  const maxSize = info.limits && info.limits.max_size;
  if (maxSize) fields.size.max = String(maxSize);
  for (const o of $("#sizes").querySelectorAll("option")) if (maxSize && Number(o.value) > maxSize) o.remove();
  applyMethod();
  resetForm();
  await restoreForm();
  renderExamples();
  renderChosen();

  for (const [name, el] of [["size", fields.size], ["iterations", fields.iterations], ["color", fields.color], ["seed", fields.seed]]) {
    el.addEventListener("input", () => state.touched.add(name));
  }
  fields.strength.addEventListener("input", () => { state.touched.add("ratio"); showRatio(); });
  fields.preset.addEventListener("change", showPresetHint);
  fields.mode.addEventListener("change", applyMethod);
  fields.temporal.addEventListener("input", showTemporal);
  fields.temporalFeatures.addEventListener("input", showTemporal);
  $("#viewer").addEventListener("close", () => $("#viewer-video").pause());
  for (const r of form.querySelectorAll("input[name=method]")) r.addEventListener("change", applyMethod);
  form.addEventListener("submit", submit);
  form.addEventListener("input", saveForm);
  form.addEventListener("change", saveForm);
  setupPicker("content");
  setupPicker("styles");
  // A file dropped anywhere else must not make the browser leave the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  $("#viewer").addEventListener("click", (e) => { if (e.target === e.currentTarget) e.currentTarget.close(); });

  await loadJobs();
  connect();
  document.body.dataset.ready = "true";
}

start();
