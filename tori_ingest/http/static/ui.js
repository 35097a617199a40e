// The operator dashboard. Aggregates come from GET /ui/state (read from Postgres, polled every
// few seconds and sooner after a job changes state); live job changes from the /ws dashboard
// feed. No status, lane or error word is written here: they come from the server's vocabulary.
"use strict";

const POLL_MS = 2500;
const SOON_MS = 1000; // earliest re-read after a job changed state
const RUNNING_CAP = 50; // core/dashboard.py MAX_RUNNING: the snapshot lists at most this many
const $ = (id) => document.getElementById(id);

const ui = {
  vocab: null, // statuses, lanes, the word for running, a tone per status
  range: "1h",
  running: new Map(), // job id -> {job_id, filename, pages_done, pages_total, copy_name, ...}
  failures: [],
  retrying: new Map(), // job id -> {label on its button, at: when it was clicked}
  lastSnapshot: 0,
  timer: null,
  inFlight: false,
  again: false, // a snapshot was asked for while one was in flight
  socket: null,
  backoff: 1000,
  changes: [], // [time, count] of recent live batches, for the changes/s figure
  throughput: null, // the last chart data (drawn again when the window is resized)
};

// --- small helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const fmt = (n) => Number(n).toLocaleString("en-US");
const short = (id) => id.slice(0, 8);

