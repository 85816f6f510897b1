"""Synthetic L2 book around the replayed price, plus resting user orders."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .rules import round_price_down, round_price_up, tick_size


@dataclass(frozen=True)
class BookParams:
    spread_bps: Decimal = Decimal("1")  # best ask - best bid, in bps of the price
    level_step_bps: Decimal = Decimal("1")  # distance between synthetic levels
    levels: int = 20
    level_notional: Decimal = Decimal("25000")  # USD at the first level; grows with depth
    seed: int = 0


@dataclass(frozen=True)
class Level:
    px: Decimal
    sz: Decimal
    n: int


def _jitter(seed: int, coin: str, key: int, level: int) -> tuple[Decimal, int]:
    """Deterministic size factor in [0.5, 1.5) and an order count 1..6 for one level."""
    digest = hashlib.blake2b(f"{seed}:{coin}:{key}:{level}".encode(), digest_size=8).digest()
    x = int.from_bytes(digest, "big")
    return Decimal(500 + x % 1000) / Decimal(1000), 1 + (x >> 20) % 6


def synthetic_levels(
    coin: str, price: Decimal, sz_decimals: int, params: BookParams, key: int
) -> tuple[list[Level], list[Level]]:
    """Bids (best first) and asks (best first) around ``price``.

    ``key`` varies the deterministic size jitter (e.g. the replay bar index).
    """
    if price <= 0:
        return [], []
    half = price * params.spread_bps / Decimal(20000)
    best_bid = round_price_down(price - half, sz_decimals)
    best_ask = round_price_up(price + half, sz_decimals)
    tick = tick_size(price, sz_decimals)
    if best_ask <= best_bid:
        best_ask = best_bid + tick
    if best_bid >= price and best_bid - tick > 0:
        best_bid -= tick
    if best_ask <= price:
        best_ask += tick
    step = max(tick, price * params.level_step_bps / Decimal(10000))
    lot = Decimal(1).scaleb(-sz_decimals)
    bids: list[Level] = []
    asks: list[Level] = []
    for i in range(params.levels):
        notional = params.level_notional * (1 + Decimal(i) / 4)
        for side, out in ((0, bids), (1, asks)):
            factor, n = _jitter(params.seed, coin, key * 2 + side, i)
            if side == 0:
                px = round_price_down(best_bid - step * i, sz_decimals)
                if px <= 0:
                    continue
            else:
                px = round_price_up(best_ask + step * i, sz_decimals)
            sz = (notional * factor / px).quantize(lot, rounding=ROUND_DOWN)
            if sz < lot:
                sz = lot
            if out and out[-1].px == px:
                continue
            out.append(Level(px, sz, n))
    return bids, asks
