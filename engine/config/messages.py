"""Pydantic validation errors turned into problems that name the place in the file."""

import math
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from engine.config.errors import Problem
from engine.config.layout import describe
from engine.config.merge import MergeResult, Origin
from engine.config.schema import StrategyConfig


def _num(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _field_metadata(loc: tuple[str | int, ...]) -> list[Any]:
    model: type[BaseModel] = StrategyConfig
    for i, part in enumerate(loc):
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        if i == len(loc) - 1:
            return list(info.metadata)
        ann = info.annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return []


def range_text(loc: tuple[str | int, ...]) -> str:
    """'between 1 and 50', '> 0', '> 0 and <= 1', ... from the field's declared bounds."""
    lo: Any = None
    hi: Any = None
    lo_strict = hi_strict = False
    for m in _field_metadata(loc):
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, lo_strict = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi, hi_strict = m.lt, True
    if lo is not None and hi is not None and not lo_strict and not hi_strict:
        return f"between {_num(lo)} and {_num(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_strict else '>='} {_num(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_strict else '<='} {_num(hi)}")
    return " and ".join(parts) or "in range"


def _type_hint(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    if "e" in value.lower() and "." not in value:
        return " (YAML 1.1 reads 1e-3 as text; write 0.001 or 1.0e-3)"
    return " (remove the quotes)"


_EXPECTED = {
    "float_type": "a number",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_RANGE_TYPES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _where(origin: Origin | None) -> str:
    return origin.describe() if origin is not None else "the kernel default"


def _order_problem(err: ErrorDetails, result: MergeResult) -> Problem:
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    low, high, op = str(ctx["low"]), str(ctx["high"]), str(ctx["op"])
    low_value, high_value = _num(ctx["low_value"]), _num(ctx["high_value"])
    o_low, o_high = result.origin_of((*loc, low)), result.origin_of((*loc, high))

    def rank(o: Origin | None) -> int:
        return -1 if o is None or o.location is None else o.layer_index

    # Report at the override that introduced the conflict (the later layer); name the other side.
    at, other, other_origin = (o_low, high, o_high) if rank(o_low) >= rank(o_high) else (o_high, low, o_low)
    negated = ">=" if op == "<" else ">"
    message = (
        f"{low} ({low_value}) {negated} {high} ({high_value}); {low} must be {op} {high} "
        f"({other} comes from {_where(other_origin)})"
    )
    key_path = at.describe() if at is not None else ".".join(str(p) for p in (*loc, low))
    return Problem(key_path, message)


def to_problem(err: ErrorDetails, result: MergeResult) -> Problem:
    if err["type"] == "field_order":
        return _order_problem(err, result)
    loc = tuple(err["loc"])
    origin = result.origin_of(loc)
    if origin is not None and origin.location is not None:
        key_path = origin.describe()
        if isinstance(loc[-1], int):  # an item of a list that was replaced as a whole
            key_path = f"{key_path}[{loc[-1]}]"
    else:
        key_path = ".".join(str(p) for p in loc)
    value = err.get("input")
    kind = err["type"]
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {describe(value)}{_type_hint(value)}"
    elif kind in _RANGE_TYPES:
        message = f"must be {range_text(loc)}, got {_num(value)}"
    elif kind == "finite_number":
        message = f"must be a finite number, got {describe(value)}"
    elif kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        message = f"expected {expected}, got {describe(value)}"
    elif kind == "extra_forbidden":
        message = "unknown key (the kernel defaults have it but engine/config/schema.py does not)"
    elif kind == "missing":
        message = "missing from the kernel defaults (engine/config/schema.py has it; aiq-config does not)"
    else:
        message = err["msg"]
    if origin is None or origin.location is None:
        message += f" (from {_where(origin)})"
    return Problem(key_path, message)


def problems_from(exc: ValidationError, result: MergeResult) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        problem = to_problem(err, result)
        if problem not in problems:
            problems.append(problem)
    return problems
