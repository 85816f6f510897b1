// ai-quant monitor page: polls the JSON API, streams mids over SSE, draws small SVG charts.
// No framework, no build step, nothing loaded from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  mode: new URLSearchParams(location.search).get("mode") || "",
  snap: null, symbols: [], mids: {}, history: {}, decisions: [], selected: null, stream: null,
  equity: null, candles: null,
};

// ---- formatting -------------------------------------------------------------------------------
const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x)) ? "–"
  : Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const px = (x) => x === null || x === undefined ? "–" : Number(x).toPrecision(6).replace(/\.?0+$/, "");
const usd = (x) => x === null || x === undefined ? "–" : (x < 0 ? "-$" : "$") + fmt(Math.abs(x));
const signed = (x, unit = "") => x === null || x === undefined ? "–" : (x > 0 ? "+" : "") + fmt(x) + unit;
const cls = (x) => x > 0 ? "up" : x < 0 ? "down" : "";
const utc = (ms) => ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "–";
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function cell(v, className = "") { return `<td class="${className}">${esc(v)}</td>`; }
function fill(tableId, rows, empty) {
  $(tableId).querySelector("tbody").innerHTML = rows.length ? rows.join("")
    : `<tr><td colspan="9" class="muted">${esc(empty)}</td></tr>`;
}
function pill(id, text, level) { const el = $(id); el.textContent = text; el.className = "pill " + level; }

// ---- API ------------------------------------------------------------------------------------------
async function api(path, params = {}) {
  const q = new URLSearchParams({ mode: state.mode, ...params });
  const r = await fetch(`${path}?${q}`, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) { $("token-form").hidden = false; throw new Error("token required"); }
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// A token in the URL fragment (#token=...) never reaches a server log; keep it as a same-site cookie
// so EventSource (which cannot send headers) is authorised too.
function adoptToken(token) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `aiq_monitor_token=${encodeURIComponent(token)}; path=/; SameSite=Strict${secure}`;
}
if (location.hash.startsWith("#token=")) {
  adoptToken(decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, "", location.pathname + location.search);
}
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault(); adoptToken($("token-input").value); location.reload();
});

// ---- snapshot ---------------------------------------------------------------------------------------
async function refreshSnapshot() {
  let s;
  try { s = await api("/api/snapshot"); } catch (err) { pill("pill-conn", "API down", "bad"); return; }
  state.snap = s; state.mode = s.mode;
  pill("pill-conn", "API ok", "ok");
  const hb = s.heartbeat;
  pill("pill-hb", hb.present ? `heartbeat ${fmt(hb.age_s, 0)} s` : "no heartbeat", hb.stale ? "bad" : "ok");
  pill("pill-db", s.db.ok ? "DB ok" : "DB missing", s.db.ok ? "ok" : "bad");
  pill("pill-mids", !s.sidecar.connected ? "mids down" : s.sidecar.stale ? "mids stale" : "mids live",
    !s.sidecar.connected ? "bad" : s.sidecar.stale ? "warn" : "ok");
  pill("pill-config", `config ${s.config_id || "–"}`, "muted");
  $("footer-version").textContent = `monitor ${s.monitor_version}${s.version ? ", daemon " + s.version : ""}`;
  document.querySelectorAll(".modes button").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.dataset.mode === s.mode)));
  showKill(s.kill);
  const w = $("warnings");
  w.innerHTML = s.warnings.map((x) => `<li>${esc(x)}</li>`).join("");
  w.hidden = !s.warnings.length;

  const b = s.balances;
  $("equity").textContent = usd(b.equity);
  $("cash").textContent = usd(b.cash);
  $("upnl").textContent = signed(b.unrealized_pnl); $("upnl").className = cls(b.unrealized_pnl);
  $("daily-label").textContent = s.daily.date ? `PnL ${s.daily.date} (net)` : "Day PnL";
  $("daily").textContent = signed(s.daily.net); $("daily").className = cls(s.daily.net);
  $("dd").textContent = signed(s.drawdown.current_pct, " %"); $("dd").className = cls(s.drawdown.current_pct);
  $("maxdd").textContent = signed(s.drawdown.max_pct, " %"); $("maxdd").className = cls(s.drawdown.max_pct);

  $("pos-count").textContent = `(${s.open_positions.length})`;
  fill("positions", s.open_positions.map((p) => `<tr data-symbol="${esc(p.symbol)}">` +
    cell(p.owner === "operator" ? `${p.symbol} (operator)` : p.symbol, p.owner === "operator" ? "operator" : "") +
    cell(p.side, p.side === "long" ? "up" : "down") + cell(px(p.size)) + cell(px(p.entry_price)) +
    cell(px(p.mid)) + cell(signed(p.unrealized_pnl), cls(p.unrealized_pnl)) + cell(fmt(p.leverage, 1)) +
    cell(px(p.trailing_sl)) + "</tr>"), "no open positions");
  fill("trades", s.recent_trades.map(tradeRow), "no trades yet");

  const syms = [...new Set([...s.symbols, ...s.open_positions.map((p) => p.symbol)])];
  if (syms.join() !== state.symbols.join()) { state.symbols = syms; setupCandleControls(s); openStream(); }
  $("oms-panel").hidden = s.mode !== "live";
}

