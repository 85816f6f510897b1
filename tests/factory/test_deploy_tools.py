"""The deployment tools as real processes: paper deploy (validated, atomic, last good kept, hot
reload by the daemon's StrategyManager), deploy from a factory report, promotion gated on a real
paper trading DB and the live ramp on an accelerated clock, rollback; every refusal exits 2 with
the reason and writes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.config import load_config
from engine.strategy_manager import StrategyManager
from engine.trading_db import TradeRow, TradingDB
from strategy.factory.backtester import REPO
from strategy.factory.lifecycle import MetricsSnapshot, State, transition
from strategy.factory.registry import Registry
from strategy.factory.thresholds import THRESHOLDS

BASE = {"global": {"strategy": "mei_alpha_v1", "engine": {"interval": "5m"}}}
T0 = 1_750_000_000.0  # accelerated clock origin (epoch s)
H = 3600.0


def _cid(overrides: dict[str, float]) -> str:
    return hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()


def _add(reg: Registry, overrides: dict[str, float], to: State | None = State.VALIDATED) -> str:
    cid = _cid(overrides)
    reg.add_config(cid, {"base": BASE, "overrides": overrides}, "run_t")
    if to is not None:
        reg.record_transition(
            transition(
                cid, State.CANDIDATE, to, "factory:run_t", "test", MetricsSnapshot(), timestamp=T0 - 10 * H
            )
        )
    return cid


def tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / f"{name}.py"), *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip


@pytest.fixture
def reg_path(tmp_path: Path) -> Path:
    p = tmp_path / "reg.sqlite"
    Registry(p).close()
    return p


def test_every_tool_has_help() -> None:
    for t in ("paper_deploy", "deploy_sweep", "promote_to_live", "rollback_to_last_good"):
        p = tool(t, "--help")
        assert p.returncode == 0 and "--dry-run" in p.stdout, t


def test_paper_deploy_writes_validated_yaml_the_daemon_reloads(reg_path: Path, tmp_path: Path) -> None:
    with Registry(reg_path) as reg:
        a = _add(reg, {"trade.sl_atr_mult": 2.0, "indicators.ema_fast_window": 8.0})
        b = _add(reg, {"trade.sl_atr_mult": 3.0})
        rej = _add(reg, {"trade.sl_atr_mult": 1.5}, State.RETIRED)
    target = tmp_path / "paper" / "strategy_overrides.yaml"
    # dry run: shows the YAML, writes nothing, changes nothing
    p = tool("paper_deploy", "--config-id", a[:10], "--target", target, "--registry", reg_path, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "sl_atr_mult: 2.0" in p.stdout and not target.exists()
    with Registry(reg_path) as reg:
        assert reg.state(a) is State.VALIDATED and reg.deployments() == []
    # the real deploy
    p = tool("paper_deploy", "--config-id", a[:10], "--target", target, "--registry", reg_path)
    assert p.returncode == 0, p.stderr
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode & (stat.S_IWGRP | stat.S_IWOTH) == 0
    assert sorted(x.name for x in target.parent.iterdir()) == [
        target.name
    ]  # no temp file, nothing to keep yet
    cfg = load_config(target, mode="paper")
    assert cfg.merged["trade"]["sl_atr_mult"] == 2.0 and cfg.merged["indicators"]["ema_fast_window"] == 8
    sm = StrategyManager(target, mode="paper")
    first_id = sm.config_id
    # a second validated config replaces it: the first is kept as last good, the daemon reloads
    p = tool("paper_deploy", "--config-id", b[:10], "--target", target, "--registry", reg_path)
    assert p.returncode == 0, p.stderr
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # coarse mtime clocks
    out = sm.poll(["BTC"])
    assert out.applied and sm.config_id != first_id and sm.merged()["trade"]["sl_atr_mult"] == 3.0
    assert load_config(target.with_name(target.name + ".last_good")).config_id == first_id
    with Registry(reg_path) as reg:
        assert reg.state(a) is State.PAPER and reg.state(b) is State.PAPER
        deps = reg.deployments(target=str(target))
        assert [(d["action"], d["config_hash"]) for d in deps] == [("paper_deploy", a), ("paper_deploy", b)]
        assert deps[1]["engine_config_id"] == sm.config_id
    # refusals: a retired config, an unknown id, a too-short id; nothing written
    before = target.read_bytes()
    for args, needle in (((rej[:10],), "only a validated config"), (("f" * 12,), "no config"),
                         (("abc",), "too short")):  # fmt: skip
        p = tool("paper_deploy", "--config-id", *args, "--target", target, "--registry", reg_path)
        assert p.returncode == 2 and needle in p.stderr, p.stderr
    assert target.read_bytes() == before


def test_paper_deploy_refuses_a_config_the_daemon_would_reject(reg_path: Path, tmp_path: Path) -> None:
    with Registry(reg_path) as reg:
        bad = _add(reg, {"trade.sl_atr_mult": -1.0})
    target = tmp_path / "s.yaml"
    p = tool("paper_deploy", "--config-id", bad[:12], "--target", target, "--registry", reg_path)
    assert p.returncode == 2 and "does not validate" in p.stderr and "sl_atr_mult" in p.stderr
    assert not target.exists()
    with Registry(reg_path) as reg:
        assert reg.state(bad) is State.VALIDATED  # no transition on a refusal


def test_deploy_sweep_from_a_factory_report(reg_path: Path, tmp_path: Path) -> None:
    with Registry(reg_path) as reg:
        good = _add(reg, {"trade.tp_atr_mult": 4.0})
        bad = _add(reg, {"trade.tp_atr_mult": 2.0}, State.RETIRED)
    report = {
        "run": {"run_id": "r42"},
        "promoted": {"config_id": good, "lane": "growth"},
        "candidates": [
            {"lane": "efficient", "config_id": bad, "verdict": "rejected", "reasons": ["dsr: DSR 0.12"]},
            {"lane": "growth", "config_id": good, "verdict": "validated", "reasons": []},
        ],
    }
    rp = tmp_path / "report.json"
    rp.write_text(json.dumps(report))
    target = tmp_path / "paper.yaml"
    p = tool(
        "deploy_sweep", "--report", rp, "--config-id", bad[:12], "--target", target, "--registry", reg_path
    )
    assert p.returncode == 2 and "rejected by run r42" in p.stderr and "dsr: DSR 0.12" in p.stderr
    p = tool(
        "deploy_sweep", "--report", rp, "--lane", "efficient", "--target", target, "--registry", reg_path
    )
    assert p.returncode == 2 and "no validated candidate in lane" in p.stderr
    assert not target.exists()
    p = tool("deploy_sweep", "--report", rp, "--target", target, "--registry", reg_path)
    assert p.returncode == 0, p.stderr
    assert good in target.read_text().splitlines()[0]
    with Registry(reg_path) as reg:
        assert reg.state(good) is State.PAPER
        assert reg.transitions(good)[-1]["trigger"] == "deploy_sweep:r42"


def _paper_db(path: Path, start_ms: int, wins: int, losses: int, kill: bool = False) -> None:
    db = TradingDB(path, mode="paper")
    bal, t = 10_000.0, start_ms
    for i in range(wins + losses):
        pnl = 30.0 if i < wins else -20.0
        t += 600_000
        db.insert_trade(
            TradeRow(t, "BTC", "LONG", "OPEN", 100.0, 1.0, 100.0, f"h{i}", 1, fee_usd=0.01, balance=bal)
        )
        bal += pnl
        t += 600_000
        db.insert_trade(TradeRow(t, "BTC", "LONG", "CLOSE", 100.0, 1.0, 100.0, f"h{i}", 2, pnl=pnl, fee_usd=0.01,
                                 balance=bal))  # fmt: skip
    if kill:
        db.audit("RISK_KILL_SWITCH", level="WARNING", ts_ms=t, data={"from": "off", "to": "close_only"})
    db.close()


def _size(p: Path) -> float:
    return float(yaml.safe_load(p.read_text())["global"]["trade"]["size_multiplier"])


def test_promotion_gates_and_live_ramp_on_an_accelerated_clock(reg_path: Path, tmp_path: Path) -> None:
    with Registry(reg_path) as reg:
        cid = _add(reg, {"trade.sl_atr_mult": 2.5})
    paper_yaml, live_yaml = tmp_path / "paper.yaml", tmp_path / "live.yaml"
    kill_file = tmp_path / "kill"
    assert tool("paper_deploy", "--config-id", cid[:12], "--target", paper_yaml, "--registry", reg_path,
                ).returncode == 0  # fmt: skip
    with Registry(reg_path) as reg:
        paper_since = reg.transitions(cid)[-1]["timestamp"]
    since_ms = int(paper_since * 1000)
    now = paper_since + 30 * H

    def promote(*extra: str | Path, at: float) -> subprocess.CompletedProcess[str]:
        return tool("promote_to_live", "--config-id", cid[:12], "--live-config", live_yaml, "--registry", reg_path,
                    "--now", str(at), *extra)  # fmt: skip

    # a poor paper record: PF 0.9 (6 x 30 vs 10 x 20 ... ) -> refused with the gate named
    weak = tmp_path / "weak.db"
    _paper_db(weak, since_ms, wins=6, losses=10)
    p = promote("--paper-db", weak, at=now)
    assert p.returncode == 2 and "gate2: PF" in p.stderr, p.stderr
    assert not live_yaml.exists()
    # a paper record with a kill-switch event -> refused
    killed = tmp_path / "killed.db"
    _paper_db(killed, since_ms, wins=20, losses=5, kill=True)
    p = promote("--paper-db", killed, at=now)
    assert p.returncode == 2 and "kill-switch" in p.stderr
    # a good record: 25 closed trades, PF 6 -> live_small at the first ramp stage
    good = tmp_path / "good.db"
    _paper_db(good, since_ms, wins=20, losses=5)
    assert promote("--paper-db", good, "--dry-run", at=now).returncode == 0 and not live_yaml.exists()
    p = promote("--paper-db", good, at=now)
    assert p.returncode == 0, p.stderr
    assert _size(live_yaml) == THRESHOLDS.ramp_stages[0]
    assert load_config(live_yaml, mode="live").merged["trade"]["size_multiplier"] == 0.25
    sm = StrategyManager(live_yaml, mode="live")
    live_db = tmp_path / "live.db"
    _paper_db(live_db, int(now * 1000), wins=3, losses=1)

    def tick(at: float) -> str:
        # what ai-quant-ramp.timer runs: every live config whose ramp writes this YAML
        p = tool("promote_to_live", "--ramp-all", "--live-config", live_yaml, "--registry", reg_path,
                 "--live-db", live_db, "--kill-file", kill_file, "--now", str(at))  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert p.stdout.count("\n") == 1 and cid[:12] in p.stdout, p.stdout
        return p.stdout.split()[0]

    other = tool("promote_to_live", "--ramp-all", "--live-config", tmp_path / "other.yaml", "--registry", reg_path,
                 "--now", str(now + 1))  # fmt: skip
    assert (
        other.returncode == 0 and "nothing to do" in other.stdout and not (tmp_path / "other.yaml").exists()
    )

    hold = THRESHOLDS.ramp_stage_hours * H
    assert tick(now + 1 * H) == "hold" and _size(live_yaml) == 0.25
    assert tick(now + hold + 1) == "advance" and _size(live_yaml) == 0.5
    st = live_yaml.stat()
    os.utime(live_yaml, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert sm.poll(["BTC"]).applied and sm.merged()["trade"]["size_multiplier"] == 0.5
    # a kill event in the live DB steps down one stage (the clock restarts)
    db = TradingDB(live_db, mode="live")
    db.audit("RISK_KILL_SWITCH", level="WARNING", ts_ms=int((now + hold + 2 * H) * 1000),
             data={"from": "off", "to": "close_only"})  # fmt: skip
    db.close()
    assert tick(now + hold + 3 * H) == "step_down" and _size(live_yaml) == 0.25
    t = now + hold + 3 * H
    assert tick(t + hold + 1) == "advance" and _size(live_yaml) == 0.5
    assert tick(t + 2 * hold + 2) == "complete" and _size(live_yaml) == 1.0
    with Registry(reg_path) as reg:
        assert reg.state(cid) is State.LIVE_FULL
        path = [(x["from_state"], x["to_state"], x["ramp_stage"]) for x in reg.transitions(cid)]
    assert path[-5:] == [("paper", "live_small", 0), ("live_small", "live_small", 1),
                         ("live_small", "live_small", 0), ("live_small", "live_small", 1),
                         ("live_small", "live_full", 2)]  # fmt: skip
    # age past the rotation limit pauses and sets the kill file
    assert tick(now + (THRESHOLDS.rotation_max_age_days + 1) * 86_400) == "pause"
    assert kill_file.read_text().strip() == "close_only"
    with Registry(reg_path) as reg:
        assert reg.state(cid) is State.PAUSED
    p = promote("--live-db", live_db, at=now + 40 * 86_400)
    assert p.returncode == 2 and "is paused" in p.stderr
    assert "nothing to do" in tool("promote_to_live", "--ramp-all", "--live-config", live_yaml, "--registry",
                                   reg_path, "--now", str(now + 40 * 86_400)).stdout  # fmt: skip


def test_rollback_restores_the_last_good_copy(reg_path: Path, tmp_path: Path) -> None:
    with Registry(reg_path) as reg:
        a = _add(reg, {"trade.sl_atr_mult": 2.0})
        b = _add(reg, {"trade.sl_atr_mult": 3.5})
    target = tmp_path / "s.yaml"
    p = tool("rollback_to_last_good", "--target", target, "--registry", reg_path)
    assert p.returncode == 2 and "no last good copy" in p.stderr
    for c in (a, b):
        assert (
            tool("paper_deploy", "--config-id", c[:12], "--target", target, "--registry", reg_path).returncode
            == 0
        )
    deployed_b = target.read_text()
    p = tool("rollback_to_last_good", "--target", target, "--registry", reg_path, "--dry-run")
    assert p.returncode == 0 and target.read_text() == deployed_b
    p = tool("rollback_to_last_good", "--target", target, "--registry", reg_path, "--reason", "bad fills")
    assert p.returncode == 0, p.stderr
    assert (
        a in target.read_text().splitlines()[0] and load_config(target).merged["trade"]["sl_atr_mult"] == 2.0
    )
    assert target.with_name(target.name + ".rolled_back").read_text() == deployed_b
    with Registry(reg_path) as reg:
        assert reg.state(b) is State.PAUSED and "bad fills" in reg.transitions(b)[-1]["reason"]
        assert reg.deployments(target=str(target))[-1]["action"] == "rollback"
    p = tool("rollback_to_last_good", "--target", target, "--registry", reg_path)
    assert p.returncode == 2 and "already equals" in p.stderr


def test_a_failed_nightly_revalidation_pauses_the_live_config(reg_path: Path, tmp_path: Path) -> None:
    """The factory records a verdict on each live config every night; the next ramp tick pauses a
    config whose newest verdict since it went live is a rejection (a rotation trigger)."""
    with Registry(reg_path) as reg:
        cid = _add(reg, {"trade.sl_atr_mult": 3.0})
    live_yaml, kill_file, good = tmp_path / "live.yaml", tmp_path / "kill", tmp_path / "good.db"
    assert tool("paper_deploy", "--config-id", cid[:12], "--target", tmp_path / "paper.yaml",
                "--registry", reg_path).returncode == 0  # fmt: skip
    with Registry(reg_path) as reg:
        paper_since = reg.transitions(cid)[-1]["timestamp"]
    now = paper_since + 30 * H
    _paper_db(good, int(paper_since * 1000), wins=20, losses=5)

    def run(*extra: str | Path, at: float) -> subprocess.CompletedProcess[str]:
        return tool("promote_to_live", *extra, "--live-config", live_yaml, "--registry", reg_path,
                    "--kill-file", kill_file, "--now", str(at))  # fmt: skip

    shared = tool("promote_to_live", "--config-id", cid[:12], "--paper-db", good, "--live-config",
                  tmp_path / "paper.yaml", "--registry", reg_path, "--now", str(now))  # fmt: skip
    assert shared.returncode == 2 and "is the paper daemon's strategy YAML" in shared.stderr, shared.stderr
    assert run("--config-id", cid[:12], "--paper-db", good, at=now).returncode == 0
    assert run("--ramp-all", at=now + H).stdout.startswith("hold")  # no re-validation yet

    def verdict_at(run_id: str, v: str, at: float) -> None:
        with Registry(reg_path) as reg:
            reg.add_verdict(run_id, cid, "revalidation", v, [("trades", v == "validated", "test")])
            reg.conn.execute("UPDATE verdicts SET created_at=? WHERE run_id=?", (at, run_id))
            reg.conn.commit()

    verdict_at("night_before_live", "rejected", now - H)  # before it went live: not counted
    verdict_at("night1", "validated", now + 2 * H)
    assert run("--ramp-all", at=now + 3 * H).stdout.startswith("hold")
    verdict_at("night2", "rejected", now + 4 * H)
    p = run("--ramp-all", at=now + 5 * H)
    assert p.returncode == 0 and p.stdout.startswith("pause"), p.stdout
    assert "nightly re-validation failed" in p.stdout
    assert kill_file.read_text().strip() == "close_only"
    with Registry(reg_path) as reg:
        assert reg.state(cid) is State.PAUSED
        assert reg.latest_verdict(cid) == ("night2", "rejected", now + 4 * H)
