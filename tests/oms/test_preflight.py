"""The pre-flight check (live/preflight.py) and ``tools/preflight.py`` against the local exchange.

The pure check: each problem class gives exactly one line, a clean set-up gives none. The tool: run
alone as a subprocess with an API wallet set up through the official SDK (approve_agent), a clean
set-up passes (exit 0), and every kind of mistake is named (exit 1).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange

from engine.config import kernel_defaults
from engine.config.view import TradeConfig
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.hl_fills import parse_fill
from exchange.model import Order
from exchange.sim.harness import SimServer
from live.preflight import (
    MIN_ORDER_USD,
    OmsFacts,
    VenueFacts,
    VenueOrder,
    check,
    configured_leverage,
    oms_facts,
    read_oms,
)

from .conftest import new_wallet

REPO = Path(__file__).resolve().parents[2]
MASTER = "0x" + "11" * 20
AGENT = "0x" + "22" * 20
ASSETS = {"BTC": (5, 40), "ETH": (4, 25), "SOL": (2, 20)}
TRADE = replace(
    TradeConfig(**kernel_defaults()["trade"]),
    leverage=3.0, leverage_low=1.0, leverage_medium=3.0, leverage_high=5.0,
)  # fmt: skip


def facts(**over: Any) -> VenueFacts:
    base: dict[str, Any] = dict(
        signer=AGENT, account=MASTER, api_wallets=(AGENT,), account_value=Decimal(1000),
        withdrawable=Decimal(1000), assets=ASSETS, open_orders=(), positions={},
    )  # fmt: skip
    base.update(over)
    return VenueFacts(**base)


def run_check(venue: VenueFacts, oms: OmsFacts | None = None, watchlist: tuple[str, ...] = ("BTC", "ETH"),
              trade: TradeConfig | None = None) -> list[tuple[str, str]]:  # fmt: skip
    rep = check(venue, oms or OmsFacts(), list(watchlist), {s: trade or TRADE for s in watchlist})
    for p in rep.problems:
        assert "\n" not in p.line
    return [(p.kind, p.line) for p in rep.problems]


def test_clean_set_up_passes_and_lists_every_symbol() -> None:
    rep = check(facts(), OmsFacts(), ["BTC", "ETH", "SOL"], {s: TRADE for s in ASSETS})
    assert rep.ok and rep.problems == ()
    assert rep.symbols == (
        "BTC: szDecimals 5, max leverage 40",
        "ETH: szDecimals 4, max leverage 25",
        "SOL: szDecimals 2, max leverage 20",
    )
    # the master's own key needs no approval (extraAgents not even read)
    assert run_check(facts(signer=MASTER, api_wallets=None)) == []


def test_signer_that_is_not_an_approved_agent() -> None:
    assert run_check(facts(api_wallets=("0x" + "33" * 20,))) == [
        ("signer", f"signer {AGENT} is not an approved API wallet of account {MASTER}: approve it from the "
                   "master account (Hyperliquid API page, or the SDK's Exchange.approve_agent) or fix "
                   "account_address in the secrets file"),
    ]  # fmt: skip


def test_agent_key_used_as_the_account_reads_no_margin() -> None:
    got = run_check(facts(signer=AGENT, account=AGENT, api_wallets=None, account_value=Decimal(0),
                          withdrawable=Decimal(0)))  # fmt: skip
    assert got == [
        ("margin", f"account {AGENT} has no margin (account value 0 USDC): if this key is an API wallet, set "
                   "account_address to the master account in the secrets file"),
    ]  # fmt: skip
    # an approved agent pointed at an empty account: the hint names account_address
    got = run_check(facts(account_value=Decimal(0), withdrawable=Decimal(0)))
    assert len(got) == 1 and "account_address must be the master account" in got[0][1]


def test_free_margin_below_the_minimum_order_unless_positions_hold_it() -> None:
    low = Decimal("9.5")
    assert run_check(facts(withdrawable=low)) == [
        ("margin", f"account {MASTER}: free margin 9.5 USDC is below the venue's minimum order value of "
                   f"{MIN_ORDER_USD} USDC"),
    ]  # fmt: skip
    known = OmsFacts(positions={"BTC": Decimal("0.1")})
    assert run_check(facts(withdrawable=low, positions={"BTC": Decimal("0.1")}), known) == []


def test_unlisted_symbol_and_leverage_above_the_venue_max() -> None:
    assert run_check(facts(), watchlist=("BTC", "NOPE")) == [
        ("symbol", "watchlist symbol NOPE is not listed by the venue")
    ]
    high = replace(TRADE, leverage_high=30.0)
    assert run_check(facts(), watchlist=("BTC", "ETH"), trade=high) == [
        ("leverage", "ETH: configured trade.leverage_high 30 exceeds the venue's max leverage 25")
    ]
    assert configured_leverage(replace(TRADE, leverage=7.0)) == (7.0, "leverage")
    # equal levels: the first key names it
    assert configured_leverage(replace(TRADE, leverage_medium=5.0)) == (5.0, "leverage_medium")


def test_open_orders_and_positions_the_oms_does_not_know() -> None:
    orders = (
        VenueOrder("BTC", 1, "0x" + "ab" * 16),  # known by cloid
        VenueOrder("ETH", 2, None),  # known by oid
        VenueOrder("SOL", 3, "0x" + "cd" * 16),  # unknown
    )
    oms = OmsFacts(
        cloids=frozenset({"0x" + "ab" * 16}), oids=frozenset({2}), positions={"BTC": Decimal("0.5")}
    )
    venue = facts(open_orders=orders, positions={"BTC": Decimal("0.5"), "SOL": Decimal("-2")})
    assert run_check(venue, oms) == [
        ("order", f"open order 3 on SOL (cloid 0x{'cd' * 16}) is not in the OMS: cancel it or wait for it "
                  "to finish"),
        ("position", "position SOL -2 on the venue, the OMS accounts for 0: close the difference or restore "
                     "the OMS file"),
    ]  # fmt: skip
    # the OMS believes in a position the venue no longer has
    got = run_check(facts(), OmsFacts(positions={"ETH": Decimal("1")}))
    assert got == [("position", "position ETH 0 on the venue, the OMS accounts for 1: close the difference or "
                                "restore the OMS file")]  # fmt: skip


def test_venue_read_failures_are_problems() -> None:
    got = run_check(facts(errors=("cannot read the open orders of account x from y: query failed",),
                          open_orders=None))  # fmt: skip
    assert got == [("venue", "cannot read the open orders of account x from y: query failed")]


def test_oms_facts_count_only_fills_of_its_intents(tmp_path: Path) -> None:
    from engine.oms import LiveOms

    path = tmp_path / "oms.db"
    assert read_oms(path) == OmsFacts(path=str(path))  # no file yet: the OMS knows nothing
    oms = LiveOms(path, client_ids=HYPERLIQUID_CLIENT_IDS)
    try:
        assert oms_facts(oms) == OmsFacts(path=str(path))
        intent, _ = oms.create_intent(Order("BTC", "open", "long", Decimal("0.1"), 1_700_000_000_000))
        oms.record_ack(intent.intent_id, oid=77, order_type="Ioc", venue_status="filled",
                       total_sz=Decimal("0.1"), done=True)  # fmt: skip
        ours = {"coin": "BTC", "px": "100", "sz": "0.1", "side": "B", "time": 1_700_000_000_100, "hash": "0x1",
                "tid": 1, "oid": 77}  # fmt: skip
        assert oms.ingest_fill(parse_fill(ours)).intent_id == intent.intent_id
        # a fill of an order placed outside the OMS (no intent explains it)
        foreign = {**ours, "coin": "SOL", "sz": "2", "side": "A", "hash": "0x2", "tid": 2, "oid": 555}
        assert oms.ingest_fill(parse_fill(foreign)).intent_id is None
        got = oms_facts(oms)
        assert read_oms(path) == got  # read-only, beside the writer
        assert oms.positions() == {"BTC": Decimal("0.1"), "SOL": Decimal("-2")}
    finally:
        oms.close()
    # the foreign (unmatched) fill is not an OMS position: it is what the venue shows beyond it
    assert got == OmsFacts(cloids=frozenset({intent.cloid}), oids=frozenset({77}),
                           positions={"BTC": Decimal("0.1")}, path=str(path))  # fmt: skip
    assert read_oms(path) == got  # and after the writer has gone


def test_read_oms_on_files_no_oms_wrote(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE oms_intents (x)")  # not the OMS's tables
    conn.close()
    for path in (empty, other):
        before = path.read_bytes()
        assert read_oms(path) == OmsFacts(path=str(path))
        assert path.read_bytes() == before  # read-only: nothing created


# ---- tools/preflight.py, run alone, against the local exchange ---------------------------------


def _tool(
    tmp_path: Path, url: str, secrets: dict[str, str], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(secrets))
    path.chmod(0o600)
    config = tmp_path / "strategy.yaml"
    if not config.exists():
        config.write_text("global:\n  engine:\n    interval: 5m\n")
    full = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
    full.update(
        AI_QUANT_MODE="live", AI_QUANT_SECRETS_PATH=str(path), AI_QUANT_EXCHANGE_URL=url,
        AI_QUANT_STRATEGY_YAML=str(config), AI_QUANT_SYMBOLS="BTC,ETH,SOL", AI_QUANT_DATA_DIR=str(tmp_path / "data"),
    )  # fmt: skip
    full.update(env)
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "preflight.py"), *args], cwd=REPO, env=full, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def _problems(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("PROBLEM: ") for line in r.stdout.splitlines() if line.startswith("PROBLEM: ")]


@pytest.mark.slow
def test_tool_passes_an_approved_agent_and_names_each_mistake(
    sim: SimServer, wallet: LocalAccount, tmp_path: Path
) -> None:
    resp, agent_key = Exchange(wallet, sim.base_url).approve_agent("bot")
    assert resp["status"] == "ok", resp
    agent = Account.from_key(agent_key)
    master = wallet.address.lower()
    ok = _tool(tmp_path, sim.base_url, {"secret_key": agent_key, "account_address": wallet.address})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok: BTC: szDecimals 5, max leverage 40" in ok.stdout and "pre-flight: no problem" in ok.stdout
    assert agent_key.removeprefix("0x") not in ok.stdout + ok.stderr

    # the agent's key used as the account (no account_address): the most common mistake
    r = _tool(tmp_path, sim.base_url, {"secret_key": agent_key})
    assert r.returncode == 1
    assert _problems(r) == [
        f"account {agent.address.lower()} has no margin (account value 0 USDC): if this key is an API wallet, "
        "set account_address to the master account in the secrets file"
    ]

    # a key that was never approved, an unlisted symbol, a leverage the venue does not allow, and an
    # order and a position placed outside the OMS: one line each
    stranger = new_wallet()
    outside = Exchange(agent, sim.base_url, account_address=wallet.address)
    assert "filled" in outside.market_open("ETH", True, 0.05)["response"]["data"]["statuses"][0]
    mid = float(outside.info.all_mids()["SOL"])
    rest = outside.order("SOL", True, 1.0, round(mid * 0.8, 2), {"limit": {"tif": "Gtc"}})
    oid = rest["response"]["data"]["statuses"][0]["resting"]["oid"]
    (tmp_path / "strategy.yaml").write_text(
        "global:\n  engine:\n    interval: 5m\n  trade:\n    leverage_high: 30.0\n"
    )
    r = _tool(tmp_path, sim.base_url, {"secret_key": stranger.key.hex(), "account_address": wallet.address},
              AI_QUANT_SYMBOLS="BTC,ETH,NOPE")  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert _problems(r) == [
        f"signer {stranger.address.lower()} is not an approved API wallet of account {master}: approve it from "
        "the master account (Hyperliquid API page, or the SDK's Exchange.approve_agent) or fix account_address "
        "in the secrets file",
        "ETH: configured trade.leverage_high 30 exceeds the venue's max leverage 25",
        "watchlist symbol NOPE is not listed by the venue",
        f"open order {oid} on SOL (cloid none) is not in the OMS: cancel it or wait for it to finish",
        "position ETH 0.05 on the venue, the OMS accounts for 0: close the difference or restore the OMS file",
    ]
    assert r.stdout.rstrip().endswith("pre-flight: 5 problem(s)")
    js = _tool(tmp_path, sim.base_url, {"secret_key": agent_key, "account_address": wallet.address}, "--json")
    rep = json.loads(js.stdout)
    assert js.returncode == 1 and rep["signer"] == agent.address.lower() and rep["account"] == master
    assert [p["kind"] for p in rep["problems"]] == ["leverage", "leverage", "order", "position"]  # ETH, SOL


def test_tool_refuses_bad_input_with_one_line(sim: SimServer, tmp_path: Path) -> None:
    r = _tool(tmp_path, sim.base_url, {"secret_key": "0x" + "ab" * 32, "account_address": "0x1234"})
    assert r.returncode == 2 and r.stdout == ""
    assert (
        r.stderr.strip().count("\n") == 0
        and "account_address is not a 0x-prefixed 40-hex address" in r.stderr
    )
