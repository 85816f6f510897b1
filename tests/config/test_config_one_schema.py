"""One schema, one merge, one hash: the Rust crate aiq-config. Fails if a second copy comes back
(the pydantic schema and engine.config.merge were one; aiq-backtest's YAML merge another), and
holds the two Rust entry points (the loader and the kernel's own check) to the same answers."""

import ast
import difflib
import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import bt_runtime
import pytest

from engine.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_typed_view_is_generated_from_the_rust_schema() -> None:
    res = subprocess.run(
        [sys.executable, "tools/gen_config_view.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


def test_no_second_schema_or_merge_in_python() -> None:
    """engine.config reads files and builds views; rules, merge and hash stay in Rust."""
    package = ROOT / "engine" / "config"
    assert sorted(p.name for p in package.glob("*.py")) == [
        "__init__.py",
        "errors.py",
        "layout.py",
        "loader.py",
        "modes.py",
        "view.py",
        "watcher.py",
        "yaml_file.py",
    ]
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
        # pydantic carried the second schema; hashlib the second config_id.
        assert not imported & {"pydantic", "pydantic_core", "annotated_types", "hashlib"}, path


def test_no_second_merge_or_hash_in_the_backtester() -> None:
    text = (ROOT / "kernel" / "aiq-backtest" / "src" / "config.rs").read_text()
    for copy in ("fn py_float_repr", "fn write_canonical", "fn split_overlay", "envelope::merge", "Sha256"):
        assert copy not in text, copy


def _candidates(py_type: str) -> list[Any]:
    if py_type == "bool":
        return [True, False, 1, "true"]
    if py_type == "int":
        return [0, 1, 2, 3, 4, -1, 49, 50, 51, 5000, 5001, 9999, 10_000, 10_001, 2**32 - 1, 2**32, 2.0]
    if py_type == "float":
        return [
            0,
            0.0,
            -1e-9,
            1e-9,
            0.5,
            1.0,
            1.0000001,
            50.0,
            50.0001,
            100.0,
            100.1,
            -5.0,
            1e9,
            3,
            "1.0",
            True,
        ]
    if py_type == "list[str]":
        return [[], ["BTC"], [1], "BTC"]
    return ["", "x", "low", "HIGH", "accel", "ema_cross", "1h", "7m", "1M", " 1h", 1]


def _nested(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return out


def _set(cfg: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = cfg
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return cfg


FIELDS = bt_runtime.config_fields()


@pytest.mark.parametrize(("path", "py_type"), FIELDS, ids=[p for p, _ in FIELDS])
def test_loader_and_kernel_check_agree(path: str, py_type: str) -> None:
    """The layered loader (file problems) and the kernel's check of a bare merged config
    (`validate_config_json`) accept and refuse the same values, at the same key."""
    for value in _candidates(py_type):
        problems, _, _, _ = bt_runtime.resolve_config({"global": _nested(path, value)})
        try:
            bt_runtime.validate_config_json(json.dumps(_set(bt_runtime.defaults(), path, value)))
            kernel = None
        except ValueError as exc:
            kernel = str(exc)
        assert (not problems) == (kernel is None), (path, value, problems, kernel)
        if problems and "invalid config" not in kernel:  # serde type errors name the key differently
            assert problems[0][0] == f"global.{path}", (path, value, problems, kernel)


def test_config_id_stays_the_hash_python_computed(tmp_path: Path) -> None:
    """config_id is stored (factory registry `engine_config_id`): it stays sha256 of Python's
    `json.dumps(merged, sort_keys=True, separators=(",", ":"))`, float repr and escapes included."""
    p = tmp_path / "c.yaml"
    p.write_text(
        "global:\n  trade: {min_atr_pct: 0.00001, min_notional_usd: 12345678901234567.0, slippage_bps: 0.1}\n"
        "  market_regime: {regime_gate_btc_atr_pct_min: 1.5e-7}\n"
        '  watchlist_exclude: ["\u00e9\\"\\t", "kPEPE", "\U0001f600"]\n'
    )
    loaded = load_config(p)
    text = json.dumps(loaded.merged, sort_keys=True, separators=(",", ":"))
    assert loaded.to_json() == text
    assert loaded.config_id == hashlib.sha256(text.encode()).hexdigest()
    assert loaded.merged["trade"]["min_atr_pct"] == 1e-05


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2024-01-01", "expected a number, got date"),
        ("!!binary aGVsbG8=", "expected a number, got bytes"),
        (str(2**130), f"must be between 1 and 50, got {2**130}"),
        (".nan", "must be a finite number, got number nan"),
    ],
)
def test_values_json_cannot_hold_are_named(tmp_path: Path, value: str, problem: str) -> None:
    """The parsed YAML reaches Rust as it is (dates, bytes, integers beyond 128 bits, NaN)."""
    p = tmp_path / "c.yaml"
    p.write_text(f"global:\n  trade:\n    leverage: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value) == f"{p}: global.trade.leverage: {problem}"


def test_did_you_mean_is_pythons_difflib() -> None:
    """The layout check's suggestions (Rust) are what difflib.get_close_matches gives."""
    rng = random.Random(7)
    trade = [p.split(".", 1)[1] for p, _ in FIELDS if p.startswith("trade.")]
    every_name = {part for p, _ in FIELDS for part in p.split(".")}
    checked = 0
    for _ in range(400):
        letters = list(rng.choice(trade))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(letters) + 1)
            if rng.random() < 0.5 and len(letters) > 1:
                letters.pop(min(i, len(letters) - 1))
            else:
                letters.insert(i, rng.choice("aeilmnrst_x"))
        word = "".join(letters)
        if word in every_name:
            continue
        problems, _, _ = bt_runtime.check_config_document({"global": {"trade": {word: 1}}})
        close = difflib.get_close_matches(word, trade, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        assert problems == [(f"global.trade.{word}", f"unknown key {word!r}{hint}")]
        checked += 1
    assert checked > 300
