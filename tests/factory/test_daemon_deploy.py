"""Deployment against a running paper daemon on the local exchange (real processes, 127.0.0.1):
paper_deploy hot-reloads the daemon; the promotion decision is the paper gates on the daemon's own
trading DB; the live ramp on an accelerated clock (--now) writes each size step into the YAML the
daemon watches (the paper daemon stands in for the live one: same YAML, hot reload, kill file and
audit seams) and steps down on the daemon's own kill-switch event."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from strategy.factory.lifecycle import State, paper_gates, transition
from strategy.factory.registry import Registry
from strategy.factory.thresholds import THRESHOLDS
from strategy.factory.track import kill_events, paper_stats
from tests.daemon.test_daemon_e2e import CONFIG, Daemon, venue, wait_for

from .test_deploy_tools import tool

pytestmark = pytest.mark.slow
__all__ = ["venue"]  # the module-scoped local exchange fixture
H = 3600.0


def _reloaded_to(d: Daemon, engine_id: str) -> bool:
    return d.heartbeat().get("config_id", "")[:12] == engine_id[:12]


def _reload_event(d: Daemon, engine_id: str) -> dict[str, object] | None:
    for (row,) in d.q("SELECT data_json FROM audit_events WHERE event='CONFIG_RELOADED' ORDER BY id DESC"):
        ev = json.loads(row)
        if str(ev.get("config_id", ""))[:12] == engine_id[:12]:
            return dict(ev)
    return None


def test_deploy_promote_and_ramp_against_a_running_paper_daemon(venue: str, tmp_path: Path) -> None:
    d = Daemon(venue, tmp_path / "daemon")
    reg_path = tmp_path / "reg.sqlite"
    base = yaml.safe_load(CONFIG)
    overrides = {"thresholds.entry.min_adx": 16.0, "trade.sl_atr_mult": 2.5}
    cid = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()
    with Registry(reg_path) as reg:
        reg.add_config(cid, {"base": base, "overrides": overrides}, "run_d")
        reg.record_transition(transition(cid, State.CANDIDATE, State.VALIDATED, "factory:run_d", "test"))
    with d.start():
        wait_for(lambda: d.loops() >= 2, 90, "two daemon loops")
        first = d.heartbeat()["config_id"]
        p = tool("paper_deploy", "--config-id", cid[:12], "--target", d.config, "--registry", reg_path)
        assert p.returncode == 0, p.stderr
        with Registry(reg_path) as reg:
            dep = reg.deployments(target=str(d.config))[-1]
            paper_ts = reg.transitions(cid)[-1]["timestamp"]
        wait_for(lambda: _reloaded_to(d, dep["engine_config_id"]), 30, "the daemon to hot-reload the deploy")
        assert dep["engine_config_id"][:12] != first[:12]
        ev = wait_for(
            lambda: _reload_event(d, dep["engine_config_id"]), 30, "the deploy's CONFIG_RELOADED audit"
        )
        assert "thresholds.entry.min_adx" in ev["changed"]
        wait_for(lambda: d.loops() >= 8, 60, "the daemon to trade on the deployed config")
        assert d.stop() == 0
    # promotion: the tool's decision equals the paper gates on the daemon's own DB (static now)
    now = paper_ts + 25 * H  # gate 1 by hours on the accelerated clock
    live_yaml = tmp_path / "live.yaml"
    ps = paper_stats(d.db_path, int(paper_ts * 1000), int(now * 1000))
    g = paper_gates(ps)
    p = tool("promote_to_live", "--config-id", cid[:12], "--live-config", live_yaml, "--paper-db", d.db_path,
             "--registry", reg_path, "--now", str(now))  # fmt: skip
    if g.passed:
        assert (
            p.returncode == 0
            and yaml.safe_load(live_yaml.read_text())["global"]["trade"]["size_multiplier"] == 0.25
        )
    else:
        assert p.returncode == 2 and not live_yaml.exists()
        assert all(r in p.stderr for r in g.reasons), (g.reasons, p.stderr)
        # given the promotion (the market decides gate 2 here), record it as the tool would
        with Registry(reg_path) as reg:
            reg.record_transition(transition(cid, State.PAPER, State.LIVE_SMALL, "test", "given", ramp_stage=0,
                                             timestamp=now))  # fmt: skip
            reg.add_deployment("promote", cid, str(d.config), "live", "given", size_multiplier=0.25, ramp_stage=0,
                               kill_events_seen=kill_events(d.db_path), timestamp=now)  # fmt: skip
    # the ramp, with the daemon's YAML as the target it watches and its DB as the live record
    hold = THRESHOLDS.ramp_stage_hours * H

    def tick(at: float) -> tuple[str, float | None]:
        p = tool("promote_to_live", "--config-id", cid[:12], "--live-config", d.config, "--live-db", d.db_path,
                 "--kill-file", d.kill_file, "--registry", reg_path, "--now", str(at))  # fmt: skip
        assert p.returncode == 0, p.stderr
        size = yaml.safe_load(d.config.read_text())["global"]["trade"].get("size_multiplier")
        return p.stdout.split()[0], size

    def engine_id() -> str:
        with Registry(reg_path) as reg:
            return str(reg.deployments(config_hash=cid)[-1]["engine_config_id"])

    seen = d.n("SELECT MAX(id) FROM runtime_logs")  # the first run's heartbeats are still in the DB
    with d.start():
        wait_for(lambda: d.n("SELECT COUNT(*) FROM runtime_logs WHERE id > ?", (seen,)) >= 2, 90,
                 "heartbeats of the restarted daemon")  # fmt: skip
        assert tick(now + 1 * H)[0] == "hold"
        assert tick(now + hold + 1) == ("advance", 0.5)
        wait_for(lambda: _reloaded_to(d, engine_id()), 30, "the daemon to load the 50% step")
        ev = wait_for(lambda: _reload_event(d, engine_id()), 30, "the CONFIG_RELOADED audit of the 50% step")
        assert ev["changed"] == ["trade.size_multiplier"], ev
        at50 = d.heartbeat()["config_id"]
        # the daemon's own kill-switch event steps the ramp down one stage
        d.kill_file.write_text("close_only\n")
        wait_for(lambda: d.n("SELECT COUNT(*) FROM audit_events WHERE event='RISK_KILL_SWITCH'"), 30,
                 "the daemon's kill-switch audit")  # fmt: skip
        assert tick(now + hold + 2 * H) == ("step_down", 0.25)
        wait_for(lambda: _reloaded_to(d, engine_id()), 30, "the daemon to load the 25% step")
        assert d.heartbeat()["config_id"] != at50
        # no new kill event: the stage is held again from the step down, then advances
        t = now + hold + 2 * H
        assert tick(t + hold / 2)[0] == "hold"
        assert tick(t + hold + 1) == ("advance", 0.5)
        wait_for(lambda: _reloaded_to(d, engine_id()), 30, "the daemon to load the 50% step again")
        d.alive()
        assert d.stop() == 0
    with Registry(reg_path) as reg:
        trail = [(x["to_state"], x["ramp_stage"]) for x in reg.transitions(cid)][-4:]
    assert trail == [("live_small", 0), ("live_small", 1), ("live_small", 0), ("live_small", 1)]
