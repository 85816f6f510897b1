"""Fail a strict run (CI) on any skipped test that is not on the reviewed allowlist.

A green CI must mean the tests ran: a missing browser, binary or data folder shows up as a failure
with the skip's reason, not as a quiet "s". Strict when ``CI`` is true (``.ci/run``) or
``AI_QUANT_STRICT_SKIPS=1``; a developer's ``make test`` without, say, chromium still skips.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

# Tests allowed to skip in a strict run: marker name -> why. Only tests that need hardware CI never
# has belong here; every other skip fails the run.
ALLOWED_MARKERS: dict[str, str] = {
    "gpu": "needs a CUDA device; CI machines have none",
}

_TRUE = {"1", "true", "yes", "on"}


def strict() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("CI", "AI_QUANT_STRICT_SKIPS"))


@dataclass(frozen=True)
class Skip:
    nodeid: str
    reason: str


class SkipGuard:
    def __init__(self) -> None:
        self.allowed: set[str] = set()
        self.unlisted: list[Skip] = []

    @pytest.hookimpl
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if any(item.get_closest_marker(m) for m in ALLOWED_MARKERS):
                self.allowed.add(item.nodeid)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail") or report.nodeid in self.allowed:
            return
        # Under xdist this controller collects nothing (the workers do): the report's keywords carry
        # the test's markers.
        if any(m in (report.keywords or {}) for m in ALLOWED_MARKERS):
            return
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        self.unlisted.append(Skip(report.nodeid, reason.removeprefix("Skipped: ")))

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A module-level skip (importorskip, allow_module_level) hides a whole file.
        if report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.unlisted.append(Skip(report.nodeid, reason.removeprefix("Skipped: ")))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.unlisted:
            return
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"skip guard: {len(self.unlisted)} skip(s) not on the allowlist (tests/skip_guard.py):"]
        lines += [f"  {s.nodeid}: {s.reason}" for s in self.unlisted]
        text = "\n".join(lines)
        if tr is not None:
            tr.write_line(text, red=True, bold=True)
        else:
            print(text)
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    if strict() and not config.pluginmanager.has_plugin("ai-quant-skip-guard"):
        config.pluginmanager.register(SkipGuard(), "ai-quant-skip-guard")
