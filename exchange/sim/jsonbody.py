"""Parse a client's JSON text with the venue's limits, so hostile input is a clear error, never a crash.

- Nesting: Python's parser raises ``RecursionError`` (not ``ValueError``) past about 1,000 levels,
  and bodies just under that still overflow later recursive code (msgpack, ``json.dumps``). The
  venue's parser (serde_json) stops at 128 levels; this does the same.
- Integers: the venue's fields are 64-bit; a larger one cannot be deserialized there, and here
  it would overflow msgpack when the signature is checked.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 128
ERR_DEPTH = f"recursion limit exceeded (nesting deeper than {MAX_DEPTH})"
ERR_INT = "integer out of the 64-bit range"
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # i64 and u64 together


def loads(text: str | bytes) -> Any:
    """Parsed JSON; ``ValueError`` for malformed text, nesting past ``MAX_DEPTH``, integers past 64 bits."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(ERR_DEPTH) from None
    problem = _check(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _check(value: Any) -> str | None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            if type(node) is int and not INT_MIN <= node <= INT_MAX:
                return ERR_INT
            continue
        if depth > MAX_DEPTH:
            return ERR_DEPTH
        stack.extend((c, depth + 1) for c in children)
    return None
