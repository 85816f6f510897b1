"""The daemon's services, each usable alone: config, env, candle and funding data, market data,
risk, paper trader, OMS and reconciler, trading DB, alerting (docs/architecture.md, "Layers")."""