function tradeRow(t) {
  return `<tr data-trade-id="${t.id}">` + cell(utc(t.ts_ms)) + cell(t.symbol) + cell(t.action) +
    cell(t.type, t.type === "LONG" ? "up" : "down") + cell(px(t.price)) + cell(px(t.size)) +
    cell(signed(t.pnl), cls(t.pnl)) + cell(fmt(t.fee_usd, 4)) + cell(t.reason_code || t.reason) + "</tr>";
}

function showKill(kill) {
  const el = $("kill-banner");
  const text = {
    close_only: "KILL SWITCH: CLOSE ONLY — no new entries; exits still run",
    halt_all: "KILL SWITCH: HALT ALL — no orders at all",
    hard: "HARD KILL SWITCH — every order blocked in every mode",
  }[kill.state];
  el.hidden = kill.state === "off";
  el.className = text ? "kill" : "kill unknown";
  const since = (kill.events || []).find((e) => e.to === kill.state);
  el.textContent = text ? text + (kill.reason ? ` (${kill.reason})` : "") + (since ? ` since ${utc(since.ts_ms)} UTC` : "")
    : `Kill-switch state unknown (${kill.state}): no readable daemon heartbeat`;
  el.dataset.state = kill.state;
}

// ---- live mids (SSE) ------------------------------------------------------------------------------
async function loadMidHistory() {
  try {
    const m = await api("/api/mids", { history: 1, symbols: state.symbols.join(",") });
    state.history = m.history || {}; state.mids = m.mids || {}; drawMids();
  } catch (err) { /* the stream will fill in */ }
}

function openStream() {
  if (state.stream) state.stream.close();
  if (!state.symbols.length) return;
  loadMidHistory();
  // EventSource reconnects by itself (after the server's `retry`), sending Last-Event-ID.
  const es = new EventSource(`/api/mids/stream?symbols=${encodeURIComponent(state.symbols.join(","))}`);
  es.addEventListener("mids", (e) => {
    const m = JSON.parse(e.data);
    state.mids = m.mids;
    for (const [sym, p] of Object.entries(m.mids)) {
      const h = (state.history[sym] ||= []);
      h.push([m.ts_ms, p]);
      while (h.length && m.ts_ms - h[0][0] > 600000) h.shift();
    }
    pill("pill-mids", "mids live", "ok");
    $("mids-age").textContent = `seq ${m.seq}`;
    drawMids();
  });
  es.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    pill("pill-mids", "mids down", "bad"); $("mids-age").textContent = s.error || "sidecar down";
  });
  es.onerror = () => pill("pill-mids", "mids reconnecting", "warn");
  state.stream = es;
}

