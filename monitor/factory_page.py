"""The factory-run report page (tools/factory_report.py writes it; the monitor renders it for each
run under <data dir>/artifacts): candidates, every gate, DSR and PBO, walk-forward, and from the
registry (read-only) lifecycle state, paper gates' progress and the live ramp's stage."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from monitor.report_page import ReportError, page
from strategy.factory.thresholds import THRESHOLDS

GENERATOR = "ai-quant factory report"


def load_report(path: Path) -> dict[str, Any]:
    try:
        r = json.loads(path.read_text())
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(r, dict) or "run" not in r or "candidates" not in r:
        raise ReportError(f"{path}: not a factory run report (no `run` / `candidates`)")
    return r


def _ro(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise ReportError(f"{db}: no such file")
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def lifecycle(registry: Path, cids: list[str], paper_db: Path | None, now: float) -> dict[str, Any]:
    """State, transitions, paper-gate progress and ramp stage of each config, read-only."""
    th = THRESHOLDS
    out: dict[str, Any] = {}
    con = _ro(registry)
    try:
        for cid in cids:
            rows = con.execute(
                "SELECT timestamp, from_state, to_state, reason FROM transitions WHERE config_hash=? ORDER BY id",
                (cid,),
            ).fetchall()
            trans = [{"timestamp": t, "from": a, "to": b, "reason": r} for t, a, b, r in rows]
            state = trans[-1]["to"] if trans else None
            deps = con.execute(
                "SELECT timestamp, action, ramp_stage, size_multiplier FROM deployments WHERE config_hash=? "
                "AND action IN ('promote', 'ramp') ORDER BY id",
                (cid,),
            ).fetchall()
            ramp = None
            if deps and state in ("live_small", "live_full"):
                ts, action, stage, mult = deps[-1]
                ramp = {"stage": int(stage or 0), "stages": list(th.ramp_stages), "size_multiplier": mult,
                        "since": ts, "hours_in_stage": (now - ts) / 3600, "stage_hours": th.ramp_stage_hours,
                        "last_action": action}  # fmt: skip
            paper = None
            if state == "paper" and paper_db is not None:
                from strategy.factory.lifecycle import paper_gates
                from strategy.factory.track import paper_stats

                since = max((t["timestamp"] for t in trans if t["to"] == "paper"), default=now)
                ps = paper_stats(paper_db, int(since * 1000), int(now * 1000), th)
                g = paper_gates(ps, th)
                pf = ps.profit_factor
                paper = {
                    "passed": g.passed,
                    "reasons": list(g.reasons),
                    "gates": [
                        {"name": "closed trades (gate 1, or hours)", "value": ps.closed_trades,
                         "threshold": th.paper_min_closed_trades, "passed": ps.closed_trades >= th.paper_min_closed_trades},
                        {"name": "hours in paper (gate 1, or trades)", "value": round(ps.hours, 2),
                         "threshold": th.paper_min_hours, "passed": ps.hours >= th.paper_min_hours},
                        {"name": "profit factor (gate 2)", "value": pf, "threshold": th.paper_pf_min,
                         "passed": ps.closed_trades > 0 and (pf is None or pf >= th.paper_pf_min)},
                        {"name": "max drawdown % (gate 2)", "value": ps.max_drawdown_pct,
                         "threshold": th.paper_max_dd_pct, "passed": ps.max_drawdown_pct <= th.paper_max_dd_pct},
                        {"name": f"net PnL at {th.paper_net_positive_bps:g} bps (gate 2)",
                         "value": ps.net_pnl_at_stress_bps, "threshold": 0.0, "passed": ps.net_pnl_at_stress_bps > 0},
                        {"name": "kill-switch events (gate 2)", "value": ps.kill_events,
                         "threshold": th.paper_max_kill_events, "passed": ps.kill_events <= th.paper_max_kill_events},
                    ],
                }  # fmt: skip
            out[cid] = {"state": state, "transitions": trans, "ramp": ramp, "paper": paper}
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"{registry}: cannot read the registry ({exc})") from None
    finally:
        con.close()
    return out


def payload(r: dict[str, Any], life: dict[str, Any] | None) -> dict[str, Any]:
    return {"report": r, "lifecycle": life, "thresholds": r.get("thresholds") or {}}


BODY = """<header><h1>Strategy factory run</h1><div class="meta" id="meta"></div></header>
<main>
<section><h2>Run</h2><div id="run"></div><h3>Data checks</h3>
  <div class="tablewrap"><table id="data-checks"><thead></thead><tbody></tbody></table></div></section>
<section><h2>Candidates</h2>
  <div class="tablewrap"><table id="candidates"><thead></thead><tbody></tbody></table></div></section>
<section><h2>DSR and PBO</h2><div class="chart" id="chart-dsr-pbo" data-chart></div></section>
<section><h2>Walk-forward</h2><div class="chart" id="chart-wf" data-chart></div>
  <div class="tablewrap"><table id="wf-folds"><thead></thead><tbody></tbody></table></div>
  <div class="note" id="wf-note"></div></section>
