"""The sweep report page (tools/sweep_report.py writes it; the monitor renders it for a factory
run's sweep): the objective over one axis and two axes, the chosen combo marked, the top combos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.report_page import ReportError, page

GENERATOR = "ai-quant sweep report"
#: Objectives and whether higher is better.
OBJECTIVES = {"total_pnl": True, "sharpe_ratio": True, "profit_factor": True, "win_rate": True,
              "max_drawdown_pct": False}  # fmt: skip
METRICS = ["total_pnl", "total_trades", "win_rate", "profit_factor", "max_drawdown_pct", "sharpe_ratio",
           "total_fees", "total_funding", "liquidations"]  # fmt: skip


def load_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
    if not rows:
        raise ReportError(f"{path}: no sweep rows")
    for r in rows:
        if not isinstance(r, dict) or "overrides" not in r or "id" not in r:
            raise ReportError(f"{path}: a row without `id`/`overrides`: not an ai-quant-bt sweep output")
    return rows


def objective_value(r: dict[str, Any], objective: str) -> float | None:
    v = r.get(objective)
    return float(v) if isinstance(v, int | float) else None


def choose(rows: list[dict[str, Any]], objective: str, chosen: str | None) -> dict[str, Any]:
    if chosen is not None:
        for r in rows:
            if r["id"] == chosen:
                return r
        raise ReportError(f"--chosen {chosen}: no such combo id in the sweep")
    sign = 1.0 if OBJECTIVES[objective] else -1.0
    scored = [(sign * v, -r["combo"], r) for r in rows if (v := objective_value(r, objective)) is not None]
    if not scored:
        raise ReportError(f"objective {objective}: no row has a value")
    return max(scored, key=lambda x: (x[0], x[1]))[2]


def payload(rows: list[dict[str, Any]], objective: str, chosen: dict[str, Any], top_k: int, folder: Path,
            replay_cmd: str) -> dict[str, Any]:  # fmt: skip
    axes = list(rows[0]["overrides"])
    sign = 1.0 if OBJECTIVES[objective] else -1.0
    ranked = sorted(rows, key=lambda r: (-(sign * (objective_value(r, objective) or -1e300)), r["combo"]))
    top = ranked[:top_k]
    if chosen not in top:
        top.append(chosen)
    return {
        "sweep_id": rows[0].get("sweep_id", ""),
        "objective": objective,
        "higher_is_better": OBJECTIVES[objective],
        "axes": axes,
        "combos": len(rows),
        "chosen": chosen["id"],
        # every combo, columnar, for the sensitivity charts
        "grid": {
            "id": [r["id"] for r in rows],
            "axes": [[r["overrides"][a] for r in rows] for a in axes],
            "objective": [objective_value(r, objective) for r in rows],
        },
        "metrics": METRICS,
        "top": [
            {
                "id": r["id"],
                "config_id": r.get("config_id", ""),
                "overrides": r["overrides"],
                **{m: r.get(m) for m in METRICS},
                "replay": f"replay_{r['id']}.html" if (folder / f"replay_{r['id']}.html").exists() else None,
            }
            for r in top
        ],
        "replay_cmd": replay_cmd,
    }


BODY = """<header><h1>Sweep report</h1><div class="meta" id="meta"></div></header>
<main>
<section><h2>Objective over one axis</h2>
  <div class="controls"><label>Axis <select id="axis1"></select></label>
  <span class="note">best and mean over the other axes; the star is the chosen combo</span></div>
  <div class="chart" id="chart-axis" data-chart></div></section>
<section><h2>Objective over two axes</h2>
  <div class="controls"><label>x <select id="axis-x"></select></label><label>y <select id="axis-y"></select></label>
  <span class="note">each cell: the best over the other axes; the star is the chosen combo</span></div>
  <div class="chart" id="chart-heatmap" data-chart></div></section>
<section><h2>Top combos</h2><div class="note" id="top-note"></div>
  <div class="tablewrap"><table id="top"><thead></thead><tbody></tbody></table></div></section>
