"""The live order path above the broker adapter: the trader, the live execution backend and the
pre-flight check (docs/live-trading.md)."""
