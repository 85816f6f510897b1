"""One interval list (#24): ``kernel/aiq-config/intervals.txt``, read by Rust (``aiq_config``) and
Python (``exchange/intervals.py``). This test fails on a second list anywhere in the code: a
region naming four or more interval literals, or three or more ``interval -> milliseconds`` pairs,
outside the files allowed below (each with its reason)."""

from __future__ import annotations

import re
from pathlib import Path

import bt_runtime

from exchange.intervals import INTERVALS, INTERVALS_FILE, VENUE_INTERVALS

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = (
    "engine",
    "strategy",
    "exchange",
    "live",
    "daemon",
    "monitor",
    "tools",
    "kernel",
    "ws_sidecar",
    "tests",
)

# The one reader per language, and the few files that name intervals for another reason.
ALLOWED: dict[str, str] = {
    "kernel/aiq-config/src/lib.rs": "the Rust reader of intervals.txt (its unit test names a few)",
    "ws_sidecar/src/config.rs": "default_retention_days: a retention policy per interval, not a list",
}

_NAMES = set(VENUE_INTERVALS)
_LITERAL = re.compile(r"""["']([0-9]{1,2}[mhdwM])["']""")
# "1h": 3_600_000 / ("1h", 3600000) / "1h" => 60 * MIN
_PAIR = re.compile(r"""["']([0-9]{1,2}[mhdwM])["']\s*(?::|,|=>)\s*\(?\s*(?:[0-9]|[A-Z][A-Z_]*\b)""")
_WINDOW = 6


def _scanned() -> list[Path]:
    out = []
    for sub in SOURCE_DIRS:
        for p in sorted((ROOT / sub).rglob("*")):
            if p.suffix not in (".py", ".rs") or "target" in p.parts or ".venv" in p.parts:
                continue
            # Test modules state the values they check; shared test helpers are code and scanned.
            if p.parts[len(ROOT.parts)] == "tests" and p.name.startswith("test_"):
                continue
            out.append(p)
    return out


def find_copies(path: Path) -> str | None:
    """Why ``path`` looks like a second interval list, or None."""
    lines = path.read_text(errors="replace").splitlines()
    for i in range(len(lines)):
        names = {m for line in lines[i : i + _WINDOW] for m in _LITERAL.findall(line) if m in _NAMES}
        if len(names) >= 4:
            return f"line {i + 1} names {sorted(names)}"
    pairs = {m for line in lines for m in _PAIR.findall(line) if m in _NAMES}
    if len(pairs) >= 3:
        return f"maps {sorted(pairs)} to numbers"
    return None


def test_no_second_interval_list() -> None:
    copies = []
    seen_allowed = set()
    for p in _scanned():
        rel = p.relative_to(ROOT).as_posix()
        why = find_copies(p)
        if why is None:
            continue
        if rel in ALLOWED:
            seen_allowed.add(rel)
        else:
            copies.append(f"{rel}: {why}")
    assert not copies, f"a second interval list (use exchange.intervals / aiq_config::INTERVALS): {copies}"
    stale = sorted(set(ALLOWED) - seen_allowed)
    assert not stale, f"allow-list entries no longer needed (delete them): {stale}"


def test_detector_catches_the_copies_main_had(tmp_path: Path) -> None:
    samples = {
        "py_dict.py": 'INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000}\n',
        "py_literal.py": 'Interval = Literal[\n    "1m", "3m",\n    "5m", "15m", "30m"]\n',
        "rs_match.rs": '"1m" => MIN,\n"3m" => 3 * MIN,\n\n\n\n\n\n\n"1h" => 60 * MIN,\n',
        "rs_const.rs": 'pub const INTERVALS: &[(&str, i64)] = &[\n    ("1m", 60_000),\n    ("3m", 180_000),\n'
        '    ("5m", 300_000),\n];\n',
    }
    for name, text in samples.items():
        (tmp_path / name).write_text(text)
        assert find_copies(tmp_path / name), name
    (tmp_path / "ok.py").write_text('interval = "5m"\nother = "1h"\n')
    assert find_copies(tmp_path / "ok.py") is None


def test_one_list_both_languages() -> None:
    # The stored list, shortest first; the venue's extra names are not stored.
    assert list(INTERVALS.values()) == sorted(INTERVALS.values())
    assert set(INTERVALS) < set(VENUE_INTERVALS)
    assert {"3d", "1w", "1M"}.isdisjoint(INTERVALS)
    # bt_runtime (aiq_config::INTERVALS) is built from the same file.
    assert dict(bt_runtime.intervals()) == INTERVALS
    assert INTERVALS_FILE.read_text().count("store") >= len(INTERVALS)
