"""The candles table is defined once for both languages (#24): ``kernel/aiq-candles/candles.sql``,
compiled into the Rust crates and read by ``exchange/candle_db.py``. This test fails on a new
``CREATE TABLE ... candles`` elsewhere in the code, and on an allow-list entry that is no longer
needed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:\{table\}|candles\b)", re.I)

# The one definition (for both languages), then the fixtures that still write their own (#24 follow-up).
ALLOWED: dict[str, str] = {
    "kernel/aiq-candles/candles.sql": "the one definition (Rust: include_str!, Python: read at import)",
    "exchange/candle_db.py": "names the line of candles.sql it reuses for mark_candles; candle_meta's template",
    "tools/lookahead_check.py": "writes a reduced table (no t_close) for ai-quant-bt inputs",
    "tools/bench_reports.py": "benchmark fixture",
    "tools/bench_backtest.py": "benchmark fixture",
    "tests/backtest/bt_helpers.py": "test fixture; its file bytes are in the golden report's fingerprint",
}


def test_candles_table_defined_once_per_language() -> None:
    found = set()
    for sub in (
        "engine",
        "strategy",
        "exchange",
        "live",
        "monitor",
        "tools",
        "kernel",
        "ws_sidecar",
        "tests",
    ):
        for p in (ROOT / sub).rglob("*"):
            if p.suffix not in (".py", ".rs", ".sql") or "target" in p.parts or p.name.startswith("test_"):
                continue
            text = p.read_text(errors="replace")
            # Rust unit tests may build other tables; only code before `mod tests` counts.
            text = text.split("#[cfg(test)]", 1)[0]
            if CREATE.search(text):
                found.add(p.relative_to(ROOT).as_posix())
    assert not found - set(ALLOWED), f"a second candles table definition: {sorted(found - set(ALLOWED))}"
    assert not set(ALLOWED) - found, f"allow-list entries no longer needed: {sorted(set(ALLOWED) - found)}"
