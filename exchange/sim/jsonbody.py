"""Parse a client's JSON text with a nesting limit, so hostile input is a clear error, never a crash.

Python's parser raises ``RecursionError`` (not ``ValueError``) past about 1,000 levels, and bodies
just under that still overflow later recursive code (msgpack, ``json.dumps``). The venue's parser
(serde_json) stops at 128 levels; this does the same.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 128
ERR_DEPTH = f"recursion limit exceeded (nesting deeper than {MAX_DEPTH})"


def loads(text: str | bytes) -> Any:
    """Parsed JSON; ``ValueError`` for malformed text and for nesting deeper than ``MAX_DEPTH``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(ERR_DEPTH) from None
    if _too_deep(value):
        raise ValueError(ERR_DEPTH)
    return value


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False
