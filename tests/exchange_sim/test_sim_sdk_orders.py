"""Trading through the official SDK (hyperliquid.exchange.Exchange) against the local venue over loopback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import pytest
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import OrderRequest, get_timestamp_ms, sign_l1_action
from hyperliquid.utils.types import Cloid
from sim_helpers import new_wallet, post_signed

from exchange.sim.harness import SimServer
from exchange.sim.state import Venue

Tpsl = Literal["tp", "sl"]


def statuses(resp: dict[str, Any]) -> list[Any]:
    assert resp["status"] == "ok", resp
    return list(resp["response"]["data"]["statuses"])


def mid(info: Info, coin: str) -> float:
    return float(info.all_mids()[coin])


def future_range(sim: SimServer, coin: str, ms: int) -> tuple[float, float]:
    """Low and high of the replayed path over the next ``ms`` (the test peeks at the data)."""

    def go(v: Venue) -> tuple[float, float]:
        bar = v.market.ohlcv(coin, v.engine.t + 1, v.engine.t + ms + 1)
        assert bar is not None
        return bar.low, bar.h

    return sim.call(go)


def px5(x: float) -> float:
    return float(f"{x:.5g}")


def limit_req(coin: str, is_buy: bool, sz: float, px: float, tif: str = "Gtc") -> OrderRequest:
    """One limit order of a bulk request, as the SDK takes it."""
    return {
        "coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": {"limit": {"tif": tif}},
        "reduce_only": False,
    }  # fmt: skip


def trigger_req(coin: str, is_buy: bool, sz: float, px: float, trigger_px: float, tpsl: Tpsl) -> OrderRequest:
    """One reduce-only market trigger (take-profit or stop-loss) of a bulk request."""
    return {
        "coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px,
        "order_type": {"trigger": {"triggerPx": trigger_px, "isMarket": True, "tpsl": tpsl}}, "reduce_only": True,
    }  # fmt: skip


def test_place_rest_query_cancel(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    px = px5(mid(info, "ETH") * 0.9)
    st = statuses(ex.order("ETH", True, 0.05, px, {"limit": {"tif": "Gtc"}}))
    oid = st[0]["resting"]["oid"]
    opened = info.open_orders(wallet.address)
    assert [o["oid"] for o in opened] == [oid]
    assert opened[0]["side"] == "B" and opened[0]["sz"] == "0.05" and opened[0]["origSz"] == "0.05"
    fe = info.frontend_open_orders(wallet.address)[0]
    assert (
        fe["orderType"] == "Limit"
        and fe["tif"] == "Gtc"
        and fe["isTrigger"] is False
        and fe["triggerCondition"] == "N/A"
    )
    q = info.query_order_by_oid(wallet.address, oid)
    assert q["status"] == "order" and q["order"]["status"] == "open" and q["order"]["order"]["oid"] == oid
    near = px5(mid(info, "ETH") * 0.9995)
    before = {lv["px"]: lv for lv in info.l2_snapshot("ETH")["levels"][0]}
    near_oid = statuses(ex.order("ETH", True, 0.05, near, {"limit": {"tif": "Gtc"}}))[0]["resting"]["oid"]
    after = {lv["px"]: lv for lv in info.l2_snapshot("ETH")["levels"][0]}
    key = next(k for k in after if float(k) == near)  # resting orders show in the book
    assert after[key]["n"] == (before[key]["n"] + 1 if key in before else 1)
    assert ex.cancel("ETH", near_oid)["status"] == "ok"
    assert ex.cancel("ETH", oid) == {
        "status": "ok",
        "response": {"type": "cancel", "data": {"statuses": ["success"]}},
    }
    again = statuses(ex.cancel("ETH", oid))
    assert again == [{"error": "Order was never placed, already canceled, or filled."}]
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "canceled"
    assert info.open_orders(wallet.address) == []


def test_cloid_roundtrip(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    cloid = Cloid.from_int(42)
    px = px5(mid(info, "SOL") * 0.8)
    st = statuses(ex.order("SOL", True, 1, px, {"limit": {"tif": "Gtc"}}, cloid=cloid))
    assert st[0]["resting"]["cloid"] == cloid.to_raw()
    q = info.query_order_by_cloid(wallet.address, cloid)
    assert q["order"]["order"]["cloid"] == cloid.to_raw()
    assert info.open_orders(wallet.address)[0]["cloid"] == cloid.to_raw()
    assert statuses(ex.cancel_by_cloid("SOL", cloid)) == ["success"]
    assert statuses(ex.cancel_by_cloid("SOL", cloid)) == [
        {"error": "Order was never placed, already canceled, or filled."}
    ]


def test_modify_order(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    px = px5(mid(info, "ETH") * 0.9)
    oid = statuses(ex.order("ETH", True, 0.05, px, {"limit": {"tif": "Gtc"}}))[0]["resting"]["oid"]
    new_px = px5(px * 0.99)
    st = statuses(ex.modify_order(oid, "ETH", True, 0.07, new_px, {"limit": {"tif": "Gtc"}}))
    new_oid = st[0]["resting"]["oid"]
    assert new_oid != oid
    opened = info.open_orders(wallet.address)
    assert [(o["oid"], o["sz"], float(o["limitPx"])) for o in opened] == [(new_oid, "0.07", new_px)]
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "canceled"
    assert statuses(ex.modify_order(oid, "ETH", True, 0.07, new_px, {"limit": {"tif": "Gtc"}})) == [
        {"error": "Cannot modify canceled or filled order"}
    ]
    # The docs' single ``modify`` action answers type "default".
    action = {
        "type": "modify",
        "oid": new_oid,
        "order": {
            "a": 1,
            "b": True,
            "p": str(px5(new_px * 0.99)),
            "s": "0.07",
            "r": False,
            "t": {"limit": {"tif": "Gtc"}},
        },
    }
    assert post_signed(sim, wallet, action, get_timestamp_ms()) == {
        "status": "ok",
        "response": {"type": "default"},
    }
    assert len(info.open_orders(wallet.address)) == 1


def test_market_open_close_and_fills(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    st = statuses(ex.market_open("BTC", True, 0.02))
    filled = st[0]["filled"]
    assert filled["totalSz"] == "0.02"
    state = info.user_state(wallet.address)
    pos = state["assetPositions"][0]["position"]
    assert pos["coin"] == "BTC" and pos["szi"] == "0.02" and float(pos["entryPx"]) == float(filled["avgPx"])
    assert pos["leverage"] == {"type": "cross", "value": 20} and pos["maxLeverage"] == 40
    assert isinstance(pos["liquidationPx"], str | None)
    assert float(state["marginSummary"]["accountValue"]) < 100_000  # paid the spread and the taker fee
    closed = statuses(ex.market_close("BTC"))
    assert closed[0]["filled"]["totalSz"] == "0.02"
    assert info.user_state(wallet.address)["assetPositions"] == []
    assert ex.market_close("BTC") is None  # the SDK returns None with no position
    fills = info.user_fills(wallet.address)
    assert [f["dir"] for f in fills][-1] == "Open Long" and fills[0]["dir"] == "Close Long"
    for f in fills:
        assert (
            f["crossed"] is True
            and f["feeToken"] == "USDC"
            and f["hash"].startswith("0x")
            and len(f["hash"]) == 66
        )
        assert Decimal(f["fee"]) == (Decimal(f["px"]) * Decimal(f["sz"]) * Decimal("0.00045")).quantize(
            Decimal("0.000001")
        )
    assert len({f["tid"] for f in fills}) == len(fills) and len({f["hash"] for f in fills}) == len(fills)
    pnl = sum(Decimal(f["closedPnl"]) for f in fills)
    fees = sum(Decimal(f["fee"]) for f in fills)
    av = Decimal(info.user_state(wallet.address)["marginSummary"]["accountValue"])
    assert av == Decimal(100_000) + pnl - fees
    by_time = info.user_fills_by_time(wallet.address, 0)
    assert len(by_time) == len(fills)


def test_ioc_sweeps_levels_and_rejects(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    asks = info.l2_snapshot("SOL")["levels"][1]
    limit = float(asks[2]["px"])
    size = round(sum(float(lv["sz"]) for lv in asks[:2]) + float(asks[2]["sz"]) / 2, 2)
    st = statuses(ex.order("SOL", True, size, limit, {"limit": {"tif": "Ioc"}}))
    assert Decimal(st[0]["filled"]["totalSz"]) == Decimal(str(size))
    fills = [f for f in info.user_fills(wallet.address) if f["oid"] == st[0]["filled"]["oid"]]
    assert sorted(float(f["px"]) for f in fills) == [float(lv["px"]) for lv in asks[:3]]
    after = info.l2_snapshot("SOL")["levels"][1]
    assert float(after[0]["px"]) == limit  # the first two levels were consumed, the third is partly left
    # Nothing left at or under a price below the ask: IOC gets the venue's error.
    low = px5(float(after[0]["px"]) * 0.99)
    assert statuses(ex.order("SOL", True, 1, low, {"limit": {"tif": "Ioc"}})) == [
        {"error": "Order could not immediately match against any resting orders."}
    ]


def test_alo_rejected_when_crossing(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    book = info.l2_snapshot("ETH")
    bid, ask = book["levels"][0][0]["px"], book["levels"][1][0]["px"]
    st = statuses(ex.order("ETH", True, 0.1, float(ask), {"limit": {"tif": "Alo"}}))
    assert st == [{"error": f"Post only order would have immediately matched, bbo was {bid}@{ask}."}]
    ok = statuses(ex.order("ETH", True, 0.1, float(bid), {"limit": {"tif": "Alo"}}))
    assert "resting" in ok[0]


def test_rule_errors(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    m = mid(info, "BTC")

    def gtc(coin: str, is_buy: bool, sz: float, px: float, reduce_only: bool = False) -> list[Any]:
        return statuses(ex.order(coin, is_buy, sz, px, {"limit": {"tif": "Gtc"}}, reduce_only=reduce_only))

    # 6 significant figures with a fraction: bad tick.
    assert gtc("BTC", True, 0.001, 12345.6) == [{"error": "Price must be divisible by tick size."}]
    # More decimals than 6 - szDecimals.
    assert gtc("ETH", True, 0.01, 1800.123) == [{"error": "Order has invalid price."}]
    # Size with more decimals than szDecimals (BTC has 5).
    assert gtc("BTC", True, 0.000001, round(m * 0.9)) == [{"error": "Order has invalid size."}]
    assert gtc("BTC", True, 0.0001, round(m * 0.9)) == [{"error": "Order must have minimum value of $10."}]
    assert gtc("BTC", True, 30, round(m * 0.9)) == [{"error": "Insufficient margin to place order."}]
    assert gtc("ETH", False, 0.01, 1800, reduce_only=True) == [
        {"error": "Reduce only order would increase position."}
    ]


def test_batch_mixes_statuses(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    m = mid(Info(sim.base_url, skip_ws=True), "SOL")
    reqs = [
        limit_req("SOL", True, 1, px5(m * 0.9)),
        limit_req("SOL", True, 1.001, px5(m * 0.9)),
        limit_req("SOL", True, 1, px5(m * 1.01), "Ioc"),
    ]
    st = statuses(ex.bulk_orders(reqs))
    assert "resting" in st[0] and st[1] == {"error": "Order has invalid size."} and "filled" in st[2]


def test_reduce_only_caps_to_position(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    statuses(ex.market_open("ETH", False, 0.1))
    st = statuses(
        ex.order("ETH", True, 0.5, px5(mid(info, "ETH") * 1.02), {"limit": {"tif": "Ioc"}}, reduce_only=True)
    )
    assert st[0]["filled"]["totalSz"] == "0.1"
    assert info.user_state(wallet.address)["assetPositions"] == []


def test_update_leverage(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    assert ex.update_leverage(5, "ETH") == {"status": "ok", "response": {"type": "default"}}
    statuses(ex.market_open("ETH", True, 0.5))
    pos = info.user_state(wallet.address)["assetPositions"][0]["position"]
    assert pos["leverage"] == {"type": "cross", "value": 5}
    assert Decimal(pos["marginUsed"]) == (Decimal(pos["positionValue"]) / 5).quantize(Decimal("0.000001"))
    bad = ex.update_leverage(26, "ETH")
    assert bad["status"] == "err"
    assert ex.update_leverage(3, "ETH", is_cross=False)["status"] == "ok"
    assert info.user_state(wallet.address)["assetPositions"][0]["position"]["leverage"]["type"] == "isolated"


def test_signature_and_nonce_errors(sim: SimServer, wallet: LocalAccount) -> None:
    stranger = Account.from_key("0x" + "77" * 32)
    resp = Exchange(stranger, sim.base_url).order("ETH", True, 0.01, 1800, {"limit": {"tif": "Gtc"}})
    assert resp == {
        "status": "err",
        "response": f"User or API Wallet {stranger.address.lower()} does not exist.",
    }
    action = {"type": "noop"}
    nonce = get_timestamp_ms()
    assert post_signed(sim, wallet, action, nonce) == {"status": "ok", "response": {"type": "default"}}
    assert post_signed(sim, wallet, action, nonce) == {
        "status": "err",
        "response": f"Invalid nonce: duplicate nonce {nonce}",
    }
    old = nonce - 3 * 86_400_000
    assert post_signed(sim, wallet, action, old)["response"].startswith(
        f"Invalid nonce: nonce too low {old} < "
    )
    far = nonce + 2 * 86_400_000
    assert post_signed(sim, wallet, action, far)["response"].startswith(
        f"Invalid nonce: nonce too high {far} > "
    )
    expired = post_signed(sim, wallet, action, nonce + 1, expires_after=nonce - 1000)
    assert expired == {"status": "err", "response": "Action already expired"}
    assert post_signed(sim, wallet, action, nonce + 2, expires_after=nonce + 60_000)["status"] == "ok"
    # A tampered action recovers some other address, as on the venue.
    sig = sign_l1_action(wallet, action, None, nonce + 3, None, False)
    body = {
        "action": {"type": "noop", "x": 1},
        "nonce": nonce + 3,
        "signature": sig,
        "vaultAddress": None,
        "expiresAfter": None,
    }
    r = requests.post(sim.base_url + "/exchange", json=body, timeout=10).json()
    assert r["status"] == "err" and r["response"].startswith("User or API Wallet 0x")
    # A mainnet signature (source "a") is refused unless --accept-mainnet-signatures.
    sig_a = sign_l1_action(wallet, action, None, nonce + 4, None, True)
    body = {
        "action": action,
        "nonce": nonce + 4,
        "signature": sig_a,
        "vaultAddress": None,
        "expiresAfter": None,
    }
    assert requests.post(sim.base_url + "/exchange", json=body, timeout=10).json()["status"] == "err"
    r = requests.post(sim.base_url + "/exchange", data=b"not json", timeout=10)
    assert r.status_code == 422


def test_resting_order_fills_when_price_crosses(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    low, _ = future_range(sim, "ETH", 2 * 3_600_000)
    m = mid(info, "ETH")
    assert low < m * 0.999, "the replayed data should dip within two hours"
    px = px5((low + m) / 2)
    oid = statuses(ex.order("ETH", True, 0.2, px, {"limit": {"tif": "Gtc"}}))[0]["resting"]["oid"]
    sim.advance(2 * 3_600_000)
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "filled"
    fill = next(f for f in info.user_fills(wallet.address) if f["oid"] == oid)
    assert fill["crossed"] is False and float(fill["px"]) == px and fill["sz"] == "0.2"
    assert Decimal(fill["fee"]) == (Decimal(fill["px"]) * Decimal("0.2") * Decimal("0.00015")).quantize(
        Decimal("0.000001")
    )
    assert info.user_state(wallet.address)["assetPositions"][0]["position"]["szi"] == "0.2"


def test_stop_loss_trigger_fires_on_mark(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    statuses(ex.market_open("SOL", True, 2))
    low, high = future_range(sim, "SOL", 3_600_000)
    m = mid(info, "SOL")
    assert low < m
    trigger = px5((low + m) / 2)
    sl = {"trigger": {"triggerPx": trigger, "isMarket": True, "tpsl": "sl"}}
    st = statuses(ex.order("SOL", False, 2, px5(trigger * 0.9), sl, reduce_only=True))
    oid = st[0]["resting"]["oid"]
    fe = info.frontend_open_orders(wallet.address)[0]
    assert (
        fe["isTrigger"] is True
        and fe["orderType"] == "Stop Market"
        and fe["triggerCondition"] == f"Price below {trigger}"
    )
    # A take-profit above a level the market never reaches stays put.
    tp = {"trigger": {"triggerPx": px5(high * 1.05), "isMarket": True, "tpsl": "tp"}}
    tp_oid = statuses(ex.order("SOL", False, 2, px5(high * 1.04), tp, reduce_only=True))[0]["resting"]["oid"]
    sim.advance(3_600_000)
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "filled"
    assert info.user_state(wallet.address)["assetPositions"] == []
    # Its reduce-only sibling is canceled at the next check since there is nothing left to reduce.
    sim.advance(60_000)
    assert info.query_order_by_oid(wallet.address, tp_oid)["order"]["status"] in (
        "open",
        "reduceOnlyCanceled",
    )


def test_normal_tpsl_grouping(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    m = mid(Info(sim.base_url, skip_ws=True), "ETH")
    parent = limit_req("ETH", True, 0.1, px5(m * 1.01))
    tp = trigger_req("ETH", False, 0.1, px5(m * 1.2), px5(m * 1.2), "tp")
    sl = trigger_req("ETH", False, 0.1, px5(m * 0.7), px5(m * 0.8), "sl")
    st = statuses(ex.bulk_orders([parent, tp, sl], grouping="normalTpsl"))
    assert "filled" in st[0] and st[1:] == ["waitingForTrigger", "waitingForTrigger"]
    fe = Info(sim.base_url, skip_ws=True).frontend_open_orders(wallet.address)
    assert sorted(o["orderType"] for o in fe) == ["Stop Market", "Take Profit Market"]
    assert statuses(ex.bulk_orders([parent], grouping="normalTpsl")) == [
        {"error": "Unexpected number of trigger orders"}
    ]


def test_schedule_cancel_dead_mans_switch(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    oid = statuses(ex.order("ETH", True, 0.05, px5(mid(info, "ETH") * 0.8), {"limit": {"tif": "Gtc"}}))[0][
        "resting"
    ]["oid"]
    assert ex.schedule_cancel(sim.now() + 1000)["status"] == "err"  # must be >= 5 s ahead
    assert ex.schedule_cancel(sim.now() + 10_000) == {"status": "ok", "response": {"type": "default"}}
    sim.advance(5_000)
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "open"
    sim.advance(6_000)
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "scheduledCancel"
    assert info.open_orders(wallet.address) == []
    assert ex.schedule_cancel(None)["status"] == "ok"


def test_hourly_funding_from_history(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    statuses(ex.market_open("BTC", True, 0.1))
    start = sim.now()
    sim.advance(2 * 3_600_000)
    rows = info.user_funding_history(wallet.address, start)
    assert len(rows) == 2
    hist = {r["time"]: r["fundingRate"] for r in info.funding_history("BTC", start)}
    for r in rows:
        d = r["delta"]
        assert (
            r["time"] % 3_600_000 == 0 and d["type"] == "funding" and d["coin"] == "BTC" and d["szi"] == "0.1"
        )
        assert d["fundingRate"] == hist[r["time"]]
        assert Decimal(d["usdc"]) * Decimal(d["fundingRate"]) <= 0  # longs pay positive funding
    pos = info.user_state(wallet.address)["assetPositions"][0]["position"]
    assert Decimal(pos["cumFunding"]["sinceOpen"]) == -sum(Decimal(r["delta"]["usdc"]) for r in rows)


def test_liquidation_at_maintenance_margin(sim: SimServer) -> None:
    w = new_wallet()
    sim.deposit(w.address, 300)
    ex = Exchange(w, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    m = mid(info, "BTC")
    low, high = future_range(sim, "BTC", 24 * 3_600_000)
    is_buy = (m - low) > (high - m)  # take the side the replay moves against
    assert max(m - low, high - m) / m > 0.02
    assert ex.update_leverage(40, "BTC")["status"] == "ok"
    size = round(300 * 38 / m, 5)
    statuses(ex.market_open("BTC", is_buy, size))
    liq = info.user_state(w.address)["assetPositions"][0]["position"]["liquidationPx"]
    assert liq is not None
    for _ in range(24 * 12):
        sim.advance(300_000)
        if not info.user_state(w.address)["assetPositions"]:
            break
    assert info.user_state(w.address)["assetPositions"] == []
    assert float(info.user_state(w.address)["marginSummary"]["accountValue"]) < 300


def test_order_status_and_history_after_restartless_flow(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    statuses(ex.market_open("SOL", True, 1))
    hist = info.historical_orders(wallet.address)
    assert hist and hist[0]["status"] == "filled" and hist[0]["order"]["coin"] == "SOL"
    rl = info.user_rate_limit(wallet.address)
    assert rl["nRequestsUsed"] >= 1 and float(rl["cumVlm"]) > 0


@pytest.mark.parametrize("tif", ["Gtc", "Ioc"])
def test_self_trade_cancels_resting_maker(sim: SimServer, wallet: LocalAccount, tif: str) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    ask = float(info.l2_snapshot("ETH")["levels"][1][0]["px"])
    bid = float(info.l2_snapshot("ETH")["levels"][0][0]["px"])
    # Rest a sell inside the spread, then cross it with our own buy.
    inside = px5((ask + bid) / 2) if px5((ask + bid) / 2) not in (ask, bid) else ask
    sell = statuses(ex.order("ETH", False, 0.01, inside, {"limit": {"tif": "Alo"}}))
    if "resting" not in sell[0]:
        pytest.skip("no room inside the spread")
    oid = sell[0]["resting"]["oid"]
    statuses(ex.order("ETH", True, 0.01, px5(ask * 1.01), {"limit": {"tif": tif}}))
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "selfTradeCanceled"


def test_position_tpsl_grouping(sim: SimServer, wallet: LocalAccount) -> None:
    ex = Exchange(wallet, sim.base_url)
    info = Info(sim.base_url, skip_ws=True)
    statuses(ex.market_open("SOL", True, 1))
    m = mid(info, "SOL")
    tp = trigger_req("SOL", False, 1, px5(m * 1.3), px5(m * 1.3), "tp")
    st = statuses(ex.bulk_orders([tp], grouping="positionTpsl"))
    oid = st[0]["resting"]["oid"]
    fe = info.frontend_open_orders(wallet.address)[0]
    assert (
        fe["oid"] == oid
        and fe["isPositionTpsl"] is True
        and fe["triggerCondition"] == f"Price above {px5(m * 1.3)}"
    )
    not_reduce: OrderRequest = {**tp, "reduce_only": False}
    assert statuses(ex.bulk_orders([not_reduce], grouping="positionTpsl")) == [
        {"error": "Invalid TP/SL price."}
    ]
