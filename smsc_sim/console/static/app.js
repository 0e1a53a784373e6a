// The smsc-sim console: a client of the control API (/api/v1) and its live
// event stream (/api/v1/events), nothing else. Every value from the API is
// put in the page with textContent, never parsed as HTML.

const API = "/api/v1";
const TOKEN_KEY = "smsc-sim-token";
const CHART_POINTS = 300;       // five minutes of one-second ticks
const PDU_ROWS = 200;           // PDUs kept for the PDUs page
const LAST_PDUS = 5;            // PDUs shown per session on the Sessions page
const OUTAGE_MODES = ["crash", "graceful", "blackhole", "bind-hang", "reject-binds", "slow"];

const state = {
  page: "overview",
  token: sessionStorage.getItem(TOKEN_KEY),
  sessions: [],
  pdus: [],
  pdusBySession: new Map(),
  pdusPaused: false,
  selectedMessage: null,
  chart: null,
  chartData: [[], [], []],
  errorStatuses: [],
  streamOpen: false,
  dirty: new Set(),
  accounts: [],
};
window.smscConsole = state;  // for the browser tests and curious users

// -- DOM helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (selector) => document.querySelector(selector);

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function fmtTime(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const date = new Date(seconds * 1000);
  return date.toISOString().slice(11, 23);
}

function notice(message, ok = false) {
  const box = $("#notice");
  box.textContent = message;
  box.className = ok ? "ok" : "";
  box.hidden = !message;
  if (ok) setTimeout(() => { if (box.textContent === message) box.hidden = true; }, 3000);
}

// -- the API --------------------------------------------------------------------------------

let tokenPrompt = null;

function askToken() {
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve) => {
    const dialog = $("#token-dialog");
    const form = $("#token-form");
    form.addEventListener("submit", () => {
      state.token = $("#token-input").value.trim();
      sessionStorage.setItem(TOKEN_KEY, state.token);
      tokenPrompt = null;
      resolve(state.token);
    }, { once: true });
    dialog.showModal();
  });
  return tokenPrompt;
}

function headers(extra = {}) {
  const sent = { ...extra };
  if (state.token) sent.Authorization = `Bearer ${state.token}`;
  return sent;
}

async function api(method, path, body) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const options = { method, headers: headers(), cache: "no-store" };
    if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(API + path, options);
    if (response.status === 401) {
      await askToken();
      continue;
    }
    const type = response.headers.get("content-type") || "";
    const data = type.startsWith("application/json") ? await response.json() : await response.text();
    return { status: response.status, ok: response.ok, data };
  }
  throw new Error("the API keeps refusing the token");
}

function errorText(answer) {
  const error = answer.data && answer.data.error;
  return error ? `${error.status}: ${error.message}` : `HTTP ${answer.status}`;
}

// -- pages ------------------------------------------------------------------------------------

const pages = {};

function show(page) {
  if (!document.getElementById(`page-${page}`)) page = "overview";
  state.page = page;
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.page === page);
  if (location.hash !== `#${page}`) history.replaceState(null, "", `#${page}`);
  if (pages[page] && pages[page].show) pages[page].show();
  if (page === "overview" && state.chart) resizeChart();
}

// throttled refreshes: at most one a REFRESH_MS per kind, and only for the page on screen
const REFRESH_MS = 250;
const timers = {};
function refreshSoon(kind) {
  if (timers[kind]) return;
  timers[kind] = setTimeout(() => {
    timers[kind] = null;
    const run = refreshers[kind];
    if (run) run().catch((error) => notice(String(error)));
  }, REFRESH_MS);
}

const refreshers = {
  sessions: async () => {
    const answer = await api("GET", "/sessions");
    if (!answer.ok) return;
    state.sessions = answer.data.sessions;
    renderBound();
    renderSessions();
    renderPduSessions();
  },
  instances: async () => {
    const answer = await api("GET", "/instances");
    if (answer.ok) renderInstances(answer.data.instances);
  },
  messages: async () => {
    if (state.page !== "messages") { state.dirty.add("messages"); return; }
    await loadMessages();
    if (state.selectedMessage) await showMessage(state.selectedMessage, false);
  },
  scenario: async () => {
    if (state.page !== "scenario") { state.dirty.add("scenario"); return; }
    await loadScenario();
  },
};

// -- overview -----------------------------------------------------------------------------------

