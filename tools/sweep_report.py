#!/usr/bin/env python3
"""Sweep report: one self-contained HTML page from an `ai-quant-bt sweep` JSONL (no network needed).

Shows the top-K combos (sortable), the objective over any one axis (best and mean over the other
axes) and over any two axes as a heatmap (best over the rest), the chosen combo marked everywhere
(the best by the objective unless --chosen names one). Each row links to its replay report
`replay_<id>.html` next to the page when it exists, else shows the command that makes it:

    python tools/sweep_report.py sweep.jsonl --html out/sweep_report.html [--objective total_pnl] [--top-k 50]
    python tools/sweep_report.py sweep.jsonl --html out/sweep_report.html --replay sweep_000004 \\
        --config cfg.yaml -- --candles-db candles_5m.db --interval 5m [--funding-db ...] [--symbols ...]

`--replay ID` replays that combo (its overrides set in the config's `global` section of a copy of
the YAML), writes `replay_<ID>.html` beside the page and checks that the replay's config_id is the
sweep row's: a combo the copy cannot reproduce exactly is refused in one line, never shown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report_page import page

GENERATOR = "ai-quant sweep report"
BIN = Path(
    os.environ.get("AI_QUANT_BT", Path(__file__).resolve().parents[1] / "target" / "release" / "ai-quant-bt")
)
#: Objectives and whether higher is better.
OBJECTIVES = {"total_pnl": True, "sharpe_ratio": True, "profit_factor": True, "win_rate": True,
              "max_drawdown_pct": False}  # fmt: skip
METRICS = ["total_pnl", "total_trades", "win_rate", "profit_factor", "max_drawdown_pct", "sharpe_ratio",
           "total_fees", "total_funding", "liquidations"]  # fmt: skip


class ReportError(Exception):
    """An operator error, printed as one line."""


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
"use strict";
(function () {
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const CFG = { displaylogo: false, responsive: true };
  const G = D.grid, best = D.higher_is_better ? Math.max : Math.min;
  const ci = G.id.indexOf(D.chosen);
  $("meta").textContent = `sweep_id ${D.sweep_id} | ${D.combos} combos | objective ${D.objective} ` +
    `(${D.higher_is_better ? "higher" : "lower"} is better) | chosen ${D.chosen}`;
  for (const id of ["axis1", "axis-x", "axis-y"]) for (const a of D.axes) $(id).add(new Option(a, a));
  if (D.axes.length > 1) $("axis-y").value = D.axes[1];
  const col = (a) => G.axes[D.axes.indexOf(a)];
  const vals = (a) => [...new Set(col(a))].sort((x, y) => x - y);
  const drawn = [];
  function done(id) { return () => { $(id).dataset.drawn = "1"; }; }
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
  Promise.all(drawn).then(() => { window.__reportStartMs = t0; window.__reportDrawMs = performance.now() - t0; document.body.dataset.ready = "1"; });
})();
"""


def replay_combo(row: dict[str, Any], config: Path, bt_args: list[str], out: Path) -> None:
    """Replay one combo into `out`; refuse unless the replay's config_id is the row's."""
    import yaml

    merged = json.loads(subprocess.run([str(BIN), "config", "--config", str(config)], capture_output=True,
                                       text=True, check=True).stdout)["config"]  # fmt: skip
    doc = yaml.safe_load(config.read_text()) or {}
    glob = doc.setdefault("global", {})
    for path, value in row["overrides"].items():
        node, cur = glob, merged
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            cur = cur.get(k, {}) if isinstance(cur, dict) else {}
        old = cur.get(keys[-1]) if isinstance(cur, dict) else None
        if isinstance(old, bool):
            node[keys[-1]] = bool(value)
        elif isinstance(old, int):
            node[keys[-1]] = int(value)
        elif isinstance(old, str):
            raise ReportError(
                f"--replay {row['id']}: axis {path} is an enum by index; replay it with ai-quant-bt"
            )
        else:
            node[keys[-1]] = value
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / config.name
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
        rep = Path(tmp) / "report.json"
        r = subprocess.run([str(BIN), "replay", "--config", str(cfg), *bt_args, "--output", str(rep), "--html",
                            str(out), "--quiet"], capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            raise ReportError(
                f"--replay {row['id']}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'failed'}"
            )
        got = json.loads(rep.read_text())["config_id"]
    if got != row.get("config_id"):
        out.unlink(missing_ok=True)
        raise ReportError(
            f"--replay {row['id']}: the replay's config_id {got[:12]} is not the sweep row's "
            f"{str(row.get('config_id'))[:12]} (a symbol section sets an axis, or other inputs differ); nothing written"
        )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bt_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, bt_args = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="the sweep's JSONL output")
    ap.add_argument("--html", type=Path, required=True, help="the page to write")
    ap.add_argument("--objective", choices=sorted(OBJECTIVES), default="total_pnl")
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--chosen", default=None, help="combo id to mark (default: the best by the objective)")
    ap.add_argument("--replay", default=None, help="combo id to replay into replay_<id>.html beside the page")
    ap.add_argument("--config", type=Path, default=None, help="the sweep's config YAML (with --replay)")
    a = ap.parse_args(argv)
    try:
        if a.top_k < 1:
            raise ReportError("--top-k must be >= 1")
        rows = load_rows(a.results)
        folder = a.html.parent
        if a.replay:
            if a.config is None or not bt_args:
                raise ReportError(
                    "--replay needs --config and the sweep's inputs after -- (--candles-db ...)"
                )
            row = next((r for r in rows if r["id"] == a.replay), None)
            if row is None:
                raise ReportError(f"--replay {a.replay}: no such combo id in the sweep")
            replay_combo(row, a.config, bt_args, folder / f"replay_{a.replay}.html")
            print(f"replay report: {folder / f'replay_{a.replay}.html'}")
        chosen = choose(rows, a.objective, a.chosen)
        cmd = f"python tools/sweep_report.py {a.results} --html {a.html} --replay {{id}} --config CONFIG -- --candles-db DB ..."
        data = payload(rows, a.objective, chosen, a.top_k, folder, cmd)
        title = f"ai-quant sweep {str(data['sweep_id'])[:12]}"
        a.html.write_text(page(GENERATOR, title, BODY, data, APP))
    except ReportError as exc:
        print(f"sweep_report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sweep_report: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"sweep report: {a.html} ({len(rows)} combos, chosen {chosen['id']} by {a.objective})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
