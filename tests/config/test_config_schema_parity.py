"""The pydantic schema and the Rust crate aiq-config agree: same keys, same ranges, same rules."""

import copy
import json
from collections.abc import Iterator
from typing import Any, get_args

import annotated_types
import bt_runtime
import pytest
from pydantic import BaseModel, ValidationError

from engine.config import StrategyConfig
from engine.config.schema import U32_MAX, Interval, key_tree


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, sub in tree.items():
        path = f"{prefix}{key}"
        out.add(path)
        if isinstance(sub, dict):
            out |= _keys(sub, f"{path}.")
    return out


def test_schema_key_set_equals_kernel_defaults_recursively() -> None:
    defaults = bt_runtime.defaults()
    assert _keys(key_tree()) == _keys(defaults)


def test_kernel_defaults_validate_in_pydantic_and_round_trip_exactly() -> None:
    defaults = bt_runtime.defaults()
    model = StrategyConfig.model_validate(defaults)
    assert model.model_dump(mode="json") == defaults


def test_schema_declares_no_defaults() -> None:
    def walk(model: type[BaseModel]) -> Iterator[str]:
        for name, info in model.model_fields.items():
            if not info.is_required():
                yield f"{model.__name__}.{name}"
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                yield from walk(ann)

    assert list(walk(StrategyConfig)) == []


def _leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _leaves(ann, (*prefix, name))
        else:
            yield (*prefix, name), info


def _candidates(info: Any) -> list[Any]:
    """Boundary values for one field: each declared bound, just inside and just outside it."""
    ann = info.annotation
    if ann is bool:
        return [True, False, 1, "true"]
    if ann is int:
        values: list[Any] = [0, 1, 2, 3, 4, -1, 49, 50, 51, 5000, 5001, 9999, 10_000, 10_001]
        values += [U32_MAX, U32_MAX + 1, 2.0]
        for m in info.metadata:
            for attr in ("ge", "gt", "le", "lt"):
                bound = getattr(m, attr, None)
                if bound is not None:
                    values += [bound - 1, bound, bound + 1]
        return values
    if ann is float:
        values = [0, 0.0, -0.0, 1e-9, -1e-9, 0.5, 1.0, 1.0000001, 0.9999999, 50.0, 50.0001, -5.0, 1e9, 3]
        for m in info.metadata:
            if isinstance(
                m, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt
            ):
                bound = next(getattr(m, a) for a in ("ge", "gt", "le", "lt") if hasattr(m, a))
                values += [bound, bound + 1e-6, bound - 1e-6]
        return [*values, "1.0", True]
    if ann == list[str]:
        return [[], ["BTC"], [1], "BTC"]
    args = get_args(ann)
    if args:  # a Literal
        return [*args, "", "x", "HIGH", "7m", "1w", "3d", "6h", 1]
    raise AssertionError(f"no candidates for {ann!r}")


def _pydantic_paths(cfg: dict[str, Any]) -> set[str] | None:
    try:
        StrategyConfig.model_validate(cfg)
    except ValidationError as exc:
        paths = set()
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            if err["type"] == "field_order":
                loc.append(str((err.get("ctx") or {})["low"]))
            paths.add(".".join(loc))
        return paths
    return None


def _rust_path(cfg: dict[str, Any]) -> str | None:
    try:
        bt_runtime.validate_config_json(json.dumps(cfg))
    except ValueError as exc:
        return str(exc).split(": ", 1)[0]
    return None


def _set(cfg: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


LEAVES = list(_leaves(StrategyConfig))


@pytest.mark.parametrize(("path", "info"), LEAVES, ids=[".".join(p) for p, _ in LEAVES])
def test_boundary_values_agree_with_kernel(path: tuple[str, ...], info: Any) -> None:
    defaults = bt_runtime.defaults()
    for value in _candidates(info):
        cfg = _set(defaults, path, value)
        ours, theirs = _pydantic_paths(cfg), _rust_path(cfg)
        assert (ours is None) == (theirs is None), (path, value, ours, theirs)
        # A range or rule failure names the same key in both (serde type errors carry no path).
        if theirs:
            assert theirs in ours, (path, value, ours, theirs)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({("indicators", "ema_fast_window"): 50}, "indicators.ema_fast_window"),
        ({("indicators", "ema_fast_window"): 49}, None),
        ({("indicators", "macd_fast"): 26}, "indicators.macd_fast"),
        ({("trade", "vol_scalar_min"): 0.9, ("trade", "vol_scalar_max"): 0.8}, "trade.vol_scalar_min"),
        ({("trade", "vol_scalar_min"): 0.8, ("trade", "vol_scalar_max"): 0.8}, None),
        ({("trade", "reentry_cooldown_min_mins"): 181}, "trade.reentry_cooldown_min_mins"),
        ({("trade", "reentry_cooldown_min_mins"): 180}, None),
        ({("thresholds", "ranging", "rsi_low"): 53.5}, "thresholds.ranging.rsi_low"),
        ({("thresholds", "ranging", "rsi_low"): 53}, None),
    ],
)
def test_cross_field_rules_agree_with_kernel(changes: dict[tuple[str, ...], Any], path: str | None) -> None:
    cfg = bt_runtime.defaults()
    for key, value in changes.items():
        cfg = _set(cfg, key, value)
    ours, theirs = _pydantic_paths(cfg), _rust_path(cfg)
    assert theirs == path
    assert ours == (None if path is None else {path})


def test_interval_names_agree_with_kernel() -> None:
    defaults = bt_runtime.defaults()
    candidates = [*get_args(Interval), "", "1M", "1w", "3d", "6h", "2m", "45m", "1H", " 1h"]
    for name in candidates:
        for key in ("interval", "entry_interval", "exit_interval"):
            cfg = _set(defaults, ("engine", key), name)
            assert (_pydantic_paths(cfg) is None) == (_rust_path(cfg) is None), (key, name)


def test_unknown_key_rejected_by_both() -> None:
    cfg = _set(bt_runtime.defaults(), ("trade", "no_such_key"), 1)
    assert _pydantic_paths(cfg) == {"trade.no_such_key"}
    assert _rust_path(cfg) is not None
