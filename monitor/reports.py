"""Report pages in the monitor: replay reports (``ai-quant-bt replay --html``), sweep reports and
factory-run reports found in ``<data dir>/reports/``, and every strategy-factory run under
``<data dir>/artifacts/<day>/run_<id>/`` (its report and its sweep, rendered here from report.json
and sweep.jsonl, with the registry and the paper DB opened read-only), listed at ``/api/reports``
and served as pages at ``/api/reports/<kind>/<name>``.

Read-only like the rest of the monitor: GET only, behind the same token (the ``/api/`` prefix), and
a file is served only when its name is a plain file name in that folder (no path separator, no
symlink, no dot file) and it carries the report generator's marker. The pages are self-contained
(their script and data are inline), so they get their own Content-Security-Policy: inline script
and style, nothing fetched (``default-src 'none'``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from aiohttp import web

#: The ``<meta name="generator">`` content of each kind of report page (first 4 KiB of the file).
GENERATORS = {
    "replay": "ai-quant-bt replay report",
    "sweep": "ai-quant sweep report",
    "factory": "ai-quant factory report",
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.html$")
REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
    "font-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
MAX_LISTED = 500
#: Kinds rendered from a factory run's artifacts (name: ``<day>--run_<id>``).
RUN_KINDS = ("factory-run", "factory-sweep")
RUN_NAME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})--(run_[A-Za-z0-9._-]{1,100})$")
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024  # a report page or a run artifact the monitor loads


@dataclass(frozen=True)
class ReportFile:
    kind: str
    name: str
    url: str
    bytes: int
    mtime_ms: int


def reports_dir(data_dir: Path) -> Path:
    return data_dir / "reports"


def _kind(head: bytes) -> str | None:
    m = re.search(rb'<meta name="generator" content="([^"]{1,80})">', head)
    if not m:
        return None
    gen = m.group(1).decode("ascii", "replace")
    return next((k for k, v in GENERATORS.items() if v == gen), None)


def _open_plain(folder: Path, name: str) -> tuple[int, os.stat_result] | None:
    """An fd for ``folder/name`` if it is a plain file there (a symlink is refused by O_NOFOLLOW)."""
    if not NAME_RE.match(name):
        return None
    try:
        fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def list_reports(data_dir: Path) -> list[ReportFile]:
    """Every report page in the reports folder, newest first."""
    folder = reports_dir(data_dir)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out = []
    for name in names:
        opened = _open_plain(folder, name)
        if opened is None:
            continue
        fd, st = opened
        with os.fdopen(fd, "rb") as f:
            kind = _kind(f.read(4096))
        if kind is not None:
            out.append(
                ReportFile(kind, name, f"/api/reports/{kind}/{name}", st.st_size, st.st_mtime_ns // 1_000_000)
            )
    out.sort(key=lambda r: (-r.mtime_ms, r.name))
    return out[:MAX_LISTED]


def read_report(data_dir: Path, kind: str, name: str) -> bytes | None:
    """The page's bytes, or None unless it is a listed-kind report page in the folder."""
    opened = _open_plain(reports_dir(data_dir), name)
    if opened is None:
        return None
    fd, st = opened
    with os.fdopen(fd, "rb") as f:
        if st.st_size > MAX_ARTIFACT_BYTES:  # a report is a few MB; never load a giant file
            return None
        body = f.read()
    return body if kind in GENERATORS and _kind(body[:4096]) == kind else None


def _artifact(data_dir: Path, name: str, file: str) -> Path | None:
    """``<data dir>/artifacts/<day>/run_<id>/<file>`` for a valid run name, if it is a plain file
    (no symlink anywhere below artifacts/)."""
    m = RUN_NAME_RE.match(name)
    if not m:
        return None
    root = data_dir / "artifacts"
    path = root / m.group(1) / m.group(2) / file
    try:
        for p in (root / m.group(1), root / m.group(1) / m.group(2), path):
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ARTIFACT_BYTES:
            return None
    except OSError:
        return None
    return path


