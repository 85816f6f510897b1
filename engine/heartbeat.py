"""The heartbeat line: one ``key=value`` summary of the daemon, logged every interval, written to
``runtime_logs`` and sent as the systemd STATUS. :func:`parse_heartbeat` reads it back.

The line begins with the daemon's state: ``engine ok.``, or ``venue unreachable since T.`` while
the venue does not answer (``venue_down_since=T`` among the pairs; ``-`` when it answers)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Heartbeat:
    mode: str
    loops: int
    errors: int
    symbols: int
    open_positions: int
    loop_s: float
    kill: str
    kill_reason: str
    strategy_mode: str
    config_id: str
    version: str
    equity: float = 0.0
    breadth_pct: float | None = None
    shadow_agreement: float | None = None
    slippage_median_bps: float | None = None
    data_source: str = ""
    venue_down_since: str = ""  # ISO UTC time of the current outage's first failure; "" when up

    def line(self) -> str:
        def opt(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        state = f"venue unreachable since {self.venue_down_since}" if self.venue_down_since else "engine ok"
        return (
            f"{state}. mode={self.mode} loops={self.loops} errors={self.errors} symbols={self.symbols}"
            f" open_pos={self.open_positions} loop={self.loop_s:.3f}s kill={self.kill}"
            f" kill_reason={_token(self.kill_reason)} strategy_mode={self.strategy_mode or '-'}"
            f" equity={self.equity:.2f} breadth={opt(self.breadth_pct, '.1f')}%"
            f" shadow_agree={opt(self.shadow_agreement, '.3f')} slip_median_bps={opt(self.slippage_median_bps, '.2f')}"
            f" data={self.data_source or '-'} venue_down_since={self.venue_down_since or '-'}"
            f" config_id={self.config_id[:12] or '-'} version={self.version}"
        )


def _token(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip()) or "-"


_PAIR = re.compile(r"(\w+)=(\S*)")


def parse_heartbeat(line: str) -> dict[str, str]:
    """The ``key=value`` pairs of a heartbeat line."""
    return dict(_PAIR.findall(line))


__all__ = ["Heartbeat", "parse_heartbeat"]
