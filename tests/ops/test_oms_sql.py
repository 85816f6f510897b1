"""The OMS hands out what callers need through methods: no SQL on its tables outside the OMS.

Parses every module of engine/, strategy/, exchange/, live/, monitor/ and tools/ (with ``ast``,
f-string parts included) and fails on a string that reads or writes an OMS table (``FROM``,
``INTO``, ``UPDATE``, ``JOIN`` or ``TABLE`` before an ``oms_`` table name) anywhere but the OMS's own
modules. Readers beside a running daemon open the store read-only
(``engine.oms_store.OmsStore.open_read_only``) and call its read methods. The monitor is the one
deliberate reader of its own: it shows each OMS table as stored, by name (``monitor/readers.py``
``OMS_TABLES``), on its own read-only connection.
"""

from __future__ import annotations

import ast
import re

from engine.oms_store import TABLES
from tests.ops.ops_helpers import REPO

PACKAGES = ("engine", "strategy", "exchange", "live", "daemon", "monitor", "tools")
OMS_MODULES = frozenset({"engine/oms_store.py", "engine/oms.py"})
SQL_ON_OMS = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?: IF NOT EXISTS)?)\s+\"?(oms_\w+)")


def sql_on_oms_tables(path: str) -> list[str]:
    tree = ast.parse((REPO / path).read_text(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for table in SQL_ON_OMS.findall(node.value):
                found.append(f"{path}:{node.lineno}: {table}")
    return found


def test_the_pattern_sees_the_oms_tables() -> None:
    # the control: the OMS's own store is found, table by table
    seen = {line.rsplit(": ", 1)[1] for line in sql_on_oms_tables("engine/oms_store.py")}
    assert seen == set(TABLES) and len(TABLES) == 6


def test_no_sql_on_oms_tables_outside_the_oms() -> None:
    files = sorted(
        str(p.relative_to(REPO))
        for pkg in PACKAGES
        for p in (REPO / pkg).rglob("*.py")
        if ".venv" not in p.parts
    )
    assert "live/preflight.py" in files and "tools/crash_harness.py" in files
    bad = [hit for f in files if f not in OMS_MODULES for hit in sql_on_oms_tables(f)]
    assert not bad, "SQL on OMS tables outside the OMS (use an OmsStore method):\n" + "\n".join(bad)
