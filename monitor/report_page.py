"""Self-contained report pages written from Python (sweep and factory reports): one HTML file with
the vendored plotly.js (kernel/aiq-backtest/assets/vendor/plotly, MIT), the page's own script and
its data inline, so it opens with no network access. The replay report is written the same way by
`ai-quant-bt replay --html` (kernel/aiq-backtest/src/html_report.rs)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ReportError(Exception):
    """An operator error in a report's input, printed as one line."""


def report_cli(prog: str, write: Callable[[], str]) -> int:
    """Run a report command's ``write`` (it writes the page and returns the line to print): a
    :class:`ReportError` or an unreadable/unwritable file is one line on stderr and exit status 2."""
    try:
        line = write()
    except ReportError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    print(line)
    return 0


ROOT = Path(__file__).resolve().parents[1]
PLOTLY = ROOT / "kernel" / "aiq-backtest" / "assets" / "vendor" / "plotly" / "plotly.min.js"
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
    "font-src data:"
)
STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 12px 20px; }
header h1 { font-size: 18px; margin: 0 0 4px; } header .meta { color: #b8c0d0; font-size: 12px; word-break: break-all; }
main { padding: 12px 20px 40px; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; margin: 12px 0; padding: 10px 14px; }
section h2 { font-size: 15px; margin: 2px 0 8px; }
.chart { width: 100%; height: 380px; }
.controls { margin: 4px 0 8px; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { padding: 3px 6px; border-bottom: 1px solid #eceff3; text-align: right; white-space: nowrap; }
th { cursor: pointer; background: #f0f2f5; position: sticky; top: 0; user-select: none; }
td.l, th.l { text-align: left; } td.l { white-space: normal; } tr.chosen { background: #fff3cd; font-weight: 600; }
.pass { color: #1e8449; font-weight: 600; } .fail { color: #c0392b; font-weight: 600; } .na { color: #667; }
.tablewrap { max-height: 560px; overflow: auto; } code { font-size: 11px; word-break: break-all; }
.note { color: #667; font-size: 11px; }
"""


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# Around every page's app: the data as ``D``, ``$``, the Plotly config ``CFG``; the app pushes each
# chart's promise to ``drawn`` (``done(id)`` marks a chart drawn), and when all are drawn the page
# sets ``body[data-ready]`` and the draw time the browser tests and bench_reports read.
APP_PROLOGUE = r"""
"use strict";
(function () {
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const CFG = { displaylogo: false, responsive: true };
  const drawn = [];
  const done = (id) => () => { $(id).dataset.drawn = "1"; };
"""
APP_EPILOGUE = r"""
  Promise.all(drawn).then(() => { window.__reportStartMs = t0; window.__reportDrawMs = performance.now() - t0; document.body.dataset.ready = "1"; });
})();
"""


def page(generator: str, title: str, body: str, data: Any, app_js: str) -> str:
    """The whole page. `generator` is the marker the monitor lists it by (monitor/reports.py);
    ``app_js`` is the body of the page's script, between APP_PROLOGUE and APP_EPILOGUE."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="generator" content="{generator}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        f"<script>{PLOTLY.read_text()}</script>\n"
        f'<script type="application/json" id="report-data">{script_json(data)}</script>\n'
        f"<script>{APP_PROLOGUE}{app_js}{APP_EPILOGUE}</script>\n</body>\n</html>\n"
    )


__all__ = ["PLOTLY", "page", "script_json"]