function renderInstances(instances) {
  const rows = instances.map((instance) => {
    const mode = el("select", { name: "mode", "aria-label": `outage mode for ${instance.name}` },
      OUTAGE_MODES.map((m) => el("option", {}, m)));
    const duration = el("input", { name: "duration", type: "number", min: "0", step: "any", placeholder: "s", "aria-label": "duration" });
    const start = el("button", { type: "button", className: "outage-start", onclick: async () => {
      const body = { mode: mode.value };
      if (duration.value !== "") body.duration = Number(duration.value);
      const answer = await api("POST", `/instances/${encodeURIComponent(instance.name)}/outage`, body);
      if (answer.ok) { notice(`${instance.name}: ${mode.value}`, true); refreshSoon("instances"); }
      else notice(errorText(answer));
    } }, "Start");
    const end = el("button", { type: "button", className: "outage-end", onclick: async () => {
      const answer = await api("DELETE", `/instances/${encodeURIComponent(instance.name)}/outage`);
      if (answer.ok) { notice(`${instance.name}: up`, true); refreshSoon("instances"); }
      else notice(errorText(answer));
    } }, "End");
    const up = instance.state === "up";
    return el("tr", { dataset: { instance: instance.name } },
      el("td", {}, instance.name),
      el("td", {}, instance.cluster),
      el("td", { className: `state ${up ? "state-up" : "state-down"}` }, instance.state),
      el("td", { className: "listening" }, (instance.listening || []).join(" ") || "closed"),
      el("td", { className: "num sessions" }, instance.sessions),
      el("td", {}, el("div", { className: "outage" }, mode, duration, start, end)));
  });
  // keep a half-typed outage form: redraw only when something the table shows changed
  const tbody = $("#instances tbody");
  const key = JSON.stringify(instances.map((i) => [i.name, i.cluster, i.state, i.listening, i.sessions]));
  if (tbody.dataset.key === key) return;
  tbody.dataset.key = key;
  replaceRows(tbody, rows);
}

function renderBound() {
  const groups = new Map();
  for (const session of state.sessions) {
    if (!session.bind_type) continue;
    const key = `${session.instance}\u0000${session.account}`;
    if (!groups.has(key)) groups.set(key, { instance: session.instance, account: session.account, transmitter: 0, receiver: 0, transceiver: 0 });
    groups.get(key)[session.bind_type] += 1;
  }
  const rows = [...groups.values()].sort((a, b) => (a.instance + a.account).localeCompare(b.instance + b.account)).map((g) =>
    el("tr", {}, el("td", {}, g.instance), el("td", {}, g.account), el("td", { className: "num" }, g.transmitter),
      el("td", { className: "num" }, g.receiver), el("td", { className: "num" }, g.transceiver)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "5", className: "hint" }, "no bound session")));
  replaceRows($("#bound tbody"), rows);
}

function onStats(stats) {
  $("#stat-pending").textContent = stats.pending;
  $("#stat-store").textContent = stats.store_size;
  $("#stat-sessions").textContent = stats.sessions;
  $("#stat-submits").textContent = stats.totals.submits;
  renderInstances(stats.instances);
  addChartPoint(stats);
  // counters and windows change without a session event: follow them while they are on screen
  if (state.page === "sessions") refreshSoon("sessions");
}

function chartSeries() {
  const palette = ["#d92d20", "#dc6803", "#7a5af8", "#ee46bc", "#0e9384", "#854a0e"];
  return [
    {},
    { label: "submits/s", stroke: "#2457c5", width: 2 },
    { label: "receipts/s", stroke: "#067647", width: 2 },
    ...state.errorStatuses.map((status, i) => ({ label: `${status}/s`, stroke: palette[i % palette.length], width: 1.5 })),
  ];
}

function chartSize() {
  const box = $("#chart");
  return { width: Math.max(280, box.clientWidth - 2), height: 240 };
}

function makeChart() {
  const options = {
    ...chartSize(),
    series: chartSeries(),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label: "per second" }],
    legend: { live: false },
  };
  if (state.chart) state.chart.destroy();
  state.chart = new uPlot(options, state.chartData, $("#chart"));
}

function resizeChart() {
  if (state.chart && state.page === "overview") state.chart.setSize(chartSize());
}