function drawMids() {
  fill("mids", state.symbols.map((sym) => `<tr data-symbol="${esc(sym)}">` + cell(sym) +
    `<td class="mid">${esc(px(state.mids[sym]))}</td><td>${sparkline(state.history[sym] || [])}</td></tr>`),
    "no symbols");
}

function sparkline(points) {
  if (points.length < 2) return "";
  const ys = points.map((p) => p[1]), lo = Math.min(...ys), hi = Math.max(...ys);
  const t0 = points[0][0], span = (points[points.length - 1][0] - t0) || 1;
  const path = points.map((p, i) => `${i ? "L" : "M"}${(100 * (p[0] - t0) / span).toFixed(1)},` +
    `${(18 - 16 * (p[1] - lo) / ((hi - lo) || 1)).toFixed(1)}`).join("");
  const c = ys[ys.length - 1] >= ys[0] ? "var(--up)" : "var(--down)";
  return `<svg class="spark" width="100" height="20" viewBox="0 0 100 20"><path d="${path}" fill="none" stroke="${c}"/></svg>`;
}

// ---- charts -----------------------------------------------------------------------------------------
// Each chart is drawn at the element's own pixel size (viewBox = client size), so text is never
// stretched; the last data is kept to redraw on resize.
function scale(lo, hi, a, b) { const k = (b - a) / ((hi - lo) || 1); return (v) => a + (v - lo) * k; }
function canvas(id) {
  const svg = $(id), W = svg.clientWidth || 800, H = svg.clientHeight || 220;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  return { svg, W, H };
}

async function refreshEquity() {
  try { state.equity = (await api("/api/equity")).equity; } catch (err) { return; }
  drawEquity();
}

function drawEquity() {
  const { svg, W, H } = canvas("equity-chart"), pts = state.equity ? state.equity.points : [];
  if (pts.length < 2) { svg.innerHTML = `<text x="10" y="20">no equity history yet</text>`; return; }
  const x = scale(pts[0].ts_ms, pts[pts.length - 1].ts_ms, 60, W - 10), split = Math.round(H * 0.7);
  const eq = pts.map((p) => p.equity), y = scale(Math.min(...eq), Math.max(...eq), split - 10, 10);
  const dd = pts.map((p) => p.drawdown_pct), yd = scale(Math.min(...dd, -0.01), 0, H - 4, split + 6);
  const line = (f) => pts.map((p, i) => `${i ? "L" : "M"}${x(p.ts_ms).toFixed(1)},${f(p).toFixed(1)}`).join("");
  svg.innerHTML =
    `<path d="${line((p) => y(p.equity))}" fill="none" stroke="var(--accent)" stroke-width="1.5"/>` +
    `<path d="${line((p) => yd(p.drawdown_pct))}L${x(pts[pts.length - 1].ts_ms)},${split + 6}L60,${split + 6}Z"` +
    ` fill="var(--down)" opacity=".5"/>` +
    `<text x="2" y="14">${esc(fmt(Math.max(...eq), 0))}</text>` +
    `<text x="2" y="${split - 6}">${esc(fmt(Math.min(...eq), 0))}</text>` +
    `<text x="2" y="${split + 16}">DD</text><text x="2" y="${H - 4}">${esc(fmt(Math.min(...dd), 1))}%</text>`;
}

function setupCandleControls(s) {
  const sel = $("candle-symbol"), iv = $("candle-interval"), cur = sel.value;
  sel.innerHTML = state.symbols.map((x) => `<option>${esc(x)}</option>`).join("");
  const open = s.open_positions.map((p) => p.symbol);
  sel.value = state.symbols.includes(cur) ? cur : open[0] || state.symbols[0];
  const ivs = [...new Set([s.default_interval, ...s.candle_intervals])];
  if (iv.options.length !== ivs.length) {
    iv.innerHTML = ivs.map((x) => `<option>${esc(x)}</option>`).join(""); iv.value = s.default_interval;
  }
  refreshCandles();
}

