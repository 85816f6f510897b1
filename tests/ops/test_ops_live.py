"""manual_trade.py and flat_now.py --mode live against the local exchange process, through the OMS.

The venue's book is thin on purpose (``--level-notional 300 --levels 3``, about 1,100 USD within
reach of an IOC): a 1.5 ETH position cannot be closed by one IOC, so flat_now's retry of the
remainder is exercised by real partial fills. Each test trades with its own funded wallet.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from hyperliquid.info import Info

from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from tests.ops.conftest import LIVE_GATES, WALLET_KEYS, Venue, base_env, run_tool, tool_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def thin_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    v = Venue(tmp_path_factory.mktemp("thin_venue"), "--level-notional", "300", "--levels", "3")
    try:
        yield v
    finally:
        v.stop()


def positions(url: str, wallet: int) -> dict[str, Decimal]:
    st = Info(url, skip_ws=True, timeout=10).user_state(Account.from_key(WALLET_KEYS[wallet]).address)
    return {
        p["position"]["coin"]: Decimal(p["position"]["szi"])
        for p in st["assetPositions"]
        if Decimal(p["position"]["szi"]) != 0
    }


def n_orders_filled(url: str, wallet: int) -> int:
    """Orders with at least one fill (an IOC that sweeps several book levels fills several times)."""
    fills = Info(url, skip_ws=True, timeout=10).user_fills(Account.from_key(WALLET_KEYS[wallet]).address)
    return len({f["oid"] for f in fills})


def intents(db: Path) -> list[tuple]:  # type: ignore[type-arg]
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT symbol, action, side, reduce_only, kernel_intent_id, reason_code, status FROM oms_intents"
            " ORDER BY created_ts_ms"
        ).fetchall()
    finally:
        conn.close()


def test_manual_trade_open_close_cancel_idempotent(thin_venue: Venue, tmp_path: Path) -> None:
    url, w = thin_venue.url, 1
    env = base_env(tmp_path, url, wallet=w, AI_QUANT_MODE="live")
    db = tmp_path / "data" / "oms_live.db"
    # Gates closed: refused before anything is recorded or sent.
    r = run_tool(
        "manual_trade.py", "open", "--id", "a1", "--symbol", "ETH", "--side", "long", "--size", "0.2", env=env
    )
    assert r.returncode == 2 and "live gates closed" in r.stderr and not db.exists()
    env.update(LIVE_GATES)
    dry = tool_json("manual_trade.py", "--dry-run", "open", "--id", "a1", "--symbol", "ETH", "--side", "long",
                    "--size", "0.2", env=env)  # fmt: skip
    assert dry["dry_run"] is True and not db.exists() and positions(url, w) == {}

    first = tool_json("manual_trade.py", "open", "--id", "a1", "--symbol", "ETH", "--side", "long", "--size", "0.2",
                      env=env)  # fmt: skip
    assert (
        first["status"] == "FILLED"
        and first["deduped"] is False
        and Decimal(first["filled"]) == Decimal("0.2")
    )
    assert positions(url, w) == {"ETH": Decimal("0.2")}
    fills = n_orders_filled(url, w)
    again = tool_json("manual_trade.py", "open", "--id", "a1", "--symbol", "ETH", "--side", "long", "--size", "0.2",
                      env=env)  # fmt: skip
    assert (
        again["deduped"] is True and again["intent_id"] == first["intent_id"] and again["status"] == "FILLED"
    )
    assert positions(url, w) == {"ETH": Decimal("0.2")} and n_orders_filled(url, w) == fills  # sent once

    closed = tool_json("manual_trade.py", "close", "--id", "c1", "--symbol", "ETH", env=env)
    assert closed["status"] == "FILLED" and closed["position_after"] == "0" and positions(url, w) == {}
    again = tool_json("manual_trade.py", "close", "--id", "c1", "--symbol", "ETH", env=env)
    assert again["deduped"] is True and n_orders_filled(url, w) == fills + 1
    r = run_tool("manual_trade.py", "close", "--id", "c2", "--symbol", "ETH", env=env)
    assert r.returncode == 1 and "no open ETH position" in r.stderr

    # Recorded as manual intents (kernel_intent_id 0, reason manual:<id>), the close reduce-only.
    assert intents(db) == [
        ("ETH", "OPEN", "BUY", 0, 0, "manual:a1", "FILLED"),
        ("ETH", "CLOSE", "SELL", 1, 0, "manual:c1", "FILLED"),
    ]
    listed = tool_json("manual_trade.py", "list", env=env)
    assert [i["intent_id"] for i in listed["intents"]] == [first["intent_id"], closed["intent_id"]]

    # cancel: a resting order placed through the executor is cancelled by symbol.
    from engine.oms import LiveOms
    from exchange.executor import HyperliquidExecutor, MonotonicNonce
    from exchange.model import Order

    oms = LiveOms(tmp_path / "other_oms.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    ex = HyperliquidExecutor(Account.from_key(WALLET_KEYS[w]), url, MonotonicNonce(oms))
    mid = ex.mid("BTC")
    px = ex.slippage_price("BTC", True, Decimal("-0.2"))  # 20 % under the mid: rests
    ack = ex.place(Order("BTC", "open", "long", Decimal("0.001"), 0), px, tif="Gtc")
    oms.close()
    assert ack.status == "open" and mid > px
    out = tool_json("manual_trade.py", "cancel", "--symbol", "BTC", env=env)
    assert out["cancelled"] == [{"symbol": "BTC", "oid": ack.oid, "cancelled": True}]
    assert Info(url, skip_ws=True, timeout=10).open_orders(Account.from_key(WALLET_KEYS[w]).address) == []

    # Bad input names the problem.
    r = run_tool(
        "manual_trade.py", "open", "--id", "x", "--symbol", "NOPE", "--side", "long", "--size", "1", env=env
    )
    assert r.returncode == 2 and "unknown symbol NOPE" in r.stderr
    r = run_tool("manual_trade.py", "open", "--id", "bad id!", "--symbol", "ETH", "--side", "long", "--size", "1",
                 env=env)  # fmt: skip
    assert r.returncode == 2 and "--id" in r.stderr
    r = run_tool(
        "manual_trade.py", "open", "--id", "x", "--symbol", "ETH", "--side", "long", "--size", "-1", env=env
    )
    assert r.returncode == 2 and "must be a positive number" in r.stderr


def test_flat_now_live_retries_the_remainder_until_flat(thin_venue: Venue, tmp_path: Path) -> None:
    url, w = thin_venue.url, 2
    env = base_env(tmp_path, url, wallet=w, AI_QUANT_MODE="live", **LIVE_GATES)
    db = tmp_path / "data" / "oms_live.db"
    kill = Path(env["AI_QUANT_KILL_SWITCH_FILE"])
    for i in range(3):  # 1.5 ETH in three fills the thin book can take
        tool_json("manual_trade.py", "open", "--id", f"o{i}", "--symbol", "ETH", "--side", "long", "--size", "0.5",
                  env=env)  # fmt: skip
    tool_json(
        "manual_trade.py", "open", "--id", "s1", "--symbol", "SOL", "--side", "short", "--size", "2", env=env
    )
    assert positions(url, w) == {"ETH": Decimal("1.5"), "SOL": Decimal("-2")}

    dry = tool_json("flat_now.py", "--mode", "live", "--dry-run", env=env)
    assert {k: Decimal(v) for k, v in dry["would_close"].items()} == {
        "ETH": Decimal("1.5"),
        "SOL": Decimal(-2),
    }
    assert not kill.exists()

    # One round is not enough on this book: exit status 1, the remainder is reported.
    r = run_tool("flat_now.py", "--mode", "live", "--attempts", "1", "--symbol", "ETH", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert kill.read_text().strip() == "close_only"
    import json

    (eth,) = json.loads(r.stdout)["positions"]
    assert eth["status"] == "still open" and Decimal("0") < Decimal(eth["remaining"]) < Decimal("1.5")
    assert Decimal(eth["closed"]) + Decimal(eth["remaining"]) == Decimal("1.5")
    assert positions(url, w)["SOL"] == Decimal("-2")  # --symbol ETH left SOL alone

    rep = tool_json("flat_now.py", "--mode", "live", env=env)
    assert rep["kill_before"] == "close_only"
    by = {p["symbol"]: p for p in rep["positions"]}
    assert (
        by["ETH"]["status"] == "closed"
        and Decimal(by["ETH"]["remaining"]) == 0
        and by["ETH"]["attempts"] >= 1
    )
    sol = by["SOL"]
    assert sol["side"] == "short" and Decimal(sol["size_before"]) == Decimal(sol["closed"]) == 2
    assert Decimal(sol["remaining"]) == 0 and sol["status"] == "closed"
    assert positions(url, w) == {}
    flat = [i for i in intents(db) if i[5] == "manual_flatten"]
    assert flat and all(i[3] == 1 and i[4] == 0 for i in flat)  # reduce-only, manual
    assert {i[0] for i in flat} == {"ETH", "SOL"}
    # Flat: another run closes nothing and succeeds.
    again = tool_json("flat_now.py", "--mode", "live", env=env)
    assert again["positions"] == []


def test_export_state_live_from_the_venue_replays(
    thin_venue: Venue, candles_db: Path, tmp_path: Path
) -> None:
    import json
    import subprocess

    from tests.ops.conftest import bt_binary

    url, w = thin_venue.url, 3
    env = base_env(tmp_path, url, wallet=w, AI_QUANT_MODE="live", **LIVE_GATES)
    tool_json(
        "manual_trade.py", "open", "--id", "e1", "--symbol", "ETH", "--side", "long", "--size", "0.3", env=env
    )
    out = tmp_path / "live_state.json"
    rep = tool_json("export_state.py", "--mode", "live", "--output", str(out), env=env)
    assert (
        rep["mode"] == "live"
        and len(rep["positions"]) == 1
        and rep["positions"][0].startswith("long 0.3 ETH @")
    )
    doc = json.loads(out.read_text())
    assert doc["source"]["address"] == Account.from_key(WALLET_KEYS[w]).address.lower()
    assert any("rebuilt from venue positions" in n for n in doc["notes"])  # no kernel state in this OMS
    pos = doc["state"]["positions"]["ETH"]
    assert (pos["side"], pos["quantity"]) == ("long", 0.3)
    st = Info(url, skip_ws=True, timeout=10).user_state(Account.from_key(WALLET_KEYS[w]).address)
    assert abs(
        Decimal(str(doc["state"]["cash_usd"]))
        + sum(Decimal(p["position"]["unrealizedPnl"]) for p in st["assetPositions"])
        - Decimal(st["marginSummary"]["accountValue"])
    ) < Decimal("1")  # equity = cash + unrealised (mids move)

    opened = pos["opened_at_ms"]
    trades = tmp_path / "trades.csv"
    r = subprocess.run(
        [str(bt_binary()), "replay", "--config", str(tmp_path / "strategy.yaml"), "--candles-db", str(candles_db),
         "--symbols", "ETH", "--start", str(opened), "--end", str(opened + 3 * 86_400_000), "--init-state", str(out),
         "--export-trades", str(trades), "--output", str(tmp_path / "r.json"), "-q"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    first = trades.read_text().splitlines()[1].split(",")
    # The restored position is the first thing the replay trades: a sell that reduces or closes it.
    assert (
        first[4] == "ETH"
        and first[5] in ("close", "reduce")
        and first[6] == "short"
        and float(first[7]) <= 0.3
    )
    tool_json("flat_now.py", "--mode", "live", env=env)
    assert positions(url, w) == {}


def test_the_kill_switch_refuses_manual_opens_and_lets_the_operator_close(
    thin_venue: Venue, tmp_path: Path
) -> None:
    """One rule for every sender (engine.risk.order_allowed): under close_only or halt_all nothing that
    adds risk is sent by anyone; the operator's reduce-only close and flat_now still go out, and say so."""
    import json

    url, w = thin_venue.url, 4
    env = base_env(tmp_path, url, wallet=w, AI_QUANT_MODE="live", **LIVE_GATES)
    db = tmp_path / "data" / "oms_live.db"
    kill = Path(env["AI_QUANT_KILL_SWITCH_FILE"])
    open_btc = ("open", "--id", "op-btc-1", "--symbol", "BTC", "--side", "long", "--size", "0.001")
    for word in ("halt_all", "close_only", "HALT", "banana"):  # an unknown word fails closed
        kill.write_text(word + "\n")
        for dry in ((), ("--dry-run",)):
            r = run_tool("manual_trade.py", *dry, *open_btc, env=env)
            assert r.returncode == 2, (word, dry, r.stdout, r.stderr)
            assert (
                "kill switch" in r.stderr and "nothing recorded or sent" in r.stderr and str(kill) in r.stderr
            )
            assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    kill.write_text("clear\n")
    r = run_tool("manual_trade.py", *open_btc, env={**env, "AI_QUANT_KILL_SWITCH": "halt_all"})
    assert r.returncode == 2 and "kill switch halt_all (AI_QUANT_KILL_SWITCH)" in r.stderr
    r = run_tool("manual_trade.py", *open_btc, env={**env, "AI_QUANT_HARD_KILL_SWITCH": "1"})
    assert r.returncode == 2 and "AI_QUANT_HARD_KILL_SWITCH" in r.stderr
    assert positions(url, w) == {} and n_orders_filled(url, w) == 0 and not db.exists()  # nothing sent

    opened = tool_json("manual_trade.py", *open_btc, env=env)
    assert opened["status"] == "FILLED" and opened["kill"] == "off" and "note" not in opened
    assert positions(url, w) == {"BTC": Decimal("0.001")}
    kill.write_text("halt_all\n")
    # A close reduces risk: sent by the operator under halt_all, and the report says what happened.
    closed = tool_json("manual_trade.py", "close", "--id", "op-btc-2", "--symbol", "BTC", env=env)
    assert closed["status"] == "FILLED" and closed["position_after"] == "0" and closed["kill"] == "halt_all"
    assert "halt_all" in closed["note"] and "the daemon sends nothing" in closed["note"]
    assert "reduce-only close reduces risk and is sent by the operator" in closed["note"]
    # ...but the hard kill refuses even that.
    tool_json("manual_trade.py", "open", "--id", "op-sol-1", "--symbol", "SOL", "--side", "short", "--size", "1",
              env={**env, "AI_QUANT_KILL_SWITCH_FILE": str(tmp_path / "no_kill")})  # fmt: skip
    r = run_tool("flat_now.py", "--mode", "live", env={**env, "AI_QUANT_HARD_KILL_SWITCH": "1"})
    assert (
        r.returncode == 2
        and "AI_QUANT_HARD_KILL_SWITCH" in r.stderr
        and positions(url, w) == {"SOL": Decimal(-1)}
    )
    # flat_now under halt_all: flattens (the operator's reduce-only closes), keeps halt_all, says so.
    rep = tool_json("flat_now.py", "--mode", "live", env=env)
    assert rep["kill_before"] == "halt_all" and kill.read_text().strip() == "halt_all"
    assert "halt_all" in rep["note"] and "flatten reduces risk" in rep["note"]
    assert [(p["symbol"], p["status"]) for p in rep["positions"]] == [("SOL", "closed")] and positions(
        url, w
    ) == {}
    conn = sqlite3.connect(db)
    try:
        sent = conn.execute(
            "SELECT reason_code, reduce_only FROM oms_intents ORDER BY created_ts_ms"
        ).fetchall()
    finally:
        conn.close()
    assert sent == [
        ("manual:op-btc-1", 0),
        ("manual:op-btc-2", 1),
        ("manual:op-sol-1", 0),
        ("manual_flatten", 1),
    ]
    assert json.loads(run_tool("manual_trade.py", "list", env=env).stdout)["operator_positions"] == {}