function addChartPoint(stats) {
  const errors = stats.rates.errors || {};
  let rebuild = false;
  for (const status of Object.keys(errors)) {
    if (!state.errorStatuses.includes(status)) {
      state.errorStatuses.push(status);
      state.chartData.push(state.chartData[0].map(() => 0));
      rebuild = true;
    }
  }
  const data = state.chartData;
  data[0].push(stats.time);
  data[1].push(stats.rates.submits);
  data[2].push(stats.rates.receipts);
  state.errorStatuses.forEach((status, i) => data[3 + i].push(errors[status] || 0));
  if (data[0].length > CHART_POINTS) for (const column of data) column.shift();
  if (typeof uPlot === "undefined") return;
  if (rebuild || !state.chart) makeChart();
  else state.chart.setData(data);
}

// -- sessions ------------------------------------------------------------------------------------

function renderSessions() {
  const rows = state.sessions.map((s) => {
    const last = (state.pdusBySession.get(s.session_id) || []).slice(-LAST_PDUS).map((p) =>
      el("div", {}, `${p.direction === "in" ? "\u2192" : "\u2190"} ${p.command} #${p.sequence_number}${p.command_status ? " " + p.status_name : ""}`));
    const end = (how) => el("button", { type: "button", className: `end-${how}`, onclick: async () => {
      const answer = await api("DELETE", `/sessions/${s.session_id}?how=${how}`);
      if (answer.ok) notice(`session ${s.session_id}: ${how}`, true);
      else notice(errorText(answer));
      refreshSoon("sessions");
    } }, how === "unbind" ? "Unbind" : "Reset");
    return el("tr", { dataset: { session: s.session_id } },
      el("td", {}, s.session_id), el("td", {}, s.instance), el("td", {}, s.account ?? ""),
      el("td", {}, s.bind_type ?? ""), el("td", {}, s.state), el("td", {}, s.peer),
      el("td", { className: "pdu-fields" }, Object.entries(s.counters || {}).map(([k, v]) => `${k}=${v}`).join(" ")),
      el("td", { className: "num" }, s.outbound_pending),
      el("td", { className: "lastpdus" }, last),
      el("td", {}, end("unbind"), " ", end("reset")));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "10", className: "hint" }, "no open session")));
  replaceRows($("#sessions tbody"), rows);
}

pages.sessions = { show: () => { refreshSoon("sessions"); } };

// -- messages -------------------------------------------------------------------------------------

function messageFilters() {
  const form = $("#message-filters");
  const query = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (String(value).trim()) query.set(key, String(value).trim());
  query.set("limit", "200");
  return query;
}

async function loadMessages() {
  state.dirty.delete("messages");
  // the newest last page: ask the count first, then the tail
  const query = messageFilters();
  query.set("limit", "1");
  const head = await api("GET", `/messages?${query}`);
  if (!head.ok) { notice(errorText(head)); return; }
  const total = head.data.count;
  const page = messageFilters();
  page.set("offset", String(Math.max(0, total - 200)));
  const answer = await api("GET", `/messages?${page}`);
  if (!answer.ok) { notice(errorText(answer)); return; }
  const messages = answer.data.messages.slice().reverse();
  const rows = messages.map((m) => el("tr", {
    className: `clickable${m.message_id === state.selectedMessage ? " selected" : ""}`,
    dataset: { message: m.message_id },
    onclick: () => showMessage(m.message_id, true),
  },
  el("td", {}, m.message_id), el("td", {}, m.direction), el("td", {}, m.account),
  el("td", {}, m.source_addr), el("td", {}, m.destination_addr), el("td", { className: "state" }, m.state),
  el("td", { className: "text" }, (m.reassembled_text ?? m.text ?? "").slice(0, 80))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "7", className: "hint" }, "no message")));
  replaceRows($("#messages tbody"), rows);
  $("#messages-count").textContent = `${total} message(s), newest first${total > 200 ? " (the newest 200 shown)" : ""}`;
}

function table(headings, rows) {
  return el("div", { className: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c ?? "")))))));
}