</main>"""

APP = r"""
  const G = D.grid, best = D.higher_is_better ? Math.max : Math.min;
  const ci = G.id.indexOf(D.chosen);
  $("meta").textContent = `sweep_id ${D.sweep_id} | ${D.combos} combos | objective ${D.objective} ` +
    `(${D.higher_is_better ? "higher" : "lower"} is better) | chosen ${D.chosen}`;
  for (const id of ["axis1", "axis-x", "axis-y"]) for (const a of D.axes) $(id).add(new Option(a, a));
  if (D.axes.length > 1) $("axis-y").value = D.axes[1];
  const col = (a) => G.axes[D.axes.indexOf(a)];
  const vals = (a) => [...new Set(col(a))].sort((x, y) => x - y);
  function axisChart() {
    const a = $("axis1").value, c = col(a), xs = vals(a);
    const groups = xs.map((v) => G.objective.filter((o, i) => c[i] === v && o !== null));
    const star = { x: [c[ci]], y: [G.objective[ci]], type: "scatter", mode: "markers", name: `chosen ${D.chosen}`,
      marker: { symbol: "star", size: 16, color: "#e67e22" } };
    return Plotly.react("chart-axis", [
      { x: xs, y: groups.map((g) => (g.length ? best(...g) : null)), type: "scatter", mode: "lines+markers", name: "best" },
      { x: xs, y: groups.map((g) => (g.length ? g.reduce((s, v) => s + v, 0) / g.length : null)), type: "scatter",
        mode: "lines+markers", name: "mean", line: { dash: "dot" } }, star,
    ], { margin: { l: 60, r: 20, t: 10, b: 40 }, xaxis: { title: a }, yaxis: { title: D.objective }, legend: { orientation: "h" } }, CFG);
  }
  function heatmap() {
    const ax = $("axis-x").value, ay = $("axis-y").value, cx = col(ax), cy = col(ay), xs = vals(ax), ys = vals(ay);
    const z = ys.map((y) => xs.map((x) => { const g = G.objective.filter((o, i) => cx[i] === x && cy[i] === y && o !== null); return g.length ? best(...g) : null; }));
    const rev = !D.higher_is_better;
    return Plotly.react("chart-heatmap", [
      { z, x: xs.map(String), y: ys.map(String), type: "heatmap", colorscale: [[0, "#c0392b"], [0.5, "#f4e7a1"], [1, "#1e8449"]], reversescale: rev,
        colorbar: { title: D.objective }, hoverongaps: false },
      { x: [String(cx[ci])], y: [String(cy[ci])], type: "scatter", mode: "markers", name: `chosen ${D.chosen}`,
        marker: { symbol: "star", size: 18, color: "#1d2330" } },
    ], { margin: { l: 70, r: 20, t: 10, b: 50 }, xaxis: { title: ax, type: "category" }, yaxis: { title: ay, type: "category" } }, CFG);
  }
  drawn.push(axisChart().then(done("chart-axis")), heatmap().then(done("chart-heatmap")));
  $("axis1").addEventListener("change", axisChart);
  $("axis-x").addEventListener("change", heatmap);
  $("axis-y").addEventListener("change", heatmap);

  // top table, sortable; replay link next to the page (or through the monitor) or the command
  const inMonitor = location.pathname.includes("/api/reports/sweep/");
  const cols = ["rank", "id", ...D.axes, ...D.metrics, "replay"];
  const rows = D.top.map((r, i) => ({ rank: i + 1, ...r, ...r.overrides }));
  const hr = $("top").tHead.insertRow();
  for (const c of cols) { const th = document.createElement("th"); th.textContent = c; th.dataset.col = c; if (c === "id" || c === "replay") th.className = "l"; hr.appendChild(th); }
  let sortCol = "rank", dir = 1;
  function table() {
    rows.sort((a, b) => { const x = a[sortCol] ?? -Infinity, y = b[sortCol] ?? -Infinity; return x < y ? -dir : x > y ? dir : 0; });
    const body = $("top").tBodies[0]; body.replaceChildren();
    for (const r of rows) {
      const tr = body.insertRow(); tr.dataset.id = r.id; if (r.id === D.chosen) tr.className = "chosen";
      for (const c of cols) {
        const td = tr.insertCell();
        if (c === "replay") {
          td.className = "l";
          if (r.replay) { const a = document.createElement("a"); a.href = (inMonitor ? "../replay/" : "") + r.replay; a.textContent = "replay report"; td.appendChild(a); }
          else { const code = document.createElement("code"); code.textContent = D.replay_cmd.replace("{id}", r.id); td.appendChild(code); }
        } else { const v = r[c]; td.textContent = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : v ?? "n/a"; if (c === "id") td.className = "l"; }
      }
    }
  }
  hr.addEventListener("click", (e) => { const c = e.target.dataset.col; if (!c) return; dir = c === sortCol ? -dir : 1; sortCol = c; table(); });
  $("top-note").textContent = `${D.top.length} of ${D.combos} combos by ${D.objective}; the chosen combo is highlighted.`;
  table();
"""


def render(rows: list[dict[str, Any]], objective: str, chosen: dict[str, Any], top_k: int, folder: Path,
           replay_cmd: str) -> str:  # fmt: skip
    data = payload(rows, objective, chosen, top_k, folder, replay_cmd)
    return page(GENERATOR, f"ai-quant sweep {str(data['sweep_id'])[:12]}", BODY, data, APP)
