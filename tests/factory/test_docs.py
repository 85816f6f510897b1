"""The docs quote thresholds.py: every table row and every `name` mentioned must match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strategy.factory.thresholds import THRESHOLDS, fmt_value

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| (.+?) \|$", re.M)


@pytest.mark.parametrize("name", ["strategy_lifecycle.md", "success_metrics.md"])
def test_doc_tables_match_code(name: str) -> None:
    text = (DOCS / name).read_text()
    values = THRESHOLDS.as_dict()
    rows = ROW.findall(text)
    assert len(rows) >= 10
    for key, shown in rows:
        assert key in values, f"{name}: unknown threshold {key}"
        assert shown == fmt_value(values[key]), f"{name}: {key} is {shown}, code says {values[key]}"
    # every backticked snake_case word that looks like a threshold name exists in the code
    for word in set(re.findall(r"`([a-z0-9]+(?:_[a-z0-9]+)+)`", text)):
        if word.endswith(("_min", "_max", "_pct", "_bps", "_hours", "_days", "_trades", "_stages")):
            assert word in values, f"{name}: `{word}` is not a threshold"