async function showMessage(id, select) {
  state.selectedMessage = id;
  const answer = await api("GET", `/messages/${encodeURIComponent(id)}`);
  const box = $("#message-detail");
  box.hidden = false;
  if (!answer.ok) { box.replaceChildren(el("p", { className: "error" }, errorText(answer))); return; }
  const m = answer.data;
  if (select) for (const row of document.querySelectorAll("#messages tbody tr")) row.classList.toggle("selected", row.dataset.message === id);
  const fields = [["id", m.message_id], ["direction", m.direction], ["account", m.account], ["instance", m.instance],
    ["session", m.session_id], ["from", m.source_addr], ["to", m.destination_addr], ["state", m.state], ["err", m.err],
    ["encoding", m.encoding], ["data_coding", m.data_coding], ["rule", m.rule], ["reason", m.reason],
    ["submitted", fmtTime(m.submit_time)], ["final", fmtTime(m.final_time)]];
  const stat = el("select", { name: "stat" }, ["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN", "ACCEPTD", "ENROUTE"].map((s) => el("option", {}, s)));
  const err = el("input", { name: "err", type: "number", min: "0", max: "999", placeholder: "err", size: "5" });
  const force = el("form", { className: "filters", id: "force-receipt", onsubmit: async (event) => {
    event.preventDefault();
    const body = { stat: stat.value };
    if (err.value !== "") body.err = Number(err.value);
    const result = await api("POST", `/messages/${encodeURIComponent(id)}/receipt`, body);
    if (result.ok) { notice(`receipt ${stat.value} forced`, true); showMessage(id, false); }
    else notice(errorText(result));
  } }, el("label", {}, "stat", stat), el("label", {}, "err", err), el("button", { type: "submit" }, "Force receipt"));
  box.replaceChildren(
    el("h3", {}, `Message ${m.message_id}`),
    el("dl", {}, fields.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")])),
    el("h3", {}, "Text"),
    el("div", { className: "text message-text" }, m.reassembled_text ?? m.text ?? `(binary) ${m.short_message_hex ?? ""}`),
    el("h3", {}, "History"),
    table(["time", "state"], (m.history || []).map((h) => [fmtTime(h.time), h.state])),
    el("h3", {}, "Receipts and outcomes"),
    table(["time", "stat", "err", "command", "outcome", "status", "attempts"],
      (m.receipts || []).map((r) => [fmtTime(r.time), r.stat, r.err, r.command, r.outcome, r.status, r.attempts])),
    m.direction === "mt" ? force : el("p", { className: "hint" }, "An MO message has no receipt to force."));
}

pages.messages = { show: () => { if (state.dirty.has("messages") || !$("#messages tbody").children.length) refreshSoon("messages"); } };

// -- scenario -----------------------------------------------------------------------------------

async function loadScenario() {
  state.dirty.delete("scenario");
  const [current, shipped] = await Promise.all([api("GET", "/scenario"), api("GET", "/scenarios")]);
  if (!current.ok) { notice(errorText(current)); return; }
  const s = current.data.scenario;
  $("#scenario-summary").replaceChildren(
    el("p", {}, el("strong", { id: "scenario-name" }, s.name ?? ""), " ", el("span", { className: "hint" }, s.source ?? "")),
    el("p", {}, s.description ?? ""),
    el("p", { className: "hint" }, `rule set ${s.rule_set ?? "-"}, ${s.submits ?? 0} submits seen, seed ${s.seed ?? "-"}`));
  const rows = [];
  for (const [set, rules] of Object.entries(s.rule_sets || {})) {
    rules.forEach((rule, i) => {
      const { hits, ...rest } = rule;
      rows.push(el("tr", {}, el("td", {}, set), el("td", {}, i + 1), el("td", { className: "pdu-fields" }, JSON.stringify(rest)), el("td", { className: "num" }, hits ?? 0)));
    });
  }
  for (const reply of s.auto_replies || []) rows.push(el("tr", {}, el("td", {}, "auto reply"), el("td", {}, ""), el("td", {}, reply.name), el("td", { className: "num" }, reply.hits)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", className: "hint" }, "no rule: every submit gets the default behaviour")));
  replaceRows($("#rules tbody"), rows);
  if (shipped.ok) {
    const select = $("#scenario-names");
    const chosen = select.value || shipped.data.active;
    select.replaceChildren(...shipped.data.scenarios.map((name) => el("option", { selected: name === chosen }, name)));
  }
}

function showYamlError(source, error) {
  const box = $("#yaml-error");
  box.hidden = false;
  $("#yaml-error-message").textContent = error.message;
  const lines = source.split("\n");
  const bad = Number(error.line) || null;
  $("#yaml-lines").replaceChildren(...lines.map((line, i) =>
    el("span", { className: bad === i + 1 ? "yaml-error-line" : null, dataset: { line: i + 1 } }, line || " ")));
  const marked = $("#yaml-lines .yaml-error-line");
  if (marked) marked.scrollIntoView({ block: "nearest" });
  if (bad) {
    // put the caret on the line in the editor too
    const area = $("#yaml-text");
    const start = lines.slice(0, bad - 1).reduce((n, l) => n + l.length + 1, 0);
    area.focus();
    area.setSelectionRange(start, start + (lines[bad - 1] || "").length);
  }
}

function setupScenario() {
  $("#yaml-text").value = "name: edited\nreceipt:\n  stat: DELIVRD\n  delay: 2s\n";
  $("#scenario-switch").addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await api("PUT", "/scenario", { name: $("#scenario-names").value });
    if (answer.ok) { notice(`scenario ${answer.data.scenario.name} loaded`, true); loadScenario(); }
    else notice(errorText(answer));
  });
  $("#scenario-yaml").addEventListener("submit", async (event) => {
    event.preventDefault();
    const source = $("#yaml-text").value;
    const answer = await api("PUT", "/scenario", { yaml: source });
    if (answer.ok) {
      $("#yaml-error").hidden = true;
      notice(`scenario ${answer.data.scenario.name} loaded`, true);
      loadScenario();
    } else if (answer.data && answer.data.error) {
      showYamlError(source, answer.data.error);
    } else notice(errorText(answer));
  });
}

pages.scenario = { show: () => refreshSoon("scenario") };

// -- MO ------------------------------------------------------------------------------------------

function setupMO() {
  $("#mo-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = { source: form.get("source"), destination: form.get("destination"), text: form.get("text") };
    for (const key of ["account", "encoding", "split"]) if (form.get(key)) body[key] = form.get(key);
    const count = Number(form.get("count") || 1);
    if (count !== 1) body.count = count;
    const answer = await api("POST", "/mo", body);
    const result = $("#mo-result");
    if (answer.ok) {
      result.className = "";
      result.replaceChildren("Sent: ", ...answer.data.message_ids.slice(0, 20).map((id) =>
        el("a", { href: "#messages", onclick: () => { setTimeout(() => showMessage(id, true), 0); } }, id, " ")));
    } else {
      result.className = "error";
      result.textContent = errorText(answer);
    }
  });
}

