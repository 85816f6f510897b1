"""Local exchange: a protocol-faithful Hyperliquid venue for tests, demos and offline paper trading.

Run it with ``python -m exchange.sim`` (see docs/local-exchange.md). The official
``hyperliquid-python-sdk`` works against it unchanged; only the base URL differs.
"""

from __future__ import annotations

__all__ = ["__doc__"]