<section><h2>Gates per candidate</h2><div id="gates"></div></section>
<section><h2>Lifecycle: paper gates and live ramp</h2><div id="lifecycle"></div></section>
</main>"""

APP = r"""
  const R = D.report, run = R.run, C = R.candidates, TH = D.thresholds;
  const f = (v) => (v === null || v === undefined ? "-" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(4)) : String(v));
  function table(el, cols, rows, rowClass) {
    const t = typeof el === "string" ? $(el) : el;
    const hr = t.tHead.insertRow();
    for (const c of cols) { const th = document.createElement("th"); th.textContent = c[1]; if (c[2]) th.className = "l"; hr.appendChild(th); }
    for (const r of rows) {
      const tr = t.tBodies[0].insertRow(); if (rowClass) tr.className = rowClass(r) || "";
      for (const c of cols) { const td = tr.insertCell(); const v = typeof c[0] === "function" ? c[0](r) : r[c[0]]; td.textContent = f(v); if (c[2]) td.className = "l"; }
    }
    return t;
  }
  function mark(td, ok, skipped) { td.textContent = skipped ? "skipped" : ok ? "pass" : "FAIL"; td.className = "l " + (skipped ? "na" : ok ? "pass" : "fail"); }
  const newTable = () => { const t = document.createElement("table"); t.createTHead(); t.createTBody(); return t; };
  const wrap = (t) => { const d = document.createElement("div"); d.className = "tablewrap"; d.appendChild(t); return d; };

  $("meta").textContent = `run ${run.run_id} | profile ${run.profile} | status ${run.status} | ${f(run.wall_s)} s | promoted ${R.promoted || "none"}`;
  const sw = R.sweep || {};
  $("run").textContent = `window ${run.window ? run.window.start + " .. " + run.window.end : "-"}; sweep ${sw.search || ""} ` +
    `${f(sw.n_trials)} trials, pool ${f(sw.pool_size)} (${f(sw.pool_replayed)} replayed); thresholds overrides: ` +
    `${JSON.stringify(R.threshold_overrides || {})}`;
  const dc = table("data-checks", [["name", "check", 1], ["value", "value"], ["threshold", "threshold"], ["passed", "result", 1], ["detail", "detail", 1]], (R.data && R.data.checks) || []);
  [...dc.tBodies[0].rows].forEach((tr, i) => mark(tr.cells[3], R.data.checks[i].passed, !R.data.checks[i].enabled));

  const ct = table("candidates", [[(c) => C.indexOf(c) + 1, "#"], ["lane", "lane", 1], [(c) => c.config_id.slice(0, 12), "config_id", 1],
    [(c) => c.metrics.total_pnl, "PnL"], [(c) => c.metrics.total_trades, "trades"], [(c) => c.metrics.profit_factor, "PF"],
    [(c) => c.metrics.max_drawdown_pct, "DD %"], [(c) => c.metrics.sharpe_ratio, "Sharpe"], [(c) => c.metrics.dsr, "DSR"],
    [(c) => c.metrics.pbo, "PBO"], [(c) => c.checks.filter((x) => x.enabled && x.passed).length + "/" + c.checks.filter((x) => x.enabled).length, "gates passed"],
    ["verdict", "verdict", 1], [(c) => (D.lifecycle && D.lifecycle[c.config_id] ? D.lifecycle[c.config_id].state : c.state), "state", 1]], C);
  [...ct.tBodies[0].rows].forEach((tr, i) => { tr.dataset.configId = C[i].config_id; tr.cells[11].className = "l " + (C[i].verdict === "validated" ? "pass" : "fail"); });

  const labels = C.map((c, i) => `${i + 1} ${c.lane} ${c.config_id.slice(0, 8)}`);
  drawn.push(Plotly.newPlot("chart-dsr-pbo", [
    { x: labels, y: C.map((c) => c.metrics.dsr), type: "bar", name: "DSR (higher is better)", marker: { color: "#2c6fbb" } },
    { x: labels, y: C.map((c) => c.metrics.pbo), type: "bar", name: "PBO (lower is better)", marker: { color: "#b9770e" } },
  ], { barmode: "group", margin: { l: 50, r: 20, t: 10, b: 90 }, yaxis: { range: [0, 1] }, legend: { orientation: "h" },
    shapes: [["dsr_min", "#2c6fbb"], ["pbo_max", "#b9770e"]].filter(([k]) => typeof TH[k] === "number").map(([k, col]) => ({
      type: "line", xref: "paper", x0: 0, x1: 1, y0: TH[k], y1: TH[k], line: { color: col, dash: "dash", width: 1 } })),
    annotations: [["dsr_min", "DSR min"], ["pbo_max", "PBO max"]].filter(([k]) => typeof TH[k] === "number").map(([k, t]) => ({
      xref: "paper", x: 1, y: TH[k], text: `${t} ${TH[k]}`, showarrow: false, xanchor: "right", yanchor: "bottom", font: { size: 10 } })) }, CFG).then(done("chart-dsr-pbo")));

  const ro = R.reopt_walk_forward;
  if (ro && ro.folds && ro.folds.length) {
    drawn.push(Plotly.newPlot("chart-wf", [
      { x: ro.folds.map((_, i) => `fold ${i}`), y: ro.folds.map((x) => x.is_pnl), type: "bar", name: "in-sample PnL" },
      { x: ro.folds.map((_, i) => `fold ${i}`), y: ro.folds.map((x) => x.oos_pnl), type: "bar", name: "out-of-sample PnL" },
    ], { barmode: "group", margin: { l: 60, r: 20, t: 10, b: 40 }, legend: { orientation: "h" } }, CFG).then(done("chart-wf")));
    table("wf-folds", [[(x) => ro.folds.indexOf(x), "fold"], [(x) => x.train.join(" .. "), "train", 1], [(x) => x.test.join(" .. "), "test", 1],
      [(x) => x.config_id.slice(0, 12), "chosen", 1], ["is_pnl", "IS PnL"], ["oos_pnl", "OOS PnL"], ["oos_closed_trades", "OOS trades"], ["oos_max_dd_pct", "OOS DD %"]], ro.folds);
    $("wf-note").textContent = `Re-optimised walk-forward: OOS total PnL ${f(ro.oos_total_pnl)}, efficiency ${f(ro.efficiency)}, profitable folds ${f(ro.profitable_share)}.`;
  } else {
    drawn.push(Plotly.newPlot("chart-wf", [
      { x: labels, y: C.map((c) => c.metrics.wf_efficiency), type: "bar", name: "efficiency (OOS/IS daily return)" },
      { x: labels, y: C.map((c) => c.metrics.wf_profitable_share), type: "bar", name: "profitable OOS windows" },
    ], { barmode: "group", margin: { l: 50, r: 20, t: 10, b: 90 }, legend: { orientation: "h" } }, CFG).then(done("chart-wf")));
    $("wf-note").textContent = "Walk-forward summary per candidate (this profile ran no re-optimised folds; the report keeps no per-window results).";
  }

  for (const [i, c] of C.entries()) {
    const box = document.createElement("div");
    const h = document.createElement("h3"); h.textContent = `${i + 1}. ${c.lane} ${c.config_id.slice(0, 12)}: ${c.verdict}`; box.appendChild(h);
    const ov = document.createElement("code"); ov.textContent = "overrides " + JSON.stringify(c.overrides); box.appendChild(ov);
    const t = newTable(); t.dataset.configId = c.config_id; t.className = "gates"; box.appendChild(wrap(t));
    table(t, [["name", "gate", 1], ["value", "value"], ["threshold", "threshold"], ["passed", "result", 1], ["detail", "detail", 1]], c.checks);
    [...t.tBodies[0].rows].forEach((tr, j) => mark(tr.cells[3], c.checks[j].passed, !c.checks[j].enabled));
    $("gates").appendChild(box);
  }

  const L = D.lifecycle;
  if (!L) $("lifecycle").textContent = "No registry given (--registry): lifecycle state, paper gates and ramp stage are not shown.";
  else for (const c of C) {
    const x = L[c.config_id]; const box = document.createElement("div"); box.dataset.configId = c.config_id;
    const h = document.createElement("h3"); h.textContent = `${c.lane} ${c.config_id.slice(0, 12)}: ${x.state || "not in the registry's transitions"}`; box.appendChild(h);
    if (x.ramp) { const p = document.createElement("p"); p.className = "ramp";
      p.textContent = `Live ramp: stage ${x.ramp.stage + 1} of ${x.ramp.stages.length} (size ${(x.ramp.size_multiplier * 100).toFixed(0)}%), ` +
        `${x.ramp.hours_in_stage.toFixed(1)} h of ${x.ramp.stage_hours} h in this stage; last action ${x.ramp.last_action}.`; box.appendChild(p); }
    if (x.paper) { const t = newTable(); t.className = "paper-gates"; box.appendChild(wrap(t));
      table(t, [["name", "paper gate", 1], ["value", "now"], ["threshold", "threshold"], ["passed", "result", 1]], x.paper.gates);
      [...t.tBodies[0].rows].forEach((tr, j) => mark(tr.cells[3], x.paper.gates[j].passed, false));
      const p = document.createElement("p"); p.textContent = x.paper.passed ? "Paper gates met: promote_to_live may start the ramp." : "Not yet: " + x.paper.reasons.join("; "); box.appendChild(p); }
    if (x.transitions.length) { const t = newTable(); box.appendChild(wrap(t));
      table(t, [[(r) => new Date(r.timestamp * 1000).toISOString().slice(0, 16).replace("T", " "), "time (UTC)", 1], ["from", "from", 1], ["to", "to", 1], ["reason", "reason", 1]], x.transitions); }
    $("lifecycle").appendChild(box);
  }
"""


def render(report: dict[str, Any], life: dict[str, Any] | None) -> str:
    return page(
        GENERATOR, f"ai-quant factory run {report['run'].get('run_id', '')}", BODY, payload(report, life), APP
    )
