"""Where the real market data is: ``$AI_QUANT_SHARED_DATA``, else ``../shared/data`` beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA") or ROOT.parent / "shared" / "data")
HL_FUTURES = SHARED_DATA / "hyperliquid" / "futures"
