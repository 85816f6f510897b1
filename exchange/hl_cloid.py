"""Hyperliquid's client order id (``cloid``): ``0x`` and 16 bytes as 32 lower-case hex digits, the
only form the venue's ``cloid`` field takes (protocol doc, section 3.2: a 128-bit hex string).

Ours: an ASCII prefix (``aiq_``, so our orders are told from others' at the venue), then the first
bytes of sha256(intent id). Deterministic: the same intent gets the same cloid in every process, so
a restart finds an order sent before a crash by its cloid, and the cloids stored in an OMS file keep
matching. The OMS asks for it through the venue seam (:class:`exchange.venue.ClientOrderIds`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CLOID_PREFIX = b"aiq_"
CLOID_BYTES = 16


@dataclass(frozen=True, slots=True)
class HyperliquidClientIds:
    """Hyperliquid's :class:`~exchange.venue.ClientOrderIds`."""

    prefix: bytes = CLOID_PREFIX

    def __post_init__(self) -> None:
        if len(self.prefix) >= CLOID_BYTES:
            raise ValueError(f"cloid prefix must be shorter than {CLOID_BYTES} bytes")

    def for_intent(self, intent_id: str) -> str:
        """``0x`` + 16 bytes: the prefix, then the start of sha256(intent_id)."""
        digest = hashlib.sha256(intent_id.encode()).digest()
        return "0x" + (self.prefix + digest[: CLOID_BYTES - len(self.prefix)]).hex()

    def is_ours(self, cloid: str | None) -> bool:
        return bool(cloid) and str(cloid).lower().startswith("0x" + self.prefix.hex())


HYPERLIQUID_CLIENT_IDS = HyperliquidClientIds()

__all__ = ["CLOID_BYTES", "CLOID_PREFIX", "HYPERLIQUID_CLIENT_IDS", "HyperliquidClientIds"]