function age(seconds) {
  if (seconds < 1) return "now";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const ago = (seconds) => (seconds < 1 ? "now" : `${age(seconds)} ago`);
const since = (iso) => (iso ? age((Date.now() - Date.parse(iso)) / 1000) : "–");

async function api(path, options = {}) {
  const headers = { "X-Tori-UI": "1", ...(options.headers || {}) };
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (response.status === 401) {
    showLogin();
    throw new Error("unauthorized");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

// --- login --------------------------------------------------------------------------------

function showLogin(message = "") {
  $("dash").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("login-error").textContent = message;
  $("viewer").textContent = "";
  setLive("off", "logged out");
  if (ui.socket) ui.socket.close(1000);
  clearTimeout(ui.timer);
  $("token").focus();
}

async function login(event) {
  event.preventDefault();
  const token = $("token").value;
  try {
    const response = await fetch("/ui/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
    if (!response.ok) {
      $("login-error").textContent = "That token was not accepted.";
      return;
    }
  } catch (error) {
    $("login-error").textContent = `The service cannot be reached (${error.message}).`;
    return;
  }
  $("token").value = "";
  start();
}

async function logout() {
  await fetch("/ui/logout", { method: "POST", credentials: "same-origin", headers: { "X-Tori-UI": "1" } });
  showLogin();
}

// --- the snapshot -------------------------------------------------------------------------

function schedule(ms) {
  clearTimeout(ui.timer);
  ui.timer = setTimeout(snapshot, ms);
}

async function snapshot() {
  if (ui.inFlight) {
    ui.again = true;
    return;
  }
  ui.inFlight = true;
  try {
    const state = await api(`/ui/state?range=${ui.range}`);
    ui.lastSnapshot = Date.now();
    render(state);
    schedule(document.hidden ? POLL_MS * 4 : POLL_MS); // a background tab asks less often
  } catch (error) {
    if (error.message !== "unauthorized") {
      $("foot").textContent = `Could not read /ui/state: ${error.message}; retrying.`;
      schedule(POLL_MS * 2);
    }
  } finally {
    ui.inFlight = false;
    if (ui.again) {
      ui.again = false;
      schedule(0);
    }
  }
}

function soon() {
  const wait = Math.max(0, SOON_MS - (Date.now() - ui.lastSnapshot));
  if (!ui.inFlight) schedule(Math.min(wait, POLL_MS));
}

function render(state) {
  ui.vocab = state.vocabulary;
  $("login").hidden = true;
  $("dash").hidden = false;
  const v = state.viewer;
  const scope = v.admin ? "admin, all jobs" : "own jobs";
  $("viewer").textContent = v.auth ? `${v.name} · ${scope}` : "auth off · all jobs";
  $("logout").hidden = !v.auth;
  renderTiles(state);
  renderQueue(state);
  renderChart(state.throughput);
  // A live event newer than this (up to a second old) snapshot keeps its progress.
  ui.running = new Map(state.running.map((job) => {
    const live = ui.running.get(job.job_id);
    const newer = live && live.version > job.version;
    const progress = newer ? { pages_done: live.pages_done, pages_total: live.pages_total, version: live.version } : {};
    return [job.job_id, { ...job, ...progress }];
  }));
  renderRunning();
  ui.failures = state.failures;
  renderFailures();
  renderCopies(state.copies);
  const at = new Date(state.generated_at).toLocaleTimeString();
  $("foot").textContent = `Snapshot ${at} from Postgres: the numbers of GET /jobs and /metrics.`;
}

function renderTiles(state) {
  const tiles = [];
  for (const status of ui.vocab.statuses) {
    const byLane = state.counts[status];
    const total = Object.values(byLane).reduce((a, b) => a + b, 0);
    const lanes = ui.vocab.lanes.map((lane) => `${lane} ${fmt(byLane[lane])}`).join(" · ");
    tiles.push(tile(status, fmt(total), lanes, ui.vocab.tones[status], { "data-status": status }));
  }
  const t = state.throughput;
  tiles.push(tile("pages/s", t.pages_per_s.toFixed(1), "last minute", "rate", { "data-rate": "pages" }));
  tiles.push(tile("jobs/min", fmt(t.jobs_per_min), "last minute", "rate", { "data-rate": "jobs" }));
  $("tiles").replaceChildren(...tiles);
}

function tile(label, value, detail, tone, attrs) {
  return el("div", { class: `tile tone-${tone}`, ...attrs },
    el("span", { class: "label", text: label }),
    el("span", { class: "value", text: value }),
    el("span", { class: "detail", text: detail }));
}

function renderQueue(state) {
  const rows = ui.vocab.lanes.map((lane) => {
    const q = state.queue[lane];
    return el("tr", { "data-lane": lane },
      el("td", {}, el("span", { class: `key lane-${ui.vocab.lanes.indexOf(lane)}` }), lane),
      el("td", { class: "num depth", text: fmt(q.depth) }),
      el("td", { class: "num", text: q.depth ? age(q.oldest_s) : "–" }));
  });
  $("queue").tBodies[0].replaceChildren(...rows);
}

// --- the chart (chart.js) ----------------------------------------------------------------

function renderChart(t) {
  ui.throughput = t;
  toriChart.draw($("chart"), t, ui.vocab.lanes);
  $("legend").replaceChildren(
    ...ui.vocab.lanes.map((lane, li) =>
      el("span", {}, el("span", { class: `key lane-${li}` }), `${lane} queued (peak)`)),
    el("span", {}, el("span", { class: "key k-bar" }), "pages/s"),
    el("span", {}, el("span", { class: "key k-jobs" }), "jobs/min (succeeded + failed)"),
    el("span", { class: "muted", text: `${t.bucket_s} s per bar` }));
}

// --- running jobs, failures, copies --------------------------------------------------------

function progressCells(job) {
  const total = job.pages_total;
  const bar = el("progress", { max: String(total || 1), value: String(total ? job.pages_done : 0) });
  const pct = total ? `${Math.floor((100 * job.pages_done) / total)}%` : "";
  const label = total ? `${fmt(job.pages_done)} / ${fmt(total)} pages` : "starting…";
  return el("td", { class: "progress", title: pct }, bar, el("span", { class: "figure", text: label }));
}

function runningRow(job) {
  return el("tr", { "data-job": job.job_id },
    el("td", { class: "mono", text: short(job.job_id), title: job.job_id }),
    el("td", { class: "file", text: job.filename || "…", title: job.filename || "" }),
    progressCells(job),
    el("td", { class: "opt mono", text: job.copy_name || "–" }),
    el("td", { class: "opt num", text: since(job.started_at) }));
}

function renderRunning() {
  const jobs = [...ui.running.values()];
  $("running").tBodies[0].replaceChildren(...jobs.map(runningRow));
  $("running-n").textContent = jobs.length ? fmt(jobs.length) : "";
  $("running-empty").hidden = jobs.length > 0;
}

// Busy per copy = its jobs in the Running list, counted from the same live data, so the two
// tables never disagree. Past the list's cap the snapshot's count (from the database) stays.
function renderBusy() {
  if (ui.running.size >= RUNNING_CAP) return;
  const counts = new Map();
  for (const job of ui.running.values()) {
    if (job.copy_name) counts.set(job.copy_name, (counts.get(job.copy_name) || 0) + 1);
  }
  for (const cell of $("copies").querySelectorAll("tr[data-copy] td.busy")) {
    cell.textContent = String(counts.get(cell.parentElement.dataset.copy) || 0);
  }
}

function renderFailures() {
  const rows = ui.failures.map((f) => {
    const retried = ui.retrying.get(f.job_id);
    if (retried && Date.parse(f.finished_at) > retried.at) ui.retrying.delete(f.job_id); // failed again
    const button = el("button", { type: "button", class: "retry", "data-job": f.job_id });
    button.textContent = ui.retrying.has(f.job_id) ? retried.label : "Retry";
    button.disabled = ui.retrying.has(f.job_id);
    button.addEventListener("click", () => retry(f.job_id, button));
    return el("tr", { "data-job": f.job_id },
      el("td", { class: "num when", text: since(f.finished_at), title: new Date(f.finished_at).toLocaleString() }),
      el("td", { class: "file", text: f.filename || short(f.job_id), title: `${f.filename} (${f.job_id})` }),
      el("td", {}, el("code", { class: "code", text: f.error.code })),
      el("td", { class: "opt message", text: f.error.message, title: f.error.message }),
      el("td", { class: "num attempts", text: String(f.attempts) }),
      el("td", {}, button));
  });
  $("failures").tBodies[0].replaceChildren(...rows);
  $("failures-empty").hidden = rows.length > 0;
}

async function retry(jobId, button) {
  const at = Date.now();
  ui.retrying.set(jobId, { label: "Retrying…", at });
  button.disabled = true;
  button.textContent = "Retrying…";
  try {
    const job = await api(`/jobs/${jobId}/retry`, { method: "POST" });
    ui.retrying.set(jobId, { label: `Retried: ${job.status}`, at });
    button.textContent = `Retried: ${job.status}`;
  } catch (error) {
    ui.retrying.delete(jobId);
    button.disabled = false;
    button.textContent = "Retry";
    $("foot").textContent = `Retry of ${short(jobId)} failed: ${error.message}`;
  }
  soon();
}

function renderCopies(copies) {
  const rows = copies.map((c) => el("tr", { "data-copy": c.name, class: c.stalled ? "stalled" : "" },
    el("td", { class: "mono", text: c.name, title: `version ${c.version}, since ${new Date(c.started_at).toLocaleString()}` }),
    el("td", { class: "num", text: String(c.processes) }),
    el("td", { class: "num busy", text: String(c.busy) }),
    el("td", { class: "num", text: String(c.recycled) }),
    el("td", { class: "num", text: c.stalled ? `stalled ${age(c.heartbeat_age_s)}` : ago(c.heartbeat_age_s) })));
  $("copies").tBodies[0].replaceChildren(...rows);
  $("copies-n").textContent = copies.length ? fmt(copies.length) : "";
  $("copies-empty").hidden = copies.length > 0;
  renderBusy();
}

// --- live: the /ws dashboard feed -----------------------------------------------------------

function setLive(state, text) {
  $("live").dataset.state = state;
  $("live").textContent = text;
}

function connect() {
  if (ui.socket && ui.socket.readyState <= WebSocket.OPEN) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws`);
  ui.socket = socket;
  socket.onopen = () => {
    ui.backoff = 1000;
    socket.send(JSON.stringify({ dashboard: true }));
    setLive("on", "live");
  };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "dashboard") applyBatch(data);
  };
  socket.onclose = (event) => {
    if (ui.socket !== socket) return;
    ui.socket = null;
    if (event.code === 4401) return showLogin("The session has ended: log in again.");
    if ($("dash").hidden) return;
    setLive("off", "reconnecting…");
    setTimeout(connect, ui.backoff);
    ui.backoff = Math.min(ui.backoff * 2, 15000);
  };
}

function showRate() {
  if (!ui.socket || ui.socket.readyState !== WebSocket.OPEN) return;
  const now = Date.now();
  ui.changes = ui.changes.filter(([at]) => now - at < 5000);
  const rate = ui.changes.reduce((sum, [, count]) => sum + count, 0) / 5;
  setLive("on", rate ? `live · ${rate.toFixed(rate < 10 ? 1 : 0)} job changes/s` : "live");
}

function applyBatch(batch) {
  ui.changes.push([Date.now(), batch.events.length + batch.dropped]);
  showRate();
  if (!ui.vocab) return;
  let moved = batch.resync || batch.dropped > 0;
  let runningChanged = false;
  for (const event of batch.events) {
    const known = ui.running.get(event.job_id);
    if (event.status === ui.vocab.running) {
      if (known && event.version < known.version) continue;
      const fresh = { job_id: event.job_id, filename: "", copy_name: null, started_at: new Date().toISOString() };
      const job = { ...(known || fresh), ...event };
      ui.running.set(event.job_id, job);
      if (!updateRunningRow(job)) runningChanged = true;
      if (!known) moved = true;
    } else {
      if (known) { ui.running.delete(event.job_id); runningChanged = true; }
      moved = true; // queued, ended: the counts and failures come with the next snapshot
    }
  }
  if (runningChanged) renderRunning();
  renderBusy();
  if (moved) soon();
}

function updateRunningRow(job) {
  const row = $("running").querySelector(`tr[data-job="${job.job_id}"]`);
  if (!row) return false;
  row.replaceChild(progressCells(job), row.querySelector("td.progress"));
  return true;
}

// --- start -------------------------------------------------------------------------------

function start() {
  $("login").hidden = true;
  snapshot().then(() => { if (!$("dash").hidden) connect(); });
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => {
      ui.range = button.dataset.range;
      for (const other of document.querySelectorAll("[data-range]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      snapshot();
    });
  }
  setInterval(showRate, 1000);
  window.addEventListener("resize", () => { if (ui.throughput) renderChart(ui.throughput); });
  start();
});