async function refreshCandles() {
  const symbol = $("candle-symbol").value;
  if (!symbol) return;
  try { state.candles = await api("/api/candles", { symbol, interval: $("candle-interval").value, limit: 120 }); }
  catch (err) { return; }
  $("candle-note").textContent = state.candles.warnings.join("; ");
  drawCandles();
}

function drawCandles() {
  const { svg, W, H } = canvas("candle-chart"), c = state.candles, bars = c ? c.candles : [];
  if (!bars.length) { svg.innerHTML = `<text x="10" y="20">no candles</text>`; return; }
  const step = (W - 70) / bars.length, t0 = bars[0][0];
  const tStep = bars.length > 1 ? (bars[bars.length - 1][0] - t0) / (bars.length - 1) : 1;
  const hi = Math.max(...bars.map((b) => b[2])), lo = Math.min(...bars.map((b) => b[3]));
  const y = scale(lo, hi, H - 12, 12), xOf = (t) => 64 + ((t - t0) / (tStep || 1) + 0.5) * step;
  let out = bars.map((b) => {
    const up = b[4] >= b[1], x = xOf(b[0]), col = up ? "var(--up)" : "var(--down)";
    const top = y(Math.max(b[1], b[4])), h = Math.max(1, Math.abs(y(b[1]) - y(b[4])));
    return `<line x1="${x}" x2="${x}" y1="${y(b[2])}" y2="${y(b[3])}" stroke="${col}"/>` +
      `<rect x="${x - step * 0.35}" y="${top}" width="${step * 0.7}" height="${h}" fill="${col}"/>`;
  }).join("");
  const entry = (a) => a === "OPEN" || a === "ADD";
  out += c.marks.filter((m) => m.ts_ms >= t0).map((m) => {
    const x = Math.min(xOf(m.ts_ms), W - 6), yy = y(m.price), up = entry(m.action);
    const tri = up ? `${x - 6},${yy + 10} ${x + 6},${yy + 10} ${x},${yy}` : `${x - 6},${yy - 10} ${x + 6},${yy - 10} ${x},${yy}`;
    return `<polygon class="mark ${up ? "entry" : "exit"}" points="${tri}" fill="${up ? "var(--up)" : "var(--down)"}"` +
      ` stroke="#fff" stroke-width=".7"><title>${esc(m.action + " " + m.type + " @ " + px(m.price))}</title></polygon>`;
  }).join("");
  svg.innerHTML = out + `<text x="2" y="14">${esc(px(hi))}</text><text x="2" y="${H - 4}">${esc(px(lo))}</text>`;
}
window.addEventListener("resize", () => { drawEquity(); drawCandles(); });

// ---- decisions and gates ---------------------------------------------------------------------------
async function refreshDecisions() {
  let d;
  try { d = await api("/api/decisions", { limit: 60 }); } catch (err) { return; }
  state.decisions = d.decisions || [];
  $("decisions").innerHTML = state.decisions.map((x, i) =>
    `<li class="${esc(x.status)}" data-i="${i}" tabindex="0" aria-selected="${x.id === state.selected}">` +
    `${esc(utc(x.ts_ms).slice(5))} <b>${esc(x.symbol)}</b> ${esc(x.event_type)} → <b>${esc(x.status)}</b>` +
    `${x.rejection_reason ? " (" + esc(x.rejection_reason) + ")" : ""} <small>${esc(x.action || x.reason_code)}</small></li>`
  ).join("") || `<li class="muted">no decisions yet</li>`;
  const sel = state.decisions.find((x) => x.id === state.selected) || state.decisions[0];
  if (sel) showGates(sel);  // the newest one until the operator picks another
}