// -- conformance -----------------------------------------------------------------------------------

const VERDICT_CLASS = { pass: "state-up", warn: "state-warn", fail: "state-down" };

function renderConformance(report) {
  // the judge's report (GET /api/v1/conformance): verdict, counts by code, then each finding with its evidence
  const verdict = el("p", { id: "conformance-verdict" }, "verdict: ",
    el("span", { className: VERDICT_CLASS[report.verdict] || "" }, report.verdict),
    ` (${report.severities.error || 0} error, ${report.severities.warning || 0} warning, ${report.severities.info || 0} info` +
    `${report.dropped ? `, ${report.dropped} dropped past the limit` : ""})`);
  const reset = el("button", { type: "button", id: "conformance-reset", onclick: async () => {
    await api("POST", "/conformance/reset", {});
    probeConformance();
  } }, "Forget the findings");
  const counts = table(["code", "occurrences"], Object.entries(report.counts).map(([code, n]) => [code, n]));
  const findings = table(["severity", "code", "account", "session", "instance", "count", "first", "last", "detail", "evidence"],
    report.findings.map((f) => [
      el("span", { className: f.severity === "error" ? "state-down" : f.severity === "warning" ? "state-warn" : "" }, f.severity),
      f.code, f.account, f.session_id, f.instance, f.count, fmtTime(f.first_time), fmtTime(f.last_time), f.detail,
      (f.evidence || []).map((e) => `${e.command} seq=${e.sequence_number ?? "-"}${e.status_name ? ` ${e.status_name}` : ""}`).join("; "),
    ]));
  return [verdict, reset,
    report.findings.length ? [el("h3", {}, "By code"), counts, el("h3", {}, "Findings"), findings]
      : el("p", {}, "No findings: nothing the ESMEs did broke a rule the judge checks.")];
}

async function probeConformance() {
  // ask the API's own description whether this version has the report, so that no 404 is ever logged
  const description = await api("GET", "/openapi.json");
  const known = description.ok && description.data.paths && "/api/v1/conformance" in description.data.paths;
  const answer = known ? await api("GET", "/conformance") : { ok: false };
  const tab = $('#tabs button[data-page="conformance"]');
  tab.hidden = !answer.ok;
  if (answer.ok) $("#conformance").replaceChildren(...renderConformance(answer.data).flat());
  return answer.ok;
}

pages.conformance = { show: () => probeConformance() };

// -- PDUs --------------------------------------------------------------------------------------------

