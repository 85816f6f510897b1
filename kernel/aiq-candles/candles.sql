-- The candle table, the one copy for both languages: Rust compiles it in (aiq_candles::CANDLES_SQL),
-- Python reads it at import (exchange/candle_db.py, which also names mark_candles after it).
-- t is the open time in ms UTC, t_close the bar's last millisecond (Hyperliquid's T), n the trade count.
CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    t INTEGER NOT NULL,
    t_close INTEGER NOT NULL,
    o REAL,
    h REAL,
    l REAL,
    c REAL,
    v REAL,
    n INTEGER,
    updated_at TEXT,
    PRIMARY KEY (symbol, interval, t)
)