function showGates(d) {
  state.selected = d.id;
  $("gate-title").textContent = `${d.symbol} ${d.event_type} ${d.status} ${utc(d.ts_ms)}`;
  const val = (v) => typeof v === "number" ? px(v) : v !== null && typeof v === "object"
    ? Object.entries(v).map(([k, x]) => `${k}=${val(x)}`).join(" ") : String(v ?? "–");
  fill("gates", d.gates.map((g) => `<tr>` + cell(g.name) + (g.name === "bar_t" ? cell(utc(g.value)) :
    cell(g.value === null && g.detail ? val(g.detail) : val(g.value) + (g.detail ? " " + val(g.detail) : ""))) +
    cell(g.op ? `${g.op} ${val(g.threshold)}` : "") +
    cell(g.passed === null ? "" : g.passed ? "yes" : "NO", g.passed === false ? "down" : g.passed ? "up" : "") +
    "</tr>"), "no gate values recorded");
  document.querySelectorAll("#decisions li").forEach((li) =>
    li.setAttribute("aria-selected", String(state.decisions[li.dataset.i]?.id === d.id)));
}

function pickDecision(e) {
  const li = e.target.closest("li[data-i]");
  if (li && (e.type === "click" || e.key === "Enter")) showGates(state.decisions[li.dataset.i]);
}
$("decisions").addEventListener("click", pickDecision);
$("decisions").addEventListener("keydown", pickDecision);

// ---- OMS (live) -------------------------------------------------------------------------------------
async function refreshOms() {
  if (state.mode !== "live") return;
  let o;
  try { o = (await api("/api/oms", { limit: 20 })).oms; } catch (err) { return; }
  if (!o) { fill("oms", [], "no OMS tables"); return; }
  const rows = [];
  for (const [kind, list] of Object.entries(o)) {
    for (const r of list) {
      rows.push(`<tr>` + cell(kind) + cell(utc(r.ts_ms || r.created_ts_ms || r.last_seen_ms)) + cell(r.symbol) +
        cell(r.side) + cell(r.status || r.result || r.kind || "") + cell(r.requested_size || r.size || r.remaining_size || "") +
        cell(r.intent_id || r.exchange_order_id || r.id || "") + "</tr>");
    }
  }
  fill("oms", rows, "no OMS activity");
}

// ---- wiring -----------------------------------------------------------------------------------------
document.querySelectorAll(".modes button").forEach((b) => b.addEventListener("click", () => {
  state.mode = b.dataset.mode; state.selected = null;
  history.replaceState(null, "", `?mode=${state.mode}`);
  refreshAll();
}));
$("candle-symbol").addEventListener("change", refreshCandles);
$("candle-interval").addEventListener("change", refreshCandles);

// Report pages (replay, sweep, factory) found in <data dir>/reports; each opens as its own page.
async function refreshReports() {
  const r = await fetch("/api/reports", { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) return;
  const d = await r.json();
  $("reports-folder").textContent = `from ${d.folder}`;
  const body = $("reports").tBodies[0];
  if (!d.reports.length) return;
  body.replaceChildren(...d.reports.map((x) => {
    const tr = document.createElement("tr");
    tr.dataset.kind = x.kind;
    const a = document.createElement("a");
    a.href = x.url; a.target = "_blank"; a.rel = "noopener"; a.textContent = x.name;
    const cells = [x.kind, a, new Date(x.mtime_ms).toISOString().slice(0, 16).replace("T", " "),
      `${(x.bytes / 1e6).toFixed(2)} MB`];
    for (const c of cells) { const td = tr.insertCell(); if (typeof c === "string") td.textContent = c; else td.appendChild(c); }
    return tr;
  }));
}

async function refreshAll() {
  await refreshSnapshot();
  refreshEquity(); refreshCandles(); refreshDecisions(); refreshOms(); refreshReports();
}
const every = (ms, fn) => setInterval(() => { if (!document.hidden) fn(); }, ms);
refreshAll();
every(2000, refreshSnapshot);
every(5000, refreshDecisions);
every(10000, refreshEquity);
every(10000, refreshCandles);
every(5000, refreshOms);
every(30000, refreshReports);
