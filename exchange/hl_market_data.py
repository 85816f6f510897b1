"""Hyperliquid's public market data behind :class:`exchange.venue.MarketData`.

Wraps the official SDK's ``Info`` (or anything with its methods) and turns its wire answers into
typed values: ``candleSnapshot`` into :class:`Bar`, ``allMids`` into floats, ``l2Book`` into the
best bid and ask, ``metaAndAssetCtxs`` into day volumes, ``exchangeStatus`` into the venue clock.
"""

from __future__ import annotations

from typing import Any

from hyperliquid.info import Info

from exchange.meta import Meta
from exchange.model import Bar
from exchange.venue_limits import WeightMeter


class HyperliquidMarketData:
    """:class:`exchange.venue.MarketData` over one SDK ``Info``."""

    def __init__(self, info: Any) -> None:
        self.info = info

    @classmethod
    def connect(
        cls, url: str, *, timeout: float = 10.0, meter: WeightMeter | None = None
    ) -> HyperliquidMarketData:
        """A REST-only ``Info`` on ``url`` (no WebSocket), its requests counted by ``meter``."""
        info = Info(url, skip_ws=True, timeout=timeout)
        return cls(meter.attach(info) if meter is not None else info)

    @property
    def base_url(self) -> str:
        return str(getattr(self.info, "base_url", "?"))

    def time_ms(self) -> int | None:
        st = self.info.post("/info", {"type": "exchangeStatus"})
        if isinstance(st, dict) and isinstance(st.get("time"), int):
            return int(st["time"])
        return None

    def candles(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Bar]:
        raw = self.info.candles_snapshot(symbol, interval, start_ms, end_ms)
        return [
            Bar(
                symbol, int(c["t"]), float(c["o"]), float(c["h"]), float(c["l"]), float(c["c"]), float(c["v"])
            )
            for c in raw
        ]

    def mids(self) -> dict[str, float]:
        return {s: float(p) for s, p in self.info.all_mids().items()}

    def top_of_book(self, symbol: str) -> tuple[float | None, float | None]:
        book = self.info.l2_snapshot(symbol)
        levels = book.get("levels") if isinstance(book, dict) else None
        if levels and levels[0] and levels[1]:
            return float(levels[0][0]["px"]), float(levels[1][0]["px"])
        return None, None

    def funding_history(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        raw = self.info.funding_history(symbol, start_ms, end_ms)
        return sorted((int(r["time"]), float(r["fundingRate"])) for r in raw)

    def day_volumes(self) -> list[tuple[str, float]]:
        meta, ctxs = self.info.meta_and_asset_ctxs()
        return [
            (asset["name"], float(ctx.get("dayNtlVlm") or 0.0))
            for asset, ctx in zip(meta["universe"], ctxs, strict=False)
            if not asset.get("isDelisted")
        ]

    def meta(self) -> Meta:
        return Meta.fetch(self.info)


__all__ = ["HyperliquidMarketData"]
