"""docs/architecture.md against the code: the diagram shows every process a unit starts, and every
module, file, unit and tool the page names exists (nothing that exists is called planned)."""

from __future__ import annotations

import importlib.util
import re

from tests.ops.ops_helpers import REPO

DOC = (REPO / "docs" / "architecture.md").read_text()
DIAGRAM = DOC.split("```mermaid", 1)[1].split("```", 1)[0]
UNITS = sorted(p.name for p in (REPO / "systemd").iterdir() if p.suffix in (".service", ".timer"))


def exec_targets() -> dict[str, str]:
    """unit -> what its ExecStart runs (a module, a tool or a binary)."""
    out = {}
    for name in UNITS:
        if not name.endswith(".service"):
            continue
        for line in (REPO / "systemd" / name).read_text().splitlines():
            if line.startswith("ExecStart="):
                m = re.search(r"-m ([a-z_.]+)", line) or re.search(r"(tools/[a-z_]+\.py)", line)
                m = m or re.search(r"release/([a-z-]+)", line)
                assert m, line
                out[name] = m.group(1)
    return out


def test_the_diagram_shows_what_every_unit_starts() -> None:
    targets = exec_targets()
    assert set(targets.values()) >= {"daemon", "monitor", "exchange.sim", "ai-quant-sidecar"}
    for unit, target in targets.items():
        label = target.removeprefix("tools/")
        assert label in DIAGRAM or target in DIAGRAM or unit.removesuffix(".service") in DIAGRAM, (
            f"{unit} runs {target}, which the diagram does not show"
        )


def test_every_unit_is_named_and_every_named_unit_exists() -> None:
    named = set(re.findall(r"ai-quant-[a-z-]+\.(?:service|timer)", DOC))
    assert named <= set(UNITS), f"named but no unit file: {sorted(named - set(UNITS))}"
    for u in UNITS:
        assert u in DOC or u.replace(".timer", "") + "` + `.timer" in DOC or u.split(".")[0] in DOC, u


def test_named_modules_files_and_tools_exist() -> None:
    for mod in set(re.findall(r"python -m ([a-z_][a-z_.]*)", DOC)):
        assert importlib.util.find_spec(mod) is not None, f"python -m {mod}: no such module"
    for path in set(
        re.findall(
            r"`((?:engine|live|daemon|strategy|exchange|monitor|tools|ws_sidecar|kernel)/[\w/.{}-]*)`", DOC
        )
    ):
        base = path.split("{")[0].rstrip("/")
        assert (REPO / base).exists(), f"{path} named in architecture.md does not exist"


def test_nothing_that_exists_is_called_planned() -> None:
    assert "planned" not in DIAGRAM
    rows = [line for line in DOC.splitlines() if line.startswith("| ") and "planned" in line]
    assert rows == [], rows
    # The monitor and the daemon are processes in the diagram (they exist in the code).
    assert (REPO / "monitor" / "__main__.py").is_file() and "monitor<br/>" in DIAGRAM
    assert (REPO / "daemon" / "main.py").is_file() and 'D["daemon<br/>' in DIAGRAM
    assert (REPO / "engine" / "systemd_watchdog.py").is_file() and "WATCHDOG" in DIAGRAM
