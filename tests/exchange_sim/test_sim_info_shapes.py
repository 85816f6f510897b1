"""/info answers through the official SDK, with shapes checked against the recorded real responses."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import yaml
from hyperliquid.info import Info
from sim_helpers import CASSETTES

from exchange.sim.harness import SimServer


def recorded(name: str, req_type: str) -> Any:
    doc = yaml.safe_load((CASSETTES / name).read_text())
    for it in doc["interactions"]:
        if json.loads(it["request"]["body"])["type"] == req_type:
            return json.loads(it["response"]["body"]["string"])
    raise KeyError(req_type)


def same_shape(ours: Any, real: Any, path: str = "$", extra_ok: frozenset[str] = frozenset()) -> None:
    """Every key of the real answer is present with the same JSON type; list items compared to the first."""
    assert type(ours) is type(real) or (isinstance(ours, int | float) and isinstance(real, int | float)), (
        f"{path}: {type(ours).__name__} vs {type(real).__name__}"
    )
    if isinstance(real, dict):
        missing = set(real) - set(ours)
        assert not missing, f"{path}: missing keys {missing}"
        extra = set(ours) - set(real) - extra_ok
        assert not extra, f"{path}: unexpected keys {extra}"
        for k in real:
            same_shape(ours[k], real[k], f"{path}.{k}", extra_ok)
    elif isinstance(real, list) and real:
        assert ours, f"{path}: empty list, the venue's is not"
        for item in ours:
            same_shape(item, real[0], f"{path}[]", extra_ok)


def test_meta_shape(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True)
    ours = info.meta()
    # The current venue adds marginTables/collateralToken and marginTableId (protocol section 2.1).
    same_shape(
        ours,
        recorded("test_get_info.yaml", "meta"),
        extra_ok=frozenset({"marginTables", "collateralToken", "marginTableId"}),
    )
    by_name = {a["name"]: a for a in ours["universe"]}
    assert (by_name["BTC"]["szDecimals"], by_name["BTC"]["maxLeverage"]) == (5, 40)
    assert (by_name["ETH"]["szDecimals"], by_name["ETH"]["maxLeverage"]) == (4, 25)
    assert (by_name["SOL"]["szDecimals"], by_name["SOL"]["maxLeverage"]) == (2, 20)
    assert info.spot_meta() == {"universe": [], "tokens": []}


def test_all_mids_shape_and_consistency(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True)
    mids = info.all_mids()
    real = recorded("test_get_all_mids.yaml", "allMids")
    assert set(mids) == {"BTC", "ETH", "SOL"}
    assert all(isinstance(v, str) for v in mids.values()) and all(isinstance(v, str) for v in real.values())
    for coin, mid in mids.items():
        book = info.l2_snapshot(coin)
        best_bid, best_ask = float(book["levels"][0][0]["px"]), float(book["levels"][1][0]["px"])
        assert best_bid < float(mid) < best_ask
        assert float(mid) == pytest.approx((best_bid + best_ask) / 2)


def test_l2_book_shape(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True)
    ours = info.l2_snapshot("BTC")
    same_shape(ours, recorded("test_get_l2_snapshot.yaml", "l2Book"))
    bids, asks = ours["levels"]
    assert len(bids) == 20 and len(asks) == 20
    assert [float(x["px"]) for x in bids] == sorted((float(x["px"]) for x in bids), reverse=True)
    assert [float(x["px"]) for x in asks] == sorted(float(x["px"]) for x in asks)
    agg = requests.post(
        sim.base_url + "/info", json={"type": "l2Book", "coin": "BTC", "nSigFigs": 3}, timeout=10
    ).json()
    assert all(float(lv["px"]) % 100 == 0 for lv in agg["levels"][0])


def test_candle_snapshot_shape_and_cap(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True)
    now = sim.now()
    ours = info.candles_snapshot("BTC", "1h", now - 24 * 3_600_000, now)
    same_shape(ours, recorded("test_get_candles_snapshot.yaml", "candleSnapshot"))
    assert len(ours) == 25  # 24 closed hours plus the live one
    for c in ours:
        assert c["T"] == c["t"] + 3_600_000 - 1
        assert (
            float(c["l"])
            <= min(float(c["o"]), float(c["c"]))
            <= max(float(c["o"]), float(c["c"]))
            <= float(c["h"])
        )
    assert ours[-1]["t"] <= now <= ours[-1]["T"]
    many = info.candles_snapshot("ETH", "5m", 0, now)
    assert len(many) == 5000  # only the most recent 5000 candles
    assert many[-1]["t"] == now // 300_000 * 300_000
    # 1m candles built from the 5m replay path agree with the 5m candle they fall in.
    five = info.candles_snapshot("SOL", "5m", now - 3_600_000, now - 600_000)
    ones = info.candles_snapshot("SOL", "1m", five[0]["t"], five[0]["t"] + 240_000)
    assert ones[0]["o"] == five[0]["o"] and ones[4]["c"] == five[0]["c"]
    assert max(float(x["h"]) for x in ones[:5]) == float(five[0]["h"])


@pytest.mark.parametrize(
    "cassette", ["test_get_funding_history[None].yaml", "test_get_funding_history[1684811870000].yaml"]
)
def test_funding_history_shape(sim: SimServer, cassette: str) -> None:
    info = Info(sim.base_url, skip_ws=True)
    now = sim.now()
    ours = info.funding_history("BTC", now - 3 * 86_400_000, now)
    same_shape(ours, recorded(cassette, "fundingHistory"))
    assert 70 <= len(ours) <= 73
    assert all(r["time"] <= now for r in ours)
    assert all(r["time"] % 3_600_000 == 0 for r in ours)


def test_meta_and_asset_ctxs_shape(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True)
    meta, ctxs = info.meta_and_asset_ctxs()
    assert [a["name"] for a in meta["universe"]] == ["BTC", "ETH", "SOL"]
    for ctx in ctxs:
        assert set(ctx) == {
            "funding",
            "openInterest",
            "prevDayPx",
            "dayNtlVlm",
            "premium",
            "oraclePx",
            "markPx",
            "midPx",
            "impactPxs",
            "dayBaseVlm",
        }
        assert all(isinstance(ctx[k], str) for k in ctx if k != "impactPxs")
        assert len(ctx["impactPxs"]) == 2


def test_account_queries_empty_user(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True)
    user = "0x" + "ab" * 20
    state = info.user_state(user)
    assert set(state) == {
        "marginSummary",
        "crossMarginSummary",
        "crossMaintenanceMarginUsed",
        "withdrawable",
        "assetPositions",
        "time",
    }
    assert state["marginSummary"] == {
        "accountValue": "0.0",
        "totalNtlPos": "0.0",
        "totalRawUsd": "0.0",
        "totalMarginUsed": "0.0",
    }
    assert info.open_orders(user) == []
    assert info.frontend_open_orders(user) == []
    assert info.user_fills(user) == []
    assert info.user_fills_by_time(user, 0) == []
    assert info.user_funding_history(user, 0) == []
    assert info.query_order_by_oid(user, 1) == {"status": "unknownOid"}
    assert set(info.user_rate_limit(user)) == {"cumVlm", "nRequestsUsed", "nRequestsCap", "nRequestsSurplus"}


def test_malformed_info_is_422(sim: SimServer) -> None:
    r = requests.post(
        sim.base_url + "/info", data=b"{nope", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 422
    assert r.text.startswith("Failed to deserialize the JSON body into the target type")
    r = requests.post(sim.base_url + "/info", json={"type": "noSuchType"}, timeout=10)
    assert r.status_code == 422
