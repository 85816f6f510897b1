"""Pre-flight check for dry_live and live: is this wallet, account and config fit to trade?

Run by the daemon at the start of dry_live and live (after the start-up reconcile, so fills of our
own orders missed while it was down are already adopted), and alone as ``tools/preflight.py``.
Every problem is one line; live refuses to trade while any is open (docs/live-trading.md).

Checks:

* **signer vs account**: the signing key is the account itself, or an approved API wallet of it
  (``extraAgents``). An agent key used as the account reads a zero balance; that shows up under
  margin with the fix spelled out.
* **margin**: the account holds value, and free margin (``withdrawable``) covers the venue's
  minimum order value unless positions already use it.
* **symbols**: every watchlist symbol is listed by the venue (its szDecimals and max leverage are
  reported).
* **leverage**: the highest leverage the config may use for a symbol (``trade.leverage`` and the
  confidence tiers) is within the venue's max leverage for it.
* **unknown orders and positions**: every open order carries a cloid or oid the OMS recorded, and
  every venue position equals the sum of the OMS fills that belong to its intents.

:func:`check` is pure; :func:`gather_venue` and :func:`read_oms` (or :func:`oms_facts` on an open
OMS) do the reading, the OMS's through its store's methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from engine.config.view import StrategyConfig, TradeConfig
from engine.oms_store import OmsStore
from exchange.venue import Execution, ExecutorError

MIN_ORDER_USD = Decimal(10)  # the venue's minimum order value (protocol reference section 5)


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # signer | margin | symbol | leverage | order | position | venue
    line: str


@dataclass(frozen=True, slots=True)
class VenueOrder:
    symbol: str
    oid: int
    cloid: str | None


@dataclass(frozen=True, slots=True)
class VenueFacts:
    """What the venue says about the account (``None`` where it could not be read)."""

    signer: str
    account: str
    api_wallets: tuple[str, ...] | None
    account_value: Decimal | None
    withdrawable: Decimal | None
    assets: Mapping[str, tuple[int, int]]  # symbol -> (szDecimals, maxLeverage)
    open_orders: tuple[VenueOrder, ...] | None
    positions: Mapping[str, Decimal] | None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OmsFacts:
    """What the OMS knows: the cloids and oids of its intents, and its positions by intent fills."""

    cloids: frozenset[str] = frozenset()
    oids: frozenset[int] = frozenset()
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    path: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    problems: tuple[Problem, ...]
    symbols: tuple[str, ...]  # one line per listed watchlist symbol

    @property
    def ok(self) -> bool:
        return not self.problems


def configured_leverage(trade: TradeConfig) -> tuple[float, str]:
    """The highest leverage the kernel may use for an entry, and the key that sets it (the first
    of equals)."""
    levels = (
        ("leverage", trade.leverage),
        ("leverage_low", trade.leverage_low),
        ("leverage_medium", trade.leverage_medium),
        ("leverage_high", trade.leverage_high),
    )
    key, lev = max(levels, key=lambda kv: kv[1])
    return float(lev), key


def check(
    venue: VenueFacts,
    oms: OmsFacts,
    watchlist: Sequence[str],
    trade_config: Mapping[str, TradeConfig],
) -> Report:
    """Every problem as one line. ``trade_config`` maps a symbol to its merged ``trade`` section."""
    problems: list[Problem] = [Problem("venue", e) for e in venue.errors]
    acct, signer = venue.account, venue.signer
    if signer != acct and venue.api_wallets is not None and signer not in venue.api_wallets:
        problems.append(Problem(
            "signer",
            f"signer {signer} is not an approved API wallet of account {acct}: approve it from the master "
            "account (Hyperliquid API page, or the SDK's Exchange.approve_agent) or fix account_address "
            "in the secrets file",
        ))  # fmt: skip
    if venue.account_value is not None and venue.account_value <= 0:
        hint = (
            "account_address must be the master account, not the API wallet"
            if signer != acct
            else "if this key is an API wallet, set account_address to the master account in the secrets file"
        )
        problems.append(Problem("margin", f"account {acct} has no margin (account value 0 USDC): {hint}"))
    elif (
        venue.withdrawable is not None
        and venue.withdrawable < MIN_ORDER_USD
        and not venue.positions  # positions hold the margin: exits need none
    ):
        problems.append(Problem(
            "margin",
            f"account {acct}: free margin {venue.withdrawable} USDC is below the venue's minimum order "
            f"value of {MIN_ORDER_USD} USDC",
        ))  # fmt: skip
    symbols: list[str] = []
    for sym in watchlist:
        listed = venue.assets.get(sym)
        if listed is None:
            problems.append(Problem("symbol", f"watchlist symbol {sym} is not listed by the venue"))
            continue
        sz_dec, max_lev = listed
        symbols.append(f"{sym}: szDecimals {sz_dec}, max leverage {max_lev}")
        trade = trade_config.get(sym)
        if trade is None:
            continue
        lev, key = configured_leverage(trade)
        if lev > max_lev:
            problems.append(Problem(
                "leverage",
                f"{sym}: configured trade.{key} {lev:g} exceeds the venue's max leverage {max_lev}",
            ))  # fmt: skip
    for order in venue.open_orders or ():
        known = (order.cloid is not None and order.cloid.lower() in oms.cloids) or order.oid in oms.oids
        if not known:
            problems.append(Problem(
                "order",
                f"open order {order.oid} on {order.symbol} (cloid {order.cloid or 'none'}) is not in the OMS: cancel it "
                "or wait for it to finish",
            ))  # fmt: skip
    if venue.positions is not None:
        for sym in sorted(set(venue.positions) | set(oms.positions)):
            v, ours = venue.positions.get(sym, Decimal(0)), oms.positions.get(sym, Decimal(0))
            if v != ours:
                problems.append(Problem(
                    "position",
                    f"position {sym} {v} on the venue, the OMS accounts for {ours}: close the difference or "
                    "restore the OMS file",
                ))  # fmt: skip
    return Report(tuple(problems), tuple(symbols))


def gather_venue(ex: Execution) -> VenueFacts:
    """Read the account through the executor; a failed read becomes a problem line, not an exception."""
    errors: list[str] = []

    def read(what: str, fn: Any) -> Any:
        try:
            return fn()
        except ExecutorError as exc:
            errors.append(f"cannot read {what} of account {ex.address} from {ex.base_url}: {exc}")
            return None

    wallets = read("the API wallets", ex.api_wallets) if ex.signer != ex.address else ()
    state = read("the balance and positions", ex.account)
    orders = read("the open orders", ex.open_orders)
    open_orders = None
    if orders is not None:
        open_orders = tuple(
            VenueOrder(str(o.get("coin")), int(o["oid"]), str(o["cloid"]).lower() if o.get("cloid") else None)
            for o in orders
        )
    return VenueFacts(
        signer=ex.signer,
        account=ex.address,
        api_wallets=None if wallets is None else tuple(wallets),
        account_value=None if state is None else state.account_value,
        withdrawable=None if state is None else state.withdrawable,
        assets={s: (a.sz_decimals, a.max_leverage) for s, a in ex.assets.items()},
        open_orders=open_orders,
        positions=None if state is None else {s: p.size for s, p in state.positions.items()},
        errors=tuple(errors),
    )


def read_oms(path: Path) -> OmsFacts:
    """The OMS file read-only (a running daemon keeps writing it); a missing or empty file knows
    nothing."""
    store = OmsStore.open_read_only(path)
    if store is None:
        return OmsFacts(path=str(path))
    try:
        return oms_facts(store)
    finally:
        store.close()


def oms_facts(oms: OmsStore) -> OmsFacts:
    """What an open OMS knows (the daemon's own, after its start-up reconcile)."""
    known = oms.known_orders()
    return OmsFacts(
        cloids=known.cloids, oids=known.oids, positions=oms.intent_positions(), path=str(oms.path)
    )


class StrategyConfigs(Protocol):
    """The merged config per symbol (engine.strategy_manager.StrategyManager)."""

    def model(self, symbol: str | None = None) -> StrategyConfig: ...


def trade_sections(strategy: StrategyConfigs, symbols: Iterable[str]) -> dict[str, TradeConfig]:
    """The merged ``trade`` section per symbol, typed."""
    return {s: strategy.model(s).trade for s in symbols}


def run(
    ex: Execution,
    oms: OmsFacts,
    watchlist: Sequence[str],
    trade_config: Mapping[str, TradeConfig],
) -> Report:
    return check(gather_venue(ex), oms, watchlist, trade_config)


__all__ = [
    "MIN_ORDER_USD",
    "OmsFacts",
    "Problem",
    "Report",
    "VenueFacts",
    "VenueOrder",
    "check",
    "configured_leverage",
    "gather_venue",
    "oms_facts",
    "read_oms",
    "run",
    "trade_sections",
]