function pduFields(p) {
  const parts = Object.entries(p.params || {}).map(([k, v]) => `${k}=${v}`);
  for (const [tag, v] of Object.entries(p.tlvs || {})) parts.push(`${tag}=${v}`);
  return parts.join(" ");
}

function pduRow(p) {
  return el("tr", { dataset: { session: p.session_id } },
    el("td", {}, fmtTime(p.time)), el("td", {}, p.session_id), el("td", {}, p.direction), el("td", {}, p.command),
    el("td", { className: "num" }, p.sequence_number), el("td", {}, p.status_name),
    el("td", { className: "pdu-fields" }, pduFields(p)));
}

function renderPdus() {
  const wanted = $("#pdu-session").value;
  const shown = state.pdus.filter((p) => !wanted || String(p.session_id) === wanted).slice(-PDU_ROWS).reverse();
  replaceRows($("#pdus tbody"), shown.map(pduRow));
  $("#pdu-count").textContent = `${shown.length} shown${state.pdusPaused ? ", paused" : ""}`;
}

function renderPduSessions() {
  const select = $("#pdu-session");
  const chosen = select.value;
  const ids = new Set(state.sessions.map((s) => String(s.session_id)));
  for (const p of state.pdus) ids.add(String(p.session_id));
  select.replaceChildren(el("option", { value: "" }, "all"),
    ...[...ids].sort((a, b) => Number(a) - Number(b)).map((id) => el("option", { value: id, selected: id === chosen }, id)));
}

function onPdu(p) {
  const list = state.pdusBySession.get(p.session_id) || [];
  list.push(p);
  if (list.length > LAST_PDUS) list.shift();
  state.pdusBySession.set(p.session_id, list);
  if (state.pdusPaused) return;
  state.pdus.push(p);
  if (state.pdus.length > PDU_ROWS * 5) state.pdus.splice(0, state.pdus.length - PDU_ROWS * 5);
  if (state.page === "pdus") refreshSoon("pdus");
}
refreshers.pdus = async () => renderPdus();

function setupPdus() {
  $("#pdu-session").addEventListener("change", renderPdus);
  $("#pdu-pause").addEventListener("click", () => {
    state.pdusPaused = !state.pdusPaused;
    $("#pdu-pause").textContent = state.pdusPaused ? "Resume" : "Pause";
    renderPdus();
  });
}

pages.pdus = { show: () => { renderPduSessions(); renderPdus(); } };

// -- the live stream ----------------------------------------------------------------------------------

function setLive(on, text) {
  const badge = $("#live");
  badge.className = `live ${on ? "on" : "off"}`;
  badge.textContent = text;
  state.streamOpen = on;
}

function dispatch(kind, data) {
  switch (kind) {
    case "stats": onStats(data); break;
    case "pdu": onPdu(data); break;
    case "message": case "delivery":
      refreshSoon("messages");
      if (kind === "message" && state.page === "scenario") refreshSoon("scenario");
      break;
    case "connection": case "bind": case "bind_refused": case "unbind": case "session_closed":
      refreshSoon("sessions");
      break;
    case "outage":
      refreshSoon("instances");
      refreshSoon("sessions");
      break;
    default: break;
  }
}

async function stream() {
  for (;;) {
    try {
      const response = await fetch(`${API}/events?pdus=1`, { headers: headers(), cache: "no-store" });
      if (response.status === 401) { setLive(false, "token needed"); await askToken(); continue; }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setLive(true, "live");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let kind = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) {
            try { dispatch(kind, JSON.parse(data.join("\n"))); } catch (error) { console.warn("bad event", kind, error); }
          }
        }
      }
      setLive(false, "reconnecting");
    } catch (error) {
      setLive(false, "offline");
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// -- start ---------------------------------------------------------------------------------------------

async function start() {
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => show(button.dataset.page));
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  window.addEventListener("resize", () => resizeChart());
  $("#message-filters").addEventListener("submit", (event) => { event.preventDefault(); loadMessages(); });
  setupScenario();
  setupMO();
  setupPdus();
  const info = await api("GET", "");
  if (info.ok) {
    state.accounts = info.data.accounts || [];
    $("#mo-accounts").replaceChildren(...state.accounts.map((a) => el("option", {}, a)));
    document.title = `smsc-sim ${info.data.version} console`;
  }
  await Promise.all([refreshers.instances(), refreshers.sessions(), probeConformance()]);
  show(location.hash.slice(1) || "overview");
  makeChart();
  stream();
}

start().catch((error) => notice(`the console could not start: ${error}`));
