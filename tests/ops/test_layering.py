"""The package graph of docs/architecture.md ("Layers"), held against every import in the tree.

Every ``import`` and ``from ... import`` (at the top of a module or inside a function) in engine/,
strategy/, exchange/, live/, daemon/, monitor/, tools/ and tests/ is parsed with ``ast`` and mapped
to the layer of the module it names. The test fails on an import a layer may not make, on a cycle
between layers or top-level packages, and on a cycle between modules. Nothing is excepted.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.ops.ops_helpers import REPO

PACKAGES = ("exchange", "engine", "strategy", "live", "daemon", "monitor", "tools", "tests")

# The layers, bottom first, and what each may import besides itself (docs/architecture.md).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "exchange": frozenset(),
    "sim": frozenset({"exchange"}),
    "engine": frozenset({"exchange"}),
    "strategy": frozenset({"engine", "exchange"}),
    "live": frozenset({"strategy", "engine", "exchange"}),
    "daemon": frozenset({"live", "strategy", "engine", "exchange"}),
    "monitor": frozenset({"strategy", "engine", "exchange"}),
    "tools": frozenset({"daemon", "monitor", "live", "strategy", "engine", "sim", "exchange"}),
    "tests": frozenset({"tools", "daemon", "monitor", "live", "strategy", "engine", "sim", "exchange"}),
}
# The venue seam: only exchange/ (and tools, tests) may import the Hyperliquid SDK or ``requests``.
VENUE_LIBRARIES = ("hyperliquid", "requests")

# Inside exchange/, the Hyperliquid adapters sit behind the venue seam (exchange/venue.py: the
# MarketData and Execution Protocols and their typed values). Above exchange/, only the daemon's
# wiring module constructs them (and tools, tests); everything else types against the seam.
HYPERLIQUID_MODULES = (
    "exchange.executor",
    "exchange.hl_cloid",
    "exchange.hl_fills",
    "exchange.hl_market_data",
    "exchange.ws",
)
ADAPTER_WIRING = frozenset({"daemon.main"})


@dataclass(frozen=True, slots=True)
class Edge:
    src: str  # importing module
    dst: str  # imported module (resolved to a module of ours)
    where: str  # path:line


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            out[module_name(path)] = path
    return out


MODULES = all_modules()


def layer_of(module: str) -> str:
    if module == "exchange.sim" or module.startswith("exchange.sim."):
        return "sim"
    return module.split(".", 1)[0]


def _resolve(name: str) -> str | None:
    """The module of ours that ``name`` (a module or ``module.attribute``) refers to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(), str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            if module.startswith("tools.") and f"tools.{name.partition('.')[0]}" in MODULES:
                # tools put tools/ on sys.path and import their siblings (``ops.common``, ``daemon_proc``)
                name = "tools." + name
            dst = _resolve(name)
            if dst is not None and dst != module:
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                yield Edge(module, dst, where)


EDGES = [e for m, p in MODULES.items() for e in imports_of(m, p)]


def _cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one node (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []
    nodes = set(graph) | {d for ds in graph.values() for d in ds}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


def test_the_parser_sees_the_tree() -> None:
    # A guard against a test that passes because it read nothing.
    assert {"daemon.main", "engine.oms", "exchange.executor", "live.execution", "monitor.app"} <= set(MODULES)
    assert len(EDGES) > 500
    assert any(e.src == "daemon.main" and layer_of(e.dst) == "live" for e in EDGES)
    assert layer_of("exchange.sim.server") == "sim" and layer_of("daemon.loop") == "daemon"


def test_every_import_respects_the_layers() -> None:
    bad = [
        f"{e.where}: {e.src} ({layer_of(e.src)}) imports {e.dst} ({layer_of(e.dst)})"
        for e in EDGES
        if layer_of(e.src) != layer_of(e.dst) and layer_of(e.dst) not in MAY_IMPORT[layer_of(e.src)]
    ]
    assert not bad, "imports that break the layering of docs/architecture.md:\n" + "\n".join(bad)


def test_only_exchange_talks_to_the_venue_libraries() -> None:
    bad: list[str] = []
    for module, path in MODULES.items():
        if layer_of(module) not in {"engine", "strategy", "live", "daemon", "monitor"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for lib in sorted({n.split(".", 1)[0] for n in names} & set(VENUE_LIBRARIES)):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {module} imports {lib}")
    assert not bad, "venue libraries outside exchange/:\n" + "\n".join(bad)


def test_only_the_wiring_constructs_the_hyperliquid_adapters() -> None:
    assert set(HYPERLIQUID_MODULES) <= set(MODULES)
    bad = [
        f"{e.where}: {e.src} imports {e.dst} (use exchange.venue)"
        for e in EDGES
        if e.dst in HYPERLIQUID_MODULES
        and layer_of(e.src) in {"engine", "strategy", "live", "daemon", "monitor"}
        and e.src not in ADAPTER_WIRING
    ]
    assert not bad, "Hyperliquid adapters imported past the venue seam:\n" + "\n".join(bad)
    # the wiring module does construct them (else the exception above is stale)
    assert {e.dst for e in EDGES if e.src in ADAPTER_WIRING} >= {
        "exchange.executor",
        "exchange.hl_market_data",
    }


def test_the_layers_form_no_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in EDGES:
        if layer_of(e.src) != layer_of(e.dst):
            graph[layer_of(e.src)].add(layer_of(e.dst))
    assert _cycles(graph) == []
    # The rules themselves are a DAG too (so an allowed import can never close a circle).
    assert _cycles({k: set(v) for k, v in MAY_IMPORT.items()}) == []


def test_no_cycle_between_packages() -> None:
    # Folders, not layers: the daemon has a folder of its own, so no folder imports one that imports it.
    graph: dict[str, set[str]] = defaultdict(set)
    for e in EDGES:
        src, dst = e.src.split(".", 1)[0], e.dst.split(".", 1)[0]
        if src != dst:
            graph[src].add(dst)
    cycles = _cycles(graph)
    assert cycles == [], f"cycles between top-level packages: {[sorted(c) for c in cycles]}"


def test_no_cycle_between_modules() -> None:
    # Every import counts: lazy ones inside functions and type-only ones under TYPE_CHECKING too (a
    # type-only circle is still two modules that cannot be understood one without the other).
    graph: dict[str, set[str]] = defaultdict(set)
    for e in EDGES:
        graph[e.src].add(e.dst)
    cycles = [sorted(c) for c in _cycles(graph)]
    assert not cycles, f"import cycles between modules: {cycles}"


def test_the_doc_lists_the_same_layers() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    section = doc.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {line.split("`")[1] for line in rows}
    assert named == set(MAY_IMPORT), f"docs/architecture.md layers {sorted(named)} vs {sorted(MAY_IMPORT)}"
    for line in rows:
        layer = line.split("`")[1]
        cells = [c.strip() for c in line.strip("|").split("|")]
        allowed = {w.strip("` ") for w in cells[-1].split(",")} - {"nothing", ""}
        assert allowed == set(MAY_IMPORT[layer]), f"{layer}: the doc says {sorted(allowed)}"
