"""``/metrics`` in the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.state import MonitorState

KILL_STATES = ("off", "close_only", "halt_all", "hard", "unknown")


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x == x and abs(x) != float("inf") else None


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.declared: set[str] = set()

    def add(self, name: str, kind: str, help_: str, value: Any, **labels: str) -> None:
        x = _num(value)
        if x is None:
            return
        if name not in self.declared:
            self.declared.add(name)
            self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{lab}}} {x:.10g}" if lab else f"{name} {x:.10g}")


def render_metrics(snaps: Mapping[str, Mapping[str, Any]], state: MonitorState) -> str:
    o = _Out()
    o.add("aiq_monitor_up", "gauge", "1 while the monitor serves", 1)
    o.add("aiq_monitor_requests_total", "counter", "HTTP requests served by the monitor", state.requests)
    o.add("aiq_monitor_sse_clients", "gauge", "open /api/mids/stream connections", state.mids.subscribers)
    o.add("aiq_sidecar_connected", "gauge", "1 when the WS sidecar answers", int(state.mids.state.connected))
    o.add(
        "aiq_sidecar_mids_age_seconds", "gauge", "age of the newest mid from the sidecar", state.mids.age_s()
    )
    for mode, s in snaps.items():
        hb = s["heartbeat"]
        f = hb.get("fields", {})
        o.add("aiq_db_up", "gauge", "1 when the trading DB can be read", int(bool(s["db"]["ok"])), mode=mode)
        if not s["db"]["ok"]:
            continue
        o.add(
            "aiq_heartbeat_age_seconds",
            "gauge",
            "age of the daemon's newest heartbeat",
            hb.get("age_s"),
            mode=mode,
        )
        o.add(
            "aiq_heartbeat_stale",
            "gauge",
            "1 when the heartbeat is older than the limit",
            int(bool(hb.get("stale"))),
            mode=mode,
        )
        down = f.get("venue_down_since")
        o.add(
            "aiq_venue_unreachable",
            "gauge",
            "1 while the daemon's heartbeat says the venue is unreachable",
            None if down is None else int(down != "-"),
            mode=mode,
        )
        o.add(
            "aiq_loop_seconds",
            "gauge",
            "duration of the daemon's last loop",
            str(f.get("loop", "")).rstrip("s"),
            mode=mode,
        )
        o.add("aiq_loops_total", "counter", "loops run by the daemon", f.get("loops"), mode=mode)
        o.add("aiq_loop_errors_total", "counter", "failed daemon loops", f.get("errors"), mode=mode)
        o.add("aiq_open_positions", "gauge", "open positions", len(s["open_positions"]), mode=mode)
        o.add(
            "aiq_equity_usd",
            "gauge",
            "account equity (cash + unrealised PnL)",
            s["balances"]["equity"],
            mode=mode,
        )
        o.add("aiq_cash_usd", "gauge", "account cash balance", s["balances"]["cash"], mode=mode)
        o.add(
            "aiq_unrealized_pnl_usd",
            "gauge",
            "unrealised PnL of open positions",
            s["balances"]["unrealized_pnl"],
            mode=mode,
        )
        o.add(
            "aiq_drawdown_pct",
            "gauge",
            "equity below its peak, percent (<= 0)",
            s["drawdown"]["current_pct"],
            mode=mode,
        )
        o.add(
            "aiq_max_drawdown_pct",
            "gauge",
            "deepest drawdown seen, percent (<= 0)",
            s["drawdown"]["max_pct"],
            mode=mode,
        )
        o.add(
            "aiq_daily_net_pnl_usd",
            "gauge",
            "realised PnL minus fees, UTC day of the newest trade",
            s["daily"].get("net"),
            mode=mode,
        )
        kill = s["kill"]["state"] if s["kill"]["state"] in KILL_STATES else "unknown"
        for k in KILL_STATES:
            o.add(
                "aiq_kill_switch",
                "gauge",
                "1 for the kill-switch state in force",
                int(k == kill),
                mode=mode,
                state=k,
            )
        o.add("aiq_monitor_warnings", "gauge", "warnings the page shows", len(s["warnings"]), mode=mode)
    return "\n".join(o.lines) + "\n"


__all__ = ["render_metrics"]
