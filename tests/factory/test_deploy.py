from __future__ import annotations

from pathlib import Path

import yaml

from engine.config.watcher import ConfigWatcher
from strategy.factory.deploy import overrides_to_doc, paper_deploy, set_size_multiplier
from strategy.factory.lifecycle import ramp_step, start_ramp


def test_overrides_to_doc_types() -> None:
    doc = overrides_to_doc(
        {"global": {"engine": {"interval": "5m"}}},
        {"trade.sl_atr_mult": 2.0, "indicators.ema_fast_window": 8.0, "trade.entry_min_confidence": 2.0},
        {"indicators": {"ema_fast_window": 12}},
    )
    g = doc["global"]
    assert g["trade"] == {"sl_atr_mult": 2.0, "entry_min_confidence": "high"}
    assert g["indicators"]["ema_fast_window"] == 8 and isinstance(g["indicators"]["ema_fast_window"], int)


def test_paper_deploy_atomic_and_hot_reload_with_ramp(tmp_path: Path) -> None:
    target = tmp_path / "paper" / "strategy_overrides.yaml"
    base = {"global": {"engine": {"interval": "5m"}}}
    paper_deploy(target, base, {"trade.sl_atr_mult": 2.0}, "cid", "run1")
    assert list(target.parent.iterdir()) == [target]  # no temp file left behind
    w = ConfigWatcher(target, mode="paper")
    # ramp: 25% on entering live_small, then 50% after a held stage
    t0 = 0.0
    rs = start_ramp(t0)
    seen = []
    for hours in (0.0, 24.0, 48.0):
        d = ramp_step(rs, t0 + hours * 3600, 0)
        rs = d.next
        set_size_multiplier(target, d.size_multiplier)
        assert yaml.safe_load(target.read_text())["global"]["trade"]["size_multiplier"] == d.size_multiplier
        # make the stamp differ even on coarse mtime clocks
        st = target.stat()
        import os

        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000 * (len(seen) + 1)))
        ev = w.poll()
        seen.append((d.action, d.size_multiplier, ev.status))
    assert [a for a, _, _ in seen] == ["hold", "advance", "complete"]
    assert [m for _, m, _ in seen] == [0.25, 0.5, 1.0]
    assert all(s == "reloaded" for _, _, s in seen), seen