def list_runs(data_dir: Path) -> list[ReportFile]:
    """A factory-run page (and a sweep page when the run kept its sweep) for each run, newest first."""
    root = data_dir / "artifacts"
    out = []
    try:
        days = sorted((d for d in os.listdir(root) if re.match(r"^\d{4}-\d{2}-\d{2}$", d)), reverse=True)
    except OSError:
        return []
    for day in days:
        try:
            runs = sorted(os.listdir(root / day), reverse=True)
        except OSError:
            continue
        for run in runs:
            name = f"{day}--{run}"
            for kind, file in (("factory-run", "report.json"), ("factory-sweep", "sweep.jsonl")):
                path = _artifact(data_dir, name, file)
                if path is not None:
                    st = path.stat()
                    out.append(
                        ReportFile(
                            kind, name, f"/api/reports/{kind}/{name}", st.st_size, st.st_mtime_ns // 1_000_000
                        )
                    )
            if len(out) >= MAX_LISTED:
                return out
    return out


def render_run(data_dir: Path, kind: str, name: str, paper_db: Path | None) -> bytes | None:
    """A factory run's report or sweep page, rendered from its artifacts (read-only)."""
    from monitor import factory_page, sweep_page
    from monitor.report_page import ReportError

    def factory_run(path: Path) -> str:
        report = factory_page.load_report(path)
        registry = data_dir / "artifacts" / "registry" / "registry.sqlite"
        life = None
        if registry.is_file():
            cids = [c["config_id"] for c in report["candidates"]]
            pdb = paper_db if paper_db is not None and paper_db.is_file() else None
            life = factory_page.lifecycle(registry, cids, pdb, time.time())
        return factory_page.render(report, life)

    def factory_sweep(path: Path) -> str:
        rows = sweep_page.load_rows(path)
        chosen = sweep_page.choose(rows, "total_pnl", None)
        cmd = f"python tools/sweep_report.py {path} --html reports/sweep.html --replay {{id}} --config CONFIG -- ..."
        return sweep_page.render(rows, "total_pnl", chosen, 50, path.parent, cmd)

    # kind -> (the run's artifact, its page)
    pages: dict[str, tuple[str, Callable[[Path], str]]] = {
        "factory-run": ("report.json", factory_run),
        "factory-sweep": ("sweep.jsonl", factory_sweep),
    }
    if kind not in pages:
        return None
    artifact, render = pages[kind]
    path = _artifact(data_dir, name, artifact)
    if path is None:
        return None
    try:
        return render(path).encode()
    except (ReportError, KeyError, TypeError) as exc:
        return _problem(f"{name}: {exc}")


def _problem(msg: str) -> bytes:
    return json.dumps({"error": f"cannot render: {msg}"}).encode()


def add_routes(app: web.Application, data_dir: Path, paper_db: Path | None = None) -> None:
    async def index(request: web.Request) -> web.Response:
        items = await asyncio.to_thread(lambda: list_reports(data_dir) + list_runs(data_dir))
        return web.json_response(
            {"folder": str(reports_dir(data_dir)), "reports": [asdict(r) for r in items]},
            headers={"Cache-Control": "no-store"},
        )

    async def page(request: web.Request) -> web.Response:
        kind, name = request.match_info["kind"], request.match_info["name"]
        if kind in RUN_KINDS:
            body = await asyncio.to_thread(render_run, data_dir, kind, name, paper_db)
            if body is not None and body.startswith(b'{"error"'):
                return web.Response(body=body, status=422, content_type="application/json")
        else:
            body = await asyncio.to_thread(read_report, data_dir, kind, name)
        if body is None:
            return web.json_response({"error": f"no {kind} report named {name!r}"}, status=404)
        return web.Response(
            body=body,
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"},
        )

    app.router.add_get("/api/reports", index)
    app.router.add_get("/api/reports/{kind}/{name}", page)


__all__ = [
    "GENERATORS",
    "REPORT_CSP",
    "ReportFile",
    "add_routes",
    "list_reports",
    "read_report",
    "reports_dir",
]
