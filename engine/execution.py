"""The engine's execution seam: where a kernel intent that passed the risk manager becomes fills.

``UnifiedEngine`` (daemon/loop.py) runs the same loop in every mode and talks to one of:

* :class:`PaperExecution` (paper): fills at the BBO or mid +- slippage from the PaperTrader; the
  paper account is the account.
* ``live.execution.LiveExecution`` (dry_live, live): the durable OMS, the broker adapter and the
  official-SDK executor; the venue's account is the account, fills come back from the venue.

Both return :class:`ExecResult` values holding :class:`~exchange.model.Fill` records
(the generic fill record the engine books: one per venue fill), and expose the account as the
risk manager and the kernel's sizing see it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.paper_trader import FillRejected, PaperTrader
from exchange.model import Fill, Order, Position, Quote


@dataclass
class ExecResult:
    """What one order came to. ``status``: ``filled``, ``would`` (dry_live), ``rejected``,
    ``blocked`` (the live OMS refused it, e.g. an unexplained reconcile mismatch), ``pending``
    (sent, no fill yet) or ``duplicate`` (a decision already recorded: not sent again)."""

    status: str
    fills: list[Fill] = field(default_factory=list)
    reason: str = ""
    oms_intent_id: str | None = None
    fill_ids: list[int] = field(default_factory=list)  # live: the oms_fills rows behind ``fills``


@dataclass(frozen=True)
class PendingFills:
    """Venue fills of one order that the kernel has not absorbed yet (adopted late, or after a
    restart). ``kernel_intent_id``/``confidence``/``leverage`` come from the recorded intent."""

    oms_intent_id: str
    fills: tuple[Fill, ...]
    fill_ids: tuple[int, ...]


class Execution(Protocol):
    mode: str
    #: kv key of the account snapshot committed with the kernel state each loop
    state_key: str
    #: True when this backend books funding itself (paper); the venue does it in live
    simulates_funding: bool

    @property
    def positions(self) -> Mapping[str, Position]: ...
    def initial_cash(self) -> float: ...
    def equity(self, mids: Mapping[str, float]) -> float: ...
    def total_notional(self, mids: Mapping[str, float]) -> float: ...
    def total_margin(self) -> float: ...
    def cash(self) -> float: ...
    def begin_loop(self, now_ms: int) -> None: ...
    def operator_symbols(self) -> frozenset[str]: ...
    def flagged_symbols(self) -> frozenset[str]: ...
    def submit(self, order: Order, quote: Quote, now_ms: int, mids: Mapping[str, float]) -> ExecResult: ...
    def pending_fills(self, recorded: Any) -> list[PendingFills]: ...
    def committed(self, kernel_state: Callable[[], str], fill_ids: Sequence[int]) -> None: ...
    def apply_funding(self, symbol: str, rate: float, mark: float, ts_ms: int) -> float: ...
    def to_json(self) -> str: ...
    def load_json(self, text: str) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...
    def crash(self, point: str) -> None:
        """The process's crash hook (the crash harness SIGKILLs at a named point; else nothing)."""
        ...


class PaperExecution:
    """Paper fills from :class:`PaperTrader` (the behaviour of the paper daemon, unchanged)."""

    mode = "paper"
    state_key = "paper_account"
    simulates_funding = True

    def __init__(self, trader: PaperTrader) -> None:
        self.trader = trader
        self._start_balance = trader.balance

    @property
    def positions(self) -> Mapping[str, Position]:
        return self.trader.positions

    def initial_cash(self) -> float:
        return self._start_balance

    def equity(self, mids: Mapping[str, float]) -> float:
        return self.trader.equity(dict(mids))

    def total_notional(self, mids: Mapping[str, float]) -> float:
        return self.trader.total_notional(dict(mids))

    def total_margin(self) -> float:
        return self.trader.total_margin()

    def cash(self) -> float:
        return self.trader.balance

    def begin_loop(self, now_ms: int) -> None:
        return None

    def operator_symbols(self) -> frozenset[str]:
        return frozenset()  # operator-owned positions are a live-OMS notion (manual_trade.py)

    def flagged_symbols(self) -> frozenset[str]:
        return frozenset()  # the venue reconciliation is the live OMS's

    def submit(self, order: Order, quote: Quote, now_ms: int, mids: Mapping[str, float]) -> ExecResult:
        out = self.trader.execute(order, quote, now_ms, dict(mids))
        if isinstance(out, FillRejected):
            return ExecResult("rejected", reason=out.reason)
        return ExecResult("filled", [out])

    def pending_fills(self, recorded: Any) -> list[PendingFills]:
        return []  # paper fills are booked as they happen

    def committed(self, kernel_state: Callable[[], str], fill_ids: Sequence[int]) -> None:
        return None

    def apply_funding(self, symbol: str, rate: float, mark: float, ts_ms: int) -> float:
        return self.trader.apply_funding(symbol, rate, mark, ts_ms)

    def to_json(self) -> str:
        return self.trader.to_json()

    def load_json(self, text: str) -> None:
        self.trader.load_json(text)

    def reset(self) -> None:
        self.trader.balance, self.trader.positions = self._start_balance, {}

    def close(self) -> None:
        return None

    def crash(self, point: str) -> None:
        return None


__all__ = ["ExecResult", "Execution", "PaperExecution", "PendingFills"]
