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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.report_page import ReportError, report_cli
from monitor.sweep_page import OBJECTIVES, choose, load_rows, render

BIN = Path(
    os.environ.get("AI_QUANT_BT", Path(__file__).resolve().parents[1] / "target" / "release" / "ai-quant-bt")
)


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

    def write() -> str:
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
        a.html.write_text(render(rows, a.objective, chosen, a.top_k, folder, cmd))
        return f"sweep report: {a.html} ({len(rows)} combos, chosen {chosen['id']} by {a.objective})"

    return report_cli("sweep_report", write)


if __name__ == "__main__":
    sys.exit(main())
