"""The read-only monitor: a page and JSON API over the trading and candle DBs (docs/monitor.md)."""
