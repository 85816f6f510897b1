"""Which symbols the daemon trades: AI_QUANT_SYMBOLS or the venue's top by volume, less the
symbols the venue does not list and the config's ``watchlist_exclude``. None left is an error
whose one line names the symbols asked for and why each was dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence

log = logging.getLogger("daemon.loop")


class WatchlistEmpty(ValueError):
    """No symbol to trade: the message names the symbols asked for and why each was dropped."""


def resolve_watchlist(
    symbols: Sequence[str] | None,
    top_n: int,
    top_by_volume: Callable[[int, set[str]], list[str]],
    listed: Collection[str],
    exclude: set[str],
) -> list[str]:
    """``symbols`` (None or empty: the venue's ``top_n`` by volume) that ``listed`` holds, less ``exclude``."""
    wanted = list(symbols) if symbols else top_by_volume(top_n, exclude)
    missing = [s for s in wanted if s not in listed]
    if missing:
        log.warning("not listed by the venue, skipped: %s", ",".join(missing))
    out = [s for s in wanted if s in listed and s not in exclude]
    if not out:
        raise WatchlistEmpty(_why_empty(wanted, missing, exclude, symbols, top_n, listed))
    return out


def _why_empty(
    wanted: Sequence[str],
    missing: Sequence[str],
    exclude: set[str],
    symbols: Sequence[str] | None,
    top_n: int,
    listed_assets: Collection[str],
) -> str:
    listed = sorted(listed_assets)
    if not wanted:
        return "the watchlist is empty: the venue lists no symbol"
    if not symbols:
        return f"the watchlist is empty: the venue's top {top_n} by volume are all in watchlist_exclude"
    why = []
    if missing:
        upper = {s.upper(): s for s in listed}
        hint = [upper[m.upper()] for m in missing if m.upper() in upper]
        sample = ",".join(hint) if hint else ",".join(listed[:8]) + (",..." if len(listed) > 8 else "")
        why.append(
            f"{','.join(missing)} not listed by the venue (names are case-sensitive; "
            + (f"did you mean {sample}?)" if hint else f"it lists {sample})")
        )
    if set(wanted) & exclude:
        why.append(f"{','.join(s for s in wanted if s in exclude)} excluded by watchlist_exclude")
    return f"the watchlist is empty: AI_QUANT_SYMBOLS={','.join(wanted)}: " + "; ".join(why)


__all__ = ["WatchlistEmpty", "resolve_watchlist"]
