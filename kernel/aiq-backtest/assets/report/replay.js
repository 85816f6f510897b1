// ai-quant replay report: draws the embedded payload with plotly.js. No network access.
"use strict";
(function () {
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const R = D.report;
  const CFG = { displaylogo: false, responsive: true };
  const drawn = [];
  const $ = (id) => document.getElementById(id);
  const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "n/a" : Number(x).toFixed(d));
  const isoT = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  const cls = (x) => (x < 0 ? "neg" : x > 0 ? "pos" : "");
  const layout = (title, extra) => Object.assign({ title: { text: title, font: { size: 13 } },
    margin: { l: 60, r: 20, t: 36, b: 40 }, showlegend: false }, extra || {});
  function plot(id, data, lay, cfg) {
    const el = $(id);
    drawn.push(Plotly.newPlot(el, data, lay, Object.assign({}, CFG, cfg || {}))
      .then(() => { el.dataset.drawn = "1"; }));
  }

  // header and summary
  $("title").textContent = `Replay report: ${R.strategy}${R.strategy_mode ? " / " + R.strategy_mode : ""}`;
  $("meta").textContent = `config_id ${R.config_id} | ${R.config_path} | ${R.inputs.interval} ` +
    `${R.inputs.first_bar} to ${R.inputs.last_bar} | ${R.inputs.symbols.length} symbols, ${R.bars} bars | ${R.tool}`;
  const cards = [
    ["Net PnL", fmt(R.total_pnl), R.total_pnl], ["Return %", fmt(R.total_return_pct), R.total_return_pct],
    ["Final equity", fmt(R.final_equity)], ["Max drawdown %", fmt(R.max_drawdown_pct), -1],
    ["Profit factor", fmt(R.profit_factor)], ["Win rate %", fmt(R.win_rate * 100, 1)],
    ["Trades", String(R.total_trades)], ["Sharpe", fmt(R.sharpe_ratio)], ["Sortino", fmt(R.sortino_ratio)],
    ["Fees", fmt(-R.total_fees), -1], ["Funding", fmt(R.total_funding), R.total_funding],
    ["Exposure %", fmt(R.exposure_pct, 1)], ["Open at end", String(R.open_positions_at_end)],
    ["Liquidations", String(R.liquidations)],
  ];
  $("cards").innerHTML = "";
  for (const [k, v, s] of cards) {
    const d = document.createElement("div");
    d.className = "card";
    d.innerHTML = `<div class="k"></div><div class="v ${s === undefined ? "" : cls(s)}"></div>`;
    d.children[0].textContent = k;
    d.children[1].textContent = v;
    $("cards").appendChild(d);
  }

  // equity and drawdown
  const E = D.equity;
  plot("chart-equity", [
    { x: E.t, y: E.equity, type: "scatter", mode: "lines", name: "equity", line: { width: 1.2, color: "#2c6fbb" } },
    { x: E.t, y: E.drawdown_pct.map((v) => -v), type: "scatter", mode: "lines", name: "drawdown %",
      fill: "tozeroy", line: { width: 0.8, color: "#c0392b" }, yaxis: "y2" },
  ], layout("", { xaxis: { type: "date" }, yaxis: { title: "equity (USD)", domain: [0.35, 1] },
    yaxis2: { title: "drawdown %", domain: [0, 0.28] }, hovermode: "x unified", margin: { l: 60, r: 20, t: 10, b: 30 } }));
  $("equity-note").textContent = `${E.t.length} of ${E.points_full} points drawn (each bucket keeps its ` +
    `lowest and highest equity and deepest drawdown).`;

  // trades (round trips)
  const C = D.trips.cols;
  const ix = Object.fromEntries(C.map((c, i) => [c, i]));
  const T = D.trips.rows;
  for (const [col, values] of Object.entries(D.trips.dict)) for (const r of T) r[ix[col]] = values[r[ix[col]]];

  // candles with level-of-detail
  const MAX_VIEW = 2500;
  const sel = $("symbol-select");
  for (const s of D.symbols) sel.add(new Option(s, s));
  function times(L) {
    if (!L._t) L._t = L.dt_min.map((m) => L.t0 + m * 60000);
    return L._t;
  }
  function lowerBound(a, x) { let lo = 0, hi = a.length; while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] < x) lo = m + 1; else hi = m; } return lo; }
  function pick(sym, x0, x1) {
    const levels = D.candles[sym];
    for (let i = 0; i < levels.length; i++) {
      const t = times(levels[i]);
      const pad = (x1 - x0) / 2;
      const a = lowerBound(t, x0 - pad), b = lowerBound(t, x1 + pad);
      if (b - a <= MAX_VIEW || i === levels.length - 1) return { L: levels[i], a, b, level: i };
    }
  }
  function candleTrace(sym, x0, x1) {
    const p = pick(sym, x0, x1);
    const L = p.L, t = times(L);
    $("candle-note").textContent = `Candles of ${Math.round(L.step_ms / 60000)} min (level ${p.level}; ` +
      `finest ${Math.round(D.candles[sym][0].step_ms / 60000)} min).`;
    return { x: t.slice(p.a, p.b), open: L.o.slice(p.a, p.b), high: L.h.slice(p.a, p.b),
      low: L.l.slice(p.a, p.b), close: L.c.slice(p.a, p.b), type: "candlestick", name: sym,
      increasing: { line: { color: "#1e8449", width: 1 } }, decreasing: { line: { color: "#c0392b", width: 1 } } };
  }
  function overlays(sym) {
    const rows = T.filter((r) => r[ix.symbol] === sym);
    const seg = (col) => { const x = [], y = []; for (const r of rows) if (r[ix[col]] !== null) { x.push(r[ix.opened_ms], r[ix.closed_ms], null); y.push(r[ix[col]], r[ix[col]], null); } return { x, y }; };
    const sl = seg("stop_loss"), tp = seg("take_profit");
    const txt = (r) => `#${r[ix.trade_id]} ${r[ix.side]} ${r[ix.confidence]}<br>net ${fmt(r[ix.net_pnl])} (${r[ix.exit_reason]})`;
    return [
      { x: rows.map((r) => r[ix.opened_ms]), y: rows.map((r) => r[ix.entry_price]), type: "scatter", mode: "markers", name: "entry",
        marker: { size: 9, symbol: rows.map((r) => (r[ix.side] === "long" ? "triangle-up" : "triangle-down")),
          color: rows.map((r) => (r[ix.side] === "long" ? "#1e8449" : "#c0392b")) }, text: rows.map(txt), hoverinfo: "text+y" },
      { x: rows.map((r) => r[ix.closed_ms]), y: rows.map((r) => r[ix.exit_price]), type: "scatter", mode: "markers", name: "exit",
        marker: { size: 8, symbol: "x", color: rows.map((r) => (r[ix.net_pnl] > 0 ? "#1e8449" : "#c0392b")) },
        text: rows.map(txt), hoverinfo: "text+y" },
      { x: sl.x, y: sl.y, type: "scatter", mode: "lines", name: "stop loss", line: { color: "#c0392b", dash: "dash", width: 1 }, hoverinfo: "y+name" },
      { x: tp.x, y: tp.y, type: "scatter", mode: "lines", name: "take profit", line: { color: "#1e8449", dash: "dot", width: 1 }, hoverinfo: "y+name" },
    ];
  }
  let busy = false;
  function fullRange(sym) { const t = times(D.candles[sym][D.candles[sym].length - 1]); return [t[0], t[t.length - 1] + D.candles[sym][D.candles[sym].length - 1].step_ms]; }
  function drawCandles(sym, range) {
    const r = range || fullRange(sym);
    const lay = layout("", { xaxis: { type: "date", rangeslider: { visible: false }, range: r }, yaxis: { autorange: true, fixedrange: false },
      dragmode: "pan", showlegend: true, legend: { orientation: "h" }, margin: { l: 60, r: 20, t: 10, b: 30 } });
    return Plotly.react("chart-candles", [candleTrace(sym, r[0], r[1]), ...overlays(sym)], lay, Object.assign({}, CFG, { scrollZoom: true }));
  }
  const toMs = (v) => (typeof v === "number" ? v : new Date(String(v).replace(" ", "T") + (String(v).length > 10 ? "Z" : "T00:00Z")).getTime());
  drawn.push(drawCandles(D.symbols[0]).then(() => {
    const el = $("chart-candles");
    el.dataset.drawn = "1";
    el.on("plotly_relayout", (ev) => {
      if (busy) return;
      let r = null;
      if (ev["xaxis.range[0]"] !== undefined) r = [toMs(ev["xaxis.range[0]"]), toMs(ev["xaxis.range[1]"])];
      else if (ev["xaxis.range"]) r = ev["xaxis.range"].map(toMs);
      else if (ev["xaxis.autorange"]) r = fullRange(sel.value);
      if (!r) return;
      busy = true;
      const tr = candleTrace(sel.value, r[0], r[1]);
      const vis = tr.x.map((x, i) => [x, i]).filter(([x]) => x >= r[0] - D.interval_ms && x <= r[1]);
      const lo = Math.min(...vis.map(([, i]) => tr.low[i])), hi = Math.max(...vis.map(([, i]) => tr.high[i]));
      const yr = vis.length ? [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05] : undefined;
      Plotly.restyle(el, { x: [tr.x], open: [tr.open], high: [tr.high], low: [tr.low], close: [tr.close] }, [0])
        .then(() => (yr ? Plotly.relayout(el, { "yaxis.range": yr, "xaxis.range": r }) : null))
        .finally(() => { busy = false; });
    });
  }));
  sel.addEventListener("change", () => { busy = true; drawCandles(sel.value).finally(() => { busy = false; }); });

  // PnL breakdowns
  function bucketBar(id, title, buckets) {
    const k = Object.keys(buckets);
    const v = k.map((x) => buckets[x].net_pnl);
    plot(id, [{ x: k, y: v, type: "bar", marker: { color: v.map((x) => (x < 0 ? "#c0392b" : "#1e8449")) },
      text: k.map((x) => `${buckets[x].trades} trades, win ${fmt(buckets[x].win_rate * 100, 1)}%`), hoverinfo: "x+y+text" }],
      layout(title, { yaxis: { title: "net PnL (USD)" } }));
  }
  bucketBar("chart-exit-reason", "By exit reason", R.by_exit_reason);
  bucketBar("chart-symbol", "By symbol", R.by_symbol);
  bucketBar("chart-side", "By side", R.by_side);
  bucketBar("chart-confidence", "By confidence", R.by_confidence);
  function timeBuckets(keys, keyOf) {
    const out = Object.fromEntries(keys.map((k) => [k, { trades: 0, wins: 0, net_pnl: 0, win_rate: 0 }]));
    for (const r of T) { const b = out[keyOf(new Date(r[ix.closed_ms]))]; b.trades++; b.net_pnl += r[ix.net_pnl]; if (r[ix.net_pnl] > 0) b.wins++; }
    for (const b of Object.values(out)) b.win_rate = b.trades ? b.wins / b.trades : 0;
    return out;
  }
  const HOURS = [...Array(24).keys()].map((h) => String(h).padStart(2, "0"));
  bucketBar("chart-hour", "By hour of exit (UTC)", timeBuckets(HOURS, (d) => HOURS[d.getUTCHours()]));
  const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  bucketBar("chart-weekday", "By weekday of exit (UTC)", timeBuckets(DAYS, (d) => DAYS[(d.getUTCDay() + 6) % 7]));

  // monthly heatmap
  const years = [...new Set(D.monthly.map((m) => m.month.slice(0, 4)))];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const z = years.map(() => MONTHS.map(() => null));
  for (const m of D.monthly) z[years.indexOf(m.month.slice(0, 4))][+m.month.slice(5, 7) - 1] = m.return_pct;
  const zmax = Math.max(1, ...D.monthly.map((m) => Math.abs(m.return_pct)));
  plot("chart-monthly", [{ z, x: MONTHS, y: years, type: "heatmap", zmin: -zmax, zmax, zmid: 0,
    colorscale: [[0, "#c0392b"], [0.5, "#f7f7f7"], [1, "#1e8449"]], hoverongaps: false,
    text: z.map((row) => row.map((v) => (v === null ? "" : `${v.toFixed(2)}%`))), texttemplate: "%{text}",
    colorbar: { title: "%" } }], layout("Return by month (%)", { yaxis: { type: "category" } }));

  // fees and funding by symbol
  const syms = Object.keys(R.by_symbol);
  plot("chart-fees", [
    { x: syms, y: syms.map((s) => -R.by_symbol[s].fees), type: "bar", name: "fees paid", marker: { color: "#b9770e" } },
    { x: syms, y: syms.map((s) => R.by_symbol[s].funding), type: "bar", name: "funding", marker: { color: "#2c6fbb" } },
  ], layout(`Fees ${fmt(-R.total_fees)} USD, funding ${fmt(R.total_funding)} USD (closed trades by symbol)`,
    { barmode: "group", showlegend: true, yaxis: { title: "USD" } }));

  // trades table: sortable, filterable
  const SHOW = [["trade_id", "#"], ["symbol", "symbol", 1], ["side", "side", 1], ["confidence", "conf", 1],
    ["opened_ms", "opened (UTC)", 1], ["closed_ms", "closed (UTC)", 1], ["entry_price", "entry"], ["exit_price", "exit"],
    ["max_quantity", "qty"], ["adds", "adds"], ["fees", "fees"], ["funding", "funding"], ["net_pnl", "net PnL"],
    ["exit_reason", "exit reason", 1], ["stop_loss", "stop"], ["take_profit", "take profit"]];
  const thead = $("trades").tHead, tbody = $("trades").tBodies[0];
  const hr = thead.insertRow();
  for (const [c, label, left] of SHOW) { const th = document.createElement("th"); th.textContent = label; th.dataset.col = c; if (left) th.className = "l"; hr.appendChild(th); }
  const uniq = (c) => [...new Set(T.map((r) => r[ix[c]]))].sort();
  for (const [id, c] of [["f-symbol", "symbol"], ["f-side", "side"], ["f-reason", "exit_reason"]]) for (const v of uniq(c)) $(id).add(new Option(v, v));
  let sortCol = "trade_id", sortDir = 1, limit = 300;
  function renderTable() {
    const fs = $("f-symbol").value, fd = $("f-side").value, fr = $("f-reason").value;
    const rows = T.filter((r) => (!fs || r[ix.symbol] === fs) && (!fd || r[ix.side] === fd) && (!fr || r[ix.exit_reason] === fr));
    const k = ix[sortCol];
    rows.sort((a, b) => (a[k] < b[k] ? -sortDir : a[k] > b[k] ? sortDir : 0));
    const net = rows.reduce((s, r) => s + r[ix.net_pnl], 0);
    $("trade-count").textContent = `${rows.length} of ${T.length} trades, net ${fmt(net)} USD; showing ${Math.min(limit, rows.length)}`;
    $("more").hidden = rows.length <= limit;
    const frag = document.createDocumentFragment();
    for (const r of rows.slice(0, limit)) {
      const tr = document.createElement("tr");
      tr.dataset.tradeId = r[ix.trade_id];
      for (const [c, , left] of SHOW) {
        const td = tr.insertCell();
        const v = r[ix[c]];
        td.textContent = c.endsWith("_ms") ? isoT(v) : typeof v === "number" && c !== "trade_id" && c !== "adds" ? String(v) : v === null ? "" : String(v);
        if (left) td.className = "l";
        if (c === "net_pnl") td.className = cls(v);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    for (const th of hr.cells) th.classList.toggle("sorted-asc", th.dataset.col === sortCol && sortDir > 0), th.classList.toggle("sorted-desc", th.dataset.col === sortCol && sortDir < 0);
  }
  hr.addEventListener("click", (e) => { const c = e.target.dataset.col; if (!c) return; sortDir = c === sortCol ? -sortDir : 1; sortCol = c; renderTable(); });
  for (const id of ["f-symbol", "f-side", "f-reason"]) $(id).addEventListener("change", () => { limit = 300; renderTable(); });
  $("more").addEventListener("click", () => { limit += 1000; renderTable(); });
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr"); if (!tr) return;
    const r = T.find((x) => x[ix.trade_id] === +tr.dataset.tradeId); if (!r) return;
    const span = Math.max(r[ix.closed_ms] - r[ix.opened_ms], 50 * D.interval_ms);
    sel.value = r[ix.symbol]; busy = true;
    drawCandles(r[ix.symbol], [r[ix.opened_ms] - span, r[ix.closed_ms] + span]).finally(() => { busy = false; });
    $("chart-candles").scrollIntoView({ behavior: "instant", block: "center" });
  });
  renderTable();

  // config
  $("config-ids").textContent = `config_id ${R.config_id}` + Object.entries(D.symbol_config_ids)
    .filter(([, v]) => v !== R.config_id).map(([s, v]) => `; ${s}: ${v}`).join("");
  $("config").textContent = JSON.stringify(D.config, null, 2);

  Promise.all(drawn).then(() => {
    window.__reportStartMs = t0;
    window.__reportDrawMs = performance.now() - t0;
    document.body.dataset.ready = "1";
  }, (e) => { document.body.dataset.error = String(e); throw e; });
})();
