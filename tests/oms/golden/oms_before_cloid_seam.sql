-- An OMS file written by main at 90670c7, before the cloid format moved behind the venue seam
-- (engine/oms_model.cloid_for): three intents through LiveOms.create_intent, one acked and filled.
-- sqlite3 iterdump of it; tests/oms/test_client_ids.py restores it and restarts the OMS on it.
BEGIN TRANSACTION;
CREATE TABLE oms_fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    intent_id TEXT,
    order_id INTEGER,
    cloid TEXT,
    action TEXT,
    side TEXT NOT NULL,
    pos_type TEXT,
    price TEXT NOT NULL,
    size TEXT NOT NULL,
    notional TEXT NOT NULL,
    fee_usd TEXT NOT NULL,
    fee_token TEXT,
    pnl_usd TEXT,
    fill_hash TEXT NOT NULL,
    fill_tid INTEGER NOT NULL,
    matched_via TEXT,
    match_attempts INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER NOT NULL,
    alerted INTEGER NOT NULL DEFAULT 0,
    kernel_applied INTEGER NOT NULL DEFAULT 0,
    source TEXT,
    raw_json TEXT,
    UNIQUE(fill_hash, fill_tid)
);
INSERT INTO "oms_fills" VALUES(1,1700000000100,'ETH','e50c8411280a38b3801518447f7370ef',101,'0x6169715fc276b133a45beb19cff79253','OPEN','BUY','Open Long','2000.5','0.05','100.025','0.05','USDC','0','0xabc',7,'oid',1,1700000000000,0,0,'poll','{"coin": "ETH", "px": "2000.5", "sz": "0.05", "side": "B", "time": 1700000000100, "fee": "0.05", "feeToken": "USDC", "closedPnl": "0", "hash": "0xabc", "tid": 7, "oid": 101, "cloid": "0x6169715fc276b133a45beb19cff79253", "dir": "Open Long"}');
CREATE TABLE oms_intents (
    intent_id TEXT PRIMARY KEY,
    created_ts_ms INTEGER NOT NULL,
    sent_ts_ms INTEGER,
    updated_ts_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    action TEXT NOT NULL,
    side TEXT NOT NULL,
    requested_size TEXT NOT NULL,
    requested_notional TEXT,
    limit_px TEXT,
    reduce_only INTEGER NOT NULL DEFAULT 0,
    leverage TEXT,
    decision_ts_ms INTEGER NOT NULL,
    kernel_intent_id INTEGER,
    reason TEXT,
    reason_code TEXT,
    confidence TEXT,
    status TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL UNIQUE,
    exchange_order_id INTEGER,
    filled_size TEXT NOT NULL DEFAULT '0',
    venue_total TEXT,
    send_attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    meta_json TEXT
);
INSERT INTO "oms_intents" VALUES('e50c8411280a38b3801518447f7370ef',1700000000000,NULL,1700000000000,'ETH','OPEN','BUY','0.05',NULL,NULL,0,NULL,1700000000000,NULL,'t','t','medium','FILLED','OPEN:ETH:BUY:1700000000000','0x6169715fc276b133a45beb19cff79253',101,'0.05','0.05',0,NULL,'{"venue_done":1}');
INSERT INTO "oms_intents" VALUES('a2b9efa81ba03b330c2fa8895d2020de',1700000000000,NULL,1700000000000,'BTC','OPEN','SELL','0.001',NULL,NULL,0,NULL,1700000300000,NULL,'t','t','medium','NEW','OPEN:BTC:SELL:1700000300000','0x6169715f6fb81eaaf90b4e5ae7caaa46',NULL,'0',NULL,0,NULL,NULL);
INSERT INTO "oms_intents" VALUES('8134a248e08ceaed6e1bed8e52844fed',1700000000000,NULL,1700000000000,'SOL','CLOSE','BUY','2',NULL,NULL,0,NULL,1700000600000,NULL,'t','t','medium','NEW','CLOSE:SOL:BUY:1700000600000','0x6169715f5700fe68e16e9e40c4d8d5f8',NULL,'0',NULL,0,NULL,NULL);
CREATE TABLE oms_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE oms_open_orders (
    exchange_order_id INTEGER PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price TEXT,
    orig_size TEXT,
    remaining_size TEXT,
    reduce_only INTEGER,
    cloid TEXT,
    intent_id TEXT,
    venue_ts_ms INTEGER,
    raw_json TEXT
);
CREATE TABLE oms_orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    intent_id TEXT NOT NULL,
    created_ts_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    requested_size TEXT NOT NULL,
    limit_px TEXT,
    reduce_only INTEGER NOT NULL,
    client_order_id TEXT NOT NULL,
    exchange_order_id INTEGER,
    status TEXT NOT NULL,
    raw_json TEXT
);
INSERT INTO "oms_orders" VALUES(1,'e50c8411280a38b3801518447f7370ef',1700000000000,'ETH','BUY','Ioc','0.05',NULL,0,'0x6169715fc276b133a45beb19cff79253',101,'filled','{}');
CREATE TABLE oms_reconcile_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT,
    intent_id TEXT,
    client_order_id TEXT,
    exchange_order_id INTEGER,
    result TEXT,
    detail_json TEXT
);
CREATE INDEX oms_intents_sym_status ON oms_intents(symbol, status, sent_ts_ms);
CREATE INDEX oms_intents_oid ON oms_intents(exchange_order_id);
CREATE INDEX oms_orders_oid ON oms_orders(exchange_order_id);
CREATE INDEX oms_orders_cloid ON oms_orders(client_order_id);
CREATE INDEX oms_fills_intent ON oms_fills(intent_id);
CREATE INDEX oms_fills_unmatched ON oms_fills(intent_id) WHERE intent_id IS NULL;
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('oms_orders',1);
INSERT INTO "sqlite_sequence" VALUES('oms_fills',1);
COMMIT;
