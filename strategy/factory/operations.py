"""Deployment operations behind the tools (paper deploy, promotion and ramp ticks, deploy from a
factory report, rollback). Each one checks the lifecycle state in the registry first, validates
the YAML as the daemon would, writes it atomically (the daemon hot-reloads on mtime change) and
records a transition and a deployment row. A refusal raises :class:`DeployRefused` with the
reason; nothing is written then.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .deploy import (
    Deployed,
    DeployRefused,
    deploy_text,
    last_good_path,
    overrides_to_doc,
    render,
    validate_text,
    with_size_multiplier,
    write_text_atomic,
)
from .lifecycle import LiveStats, RampState, State, paper_gates, ramp_step, rotation_triggers, transition
from .registry import Registry
from .thresholds import THRESHOLDS, Thresholds
from .track import kill_events, live_stats, paper_stats

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REGISTRY = Path("artifacts") / "registry" / "registry.sqlite"
LIVE_STATES = (State.LIVE_SMALL, State.LIVE_FULL)


def default_paper_target() -> Path:
    """Where the paper daemon reads its strategy YAML (AI_QUANT_STRATEGY_YAML)."""
    from engine.env import DEFAULT_STRATEGY_YAML

    env = os.environ.get("AI_QUANT_STRATEGY_YAML")
    return Path(env) if env else REPO / DEFAULT_STRATEGY_YAML


def add_paper_deploy_args(ap: argparse.ArgumentParser) -> None:
    """The options every tool that writes a registry config to the paper YAML takes."""
    ap.add_argument("--target", type=Path, default=None, help="paper YAML (default AI_QUANT_STRATEGY_YAML)")
    ap.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    ap.add_argument("--dry-run", action="store_true", help="validate and show the YAML; write nothing")


def _defaults() -> dict[str, Any]:
    from engine.config.loader import kernel_defaults

    return kernel_defaults()


def config_doc(reg: Registry, cid: str) -> dict[str, Any]:
    cfg = reg.config(cid)
    return overrides_to_doc(cfg.get("base") or {}, cfg.get("overrides") or {}, _defaults())


def _entered(reg: Registry, cid: str, states: tuple[State, ...]) -> float:
    """When the config last entered one of ``states`` (its transition's timestamp)."""
    for t in reversed(reg.transitions(cid)):
        if t["to_state"] in {s.value for s in states}:
            return float(t["timestamp"])
    raise DeployRefused(
        f"config {cid[:12]} has no recorded transition into {'/'.join(s.value for s in states)}"
    )


# --------------------------------------------------------------------------- paper


def paper_deploy_config(
    reg: Registry, cid: str, target: Path, *, trigger: str, dry_run: bool = False, now: float | None = None
) -> Deployed:
    st = reg.state(cid)
    if st not in (State.VALIDATED, State.PAPER):
        raise DeployRefused(
            f"config {cid[:12]} is {st.value if st else 'unknown'}: only a validated config goes to paper "
            "(or a paper config is redeployed)"
        )
    header = f"# deployed to paper by the strategy factory ({trigger}): config_id {cid}\n"
    d = deploy_text(target, render(config_doc(reg, cid), header), "paper", dry_run=dry_run)
    if dry_run:
        return d
    ts = time.time() if now is None else now
    if st is State.VALIDATED:
        reg.record_transition(
            transition(
                cid, State.VALIDATED, State.PAPER, trigger, f"deployed to paper at {target}", timestamp=ts
            )
        )
    reg.add_deployment("paper_deploy", cid, str(target), "paper", f"{trigger}: deployed to paper",
                       file_sha256=d.sha256, engine_config_id=d.engine_config_id, timestamp=ts)  # fmt: skip
    return d


def pick_from_report(report: dict[str, Any], lane: str | None, cid: str | None) -> tuple[str, str]:
    """(config_id, run_id) of a validated candidate of a factory report: the promoted one by
    default, else the first validated one of ``lane``, or the one named by ``cid`` (prefix)."""
    run_id = str(report.get("run", {}).get("run_id", "?"))
    cands = report.get("candidates") or []
    if cid is not None:
        hits = [c for c in cands if str(c["config_id"]).startswith(cid)]
        if len(hits) != 1:
            raise DeployRefused(f"{len(hits)} candidates of run {run_id} match {cid!r} (need exactly one)")
        c = hits[0]
        if c["verdict"] != "validated":
            raise DeployRefused(
                f"candidate {c['config_id'][:12]} was rejected by run {run_id}: "
                + "; ".join(c["reasons"])[:500]
            )
        return str(c["config_id"]), run_id
    if lane is not None:
        ok = [c for c in cands if c["lane"] == lane and c["verdict"] == "validated"]
        if not ok:
            raise DeployRefused(f"run {run_id} has no validated candidate in lane {lane!r}")
        return str(ok[0]["config_id"]), run_id
    prom = report.get("promoted")
    if not prom:
        raise DeployRefused(f"run {run_id} promoted no candidate (none passed validation)")
    return str(prom["config_id"]), run_id


# --------------------------------------------------------------------------- live promotion and ramp


@dataclass(frozen=True)
class PromoteOutcome:
    action: str  # promote | hold | advance | complete | step_down | pause
    message: str
    size_multiplier: float | None
    deployed: Deployed | None
    dry_run: bool


def promote_or_tick(
    reg: Registry,
    cid: str,
    live_target: Path,
    *,
    paper_db: Path | None,
    live_db: Path | None,
    kill_file: Path | None = None,
    now: float | None = None,
    dry_run: bool = False,
    th: Thresholds = THRESHOLDS,
) -> PromoteOutcome:
    """paper -> live_small when the paper gates pass (ramp stage 0), or one tick of the live ramp
    for a live config (hold / advance / complete / step down / pause)."""
    ts = time.time() if now is None else now
    st = reg.state(cid)
    if st is State.PAPER:
        if paper_db is None:
            raise DeployRefused("promotion from paper needs the paper daemon's trading DB (--paper-db)")
        _refuse_paper_target(reg, live_target)
        since = _entered(reg, cid, (State.PAPER,))
        ps = paper_stats(paper_db, int(since * 1000), int(ts * 1000), th)
        g = paper_gates(ps, th)
        if not g.passed:
            raise DeployRefused(f"paper gates not met for {cid[:12]}: " + "; ".join(g.reasons))
        mult = th.ramp_stages[0]
        header = f"# live ramp stage 0 ({mult:.0%}) by the strategy factory: config_id {cid}\n"
        d = deploy_text(live_target, render(with_size_multiplier(config_doc(reg, cid), mult), header), "live",
                        dry_run=dry_run)  # fmt: skip
        msg = (f"paper gates passed ({ps.closed_trades} closed trades, {ps.hours:.1f} h, PF "
               f"{ps.profit_factor if ps.profit_factor is not None else 'inf'}, DD {ps.max_drawdown_pct:.2f}%); "
               f"live at {mult:.0%} size")  # fmt: skip
        if not dry_run:
            kills = kill_events(live_db) if live_db is not None else 0
            reg.record_transition(
                transition(
                    cid, State.PAPER, State.LIVE_SMALL, "promote_to_live", msg, ramp_stage=0, timestamp=ts
                )
            )
            reg.add_deployment("promote", cid, str(live_target), "live", msg, size_multiplier=mult, ramp_stage=0,
                               kill_events_seen=kills, file_sha256=d.sha256, engine_config_id=d.engine_config_id,
                               timestamp=ts)  # fmt: skip
        return PromoteOutcome("promote", msg, mult, d, dry_run)
    if st not in LIVE_STATES:
        raise DeployRefused(
            f"config {cid[:12]} is {st.value if st else 'unknown'}: promotion starts from paper "
            "(paper gates) or continues the ramp of a live config"
        )
    deps = [r for r in reg.deployments(config_hash=cid) if r["action"] in ("promote", "ramp")]
    if not deps:
        raise DeployRefused(f"config {cid[:12]} is {st.value} but has no recorded live deployment")
    last = deps[-1]
    rs = RampState(
        st, int(last["ramp_stage"] or 0), float(last["timestamp"]), int(last["kill_events_seen"] or 0)
    )
    kills = kill_events(live_db) if live_db is not None else rs.kill_events_seen
    live_since = float(deps[0]["timestamp"])
    # the factory's nightly re-validation of this config since it went live (None: not run yet)
    reval = reg.latest_verdict(cid, since=live_since)
    reval_passed = None if reval is None else reval[1] == "validated"
    if live_db is not None:
        stats = live_stats(live_db, int(live_since * 1000), int(ts * 1000), th)
    else:  # no trading record to judge: only the age and the re-validation
        stats = LiveStats(None, 0, 0.0, None, max(0.0, (ts - live_since) / 86_400))
    rot = rotation_triggers(dataclasses.replace(stats, revalidation_passed=reval_passed), th)
    dec = ramp_step(rs, ts, kills, rot, th)
    if dec.action == "hold":
        return PromoteOutcome("hold", dec.reason, dec.size_multiplier, None, dry_run)
    if dec.action == "pause":
        msg = f"paused: {dec.reason}"
        if not dry_run:
            if kill_file is not None:
                write_text_atomic(kill_file, "close_only\n")
                msg += f"; kill file {kill_file} set to close_only"
            else:
                msg += "; no --kill-file given: stop the live daemon's entries by hand"
            reg.record_transition(transition(cid, st, State.PAUSED, "live_ramp", msg, timestamp=ts))
            reg.add_deployment("pause", cid, str(live_target), "live", msg, ramp_stage=rs.stage,
                               kill_events_seen=kills, timestamp=ts)  # fmt: skip
        return PromoteOutcome("pause", msg, None, None, dry_run)
    assert dec.transition is not None
    header = f"# live ramp stage {dec.next.stage} ({dec.size_multiplier:.0%}) by the strategy factory: config_id {cid}\n"
    doc = with_size_multiplier(config_doc(reg, cid), dec.size_multiplier)
    d = deploy_text(live_target, render(doc, header), "live", dry_run=dry_run)
    if not dry_run:
        a, b = dec.transition
        tr = transition(cid, a, b, "live_ramp", dec.reason, ramp_stage=dec.next.stage, timestamp=ts)
        reg.record_transition(tr)
        reg.add_deployment("ramp", cid, str(live_target), "live", f"{dec.action}: {dec.reason}",
                           size_multiplier=dec.size_multiplier, ramp_stage=dec.next.stage, kill_events_seen=kills,
                           file_sha256=d.sha256, engine_config_id=d.engine_config_id, timestamp=ts)  # fmt: skip
    return PromoteOutcome(dec.action, dec.reason, dec.size_multiplier, d, dry_run)


def _refuse_paper_target(reg: Registry, live_target: Path) -> None:
    """The live YAML must not be a file paper deployments write: a later paper deploy would then
    change what trades real money (and the ramp would change paper)."""
    want = live_target.resolve()
    for r in reg.deployments():
        if r["mode"] == "paper" and Path(r["target"]).resolve() == want:
            raise DeployRefused(
                f"{live_target} is the paper daemon's strategy YAML (paper deployments write it); "
                "give the live daemon its own file (AI_QUANT_STRATEGY_YAML in live.env, "
                "e.g. $AI_QUANT_DATA_DIR/strategy_live.yaml)"
            )


def live_on_target(reg: Registry, live_target: Path) -> list[str]:
    """The live configs (live_small / live_full) whose last promote/ramp wrote `live_target`:
    what a scheduled ramp tick (`promote_to_live.py --ramp-all`) advances."""
    want = live_target.resolve()
    out = []
    for cid in reg.in_states(LIVE_STATES):
        deps = [r for r in reg.deployments(config_hash=cid) if r["action"] in ("promote", "ramp")]
        if deps and Path(deps[-1]["target"]).resolve() == want:
            out.append(cid)
    return out


# --------------------------------------------------------------------------- rollback

_HEADER_ID = re.compile(r"config_id ([0-9a-f]{16,64})")


@dataclass(frozen=True)
class Rollback:
    target: Path
    restored_config_id: str | None  # from the restored file's header, when it has one
    paused: str | None  # config moved to paused
    kept_as: Path | None  # the replaced file, kept for inspection
    dry_run: bool


def rollback(
    target: Path,
    mode: str,
    reg: Registry | None,
    *,
    reason: str,
    dry_run: bool = False,
    now: float | None = None,
) -> Rollback:
    lg = last_good_path(target)
    if not lg.is_file():
        raise DeployRefused(f"no last good copy of {target} ({lg} does not exist): nothing to roll back to")
    text = lg.read_text()
    validate_text(text, mode, target.name)
    if target.exists() and target.read_text() == text:
        raise DeployRefused(f"{target} already equals its last good copy")
    m = _HEADER_ID.search(text.split("\n", 1)[0])
    restored = m.group(1) if m else None
    ts = time.time() if now is None else now
    paused: str | None = None
    current: str | None = None
    if reg is not None:
        deps = [d for d in reg.deployments(target=str(target)) if d["config_hash"]]
        current = str(deps[-1]["config_hash"]) if deps else None
    kept = target.with_name(target.name + ".rolled_back") if target.exists() else None
    if dry_run:
        return Rollback(target, restored, current, kept, True)
    if kept is not None:
        write_text_atomic(kept, target.read_text())
    write_text_atomic(target, text)
    if reg is not None:
        if current is not None and reg.state(current) in (State.PAPER, *LIVE_STATES):
            st = reg.state(current)
            assert st is not None
            reg.record_transition(
                transition(
                    current, st, State.PAUSED, "rollback", f"rolled back to last good: {reason}", timestamp=ts
                )
            )
            paused = current
        reg.add_deployment("rollback", restored, str(target), mode, reason, timestamp=ts)
    return Rollback(target, restored, paused, kept, False)


def load_report(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise DeployRefused(f"factory report {path} not found") from exc
    except ValueError as exc:
        raise DeployRefused(f"factory report {path} is not JSON: {exc}") from exc


def run_cli(fn: Any, tool: str) -> int:
    """Run a tool body; a refusal or bad input exits 2 with one clear line on stderr."""
    import sys

    from engine.config.errors import ConfigError

    try:
        return int(fn())
    except (DeployRefused, KeyError, FileNotFoundError, ConfigError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"{tool}: refused: {msg}", file=sys.stderr)
        return 2
