"""API (agent) wallets through the official SDK against the local venue (protocol sections 3.3, 4.2, 12.6).

The master approves an agent with ``Exchange.approve_agent``; the agent's L1 actions trade the
master's account; the agent cannot withdraw, transfer or approve; an unknown or replaced agent is
refused with the venue's text.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import get_timestamp_ms, sign_agent
from sim_helpers import make_config, new_wallet

from exchange.sim.harness import SimServer


def _ok(resp: Any) -> None:
    assert resp == {"status": "ok", "response": {"type": "default"}}, resp


def _approve(sim: SimServer, master: LocalAccount, name: str | None = "bot") -> LocalAccount:
    resp, key = Exchange(master, sim.base_url).approve_agent(name)
    _ok(resp)
    return Account.from_key(key)


def _balance(info: Info, who: str) -> Decimal:
    return Decimal(info.user_state(who)["marginSummary"]["accountValue"])


def test_agent_trades_for_the_master_and_is_listed(sim: SimServer, wallet: LocalAccount) -> None:
    info = Info(sim.base_url, skip_ws=True)
    agent = _approve(sim, wallet, "bot")
    agents = info.post("/info", {"type": "extraAgents", "user": wallet.address})
    assert [(a["name"], a["address"]) for a in agents] == [("bot", agent.address.lower())]
    assert isinstance(agents[0]["validUntil"], int) and agents[0]["validUntil"] > get_timestamp_ms()

    ex = Exchange(agent, sim.base_url, account_address=wallet.address)
    st = ex.market_open("ETH", True, 0.05)
    assert st["status"] == "ok" and "filled" in st["response"]["data"]["statuses"][0], st
    pos = info.user_state(wallet.address)["assetPositions"]
    assert [(p["position"]["coin"], p["position"]["szi"]) for p in pos] == [("ETH", "0.05")]
    assert [f["coin"] for f in info.user_fills(wallet.address)] == ["ETH"]
    # the agent's own address holds nothing: the common mistake reads 0 here
    assert info.user_state(agent.address)["assetPositions"] == []
    assert _balance(info, agent.address) == 0
    # market_close finds the position through account_address and closes it, signed by the agent
    closed = ex.market_close("ETH")
    assert closed is not None and "filled" in closed["response"]["data"]["statuses"][0], closed
    assert info.user_state(wallet.address)["assetPositions"] == []


def test_agent_cannot_withdraw_transfer_or_approve(sim: SimServer, wallet: LocalAccount) -> None:
    info = Info(sim.base_url, skip_ws=True)
    agent = _approve(sim, wallet, None)
    as_agent = Exchange(agent, sim.base_url, account_address=wallet.address)
    before = _balance(info, wallet.address)
    refusal = {
        "status": "err",
        "response": f"Must deposit before performing actions. User: {agent.address.lower()}",
    }
    assert as_agent.withdraw_from_bridge(50.0, agent.address) == refusal
    assert as_agent.usd_transfer(50.0, agent.address) == refusal
    assert as_agent.usd_class_transfer(50.0, False) == refusal
    assert as_agent.approve_agent("more")[0] == refusal
    assert _balance(info, wallet.address) == before
    assert (
        info.post("/info", {"type": "extraAgents", "user": wallet.address})[0]["address"]
        == agent.address.lower()
    )
    # the master's own key may move funds
    master = Exchange(wallet, sim.base_url)
    dest = new_wallet().address
    _ok(master.usd_transfer(100.0, dest))
    _ok(master.withdraw_from_bridge(50.0, wallet.address))
    assert _balance(info, wallet.address) == before - 150
    assert _balance(info, dest) == 100
    too_much = master.withdraw_from_bridge(float(before * 2), wallet.address)
    assert too_much["status"] == "err" and "Insufficient balance" in too_much["response"]


def test_unknown_and_replaced_agents_are_refused_with_the_venue_text(
    sim: SimServer, wallet: LocalAccount
) -> None:
    stranger = new_wallet()
    ex = Exchange(stranger, sim.base_url, account_address=wallet.address)
    resp = ex.market_open("SOL", True, 1.0)
    assert resp == {
        "status": "err",
        "response": f"User or API Wallet {stranger.address.lower()} does not exist.",
    }
    # approving a new unnamed agent deregisters the old unnamed one (section 12.6)
    first = _approve(sim, wallet, None)
    second = _approve(sim, wallet, None)
    old = Exchange(first, sim.base_url, account_address=wallet.address).market_open("SOL", True, 1.0)
    assert old == {"status": "err", "response": f"User or API Wallet {first.address.lower()} does not exist."}
    new = Exchange(second, sim.base_url, account_address=wallet.address).market_open("SOL", True, 1.0)
    assert "filled" in new["response"]["data"]["statuses"][0], new
    # a named agent lives beside the unnamed one
    named = _approve(sim, wallet, "ops")
    agents = Info(sim.base_url, skip_ws=True).post("/info", {"type": "extraAgents", "user": wallet.address})
    assert {(a["name"], a["address"]) for a in agents} == {
        ("", second.address.lower()),
        ("ops", named.address.lower()),
    }


def test_approval_rules(sim: SimServer, wallet: LocalAccount) -> None:
    other = new_wallet()
    sim.deposit(other.address, 1_000)

    def approve(address: str, wire_address: str | None = None, **envelope: Any) -> Any:
        nonce = get_timestamp_ms()
        action = {"type": "approveAgent", "agentAddress": address, "agentName": "", "nonce": nonce}
        sig = sign_agent(wallet, action, False)
        if wire_address is not None:
            action["agentAddress"] = wire_address
        body = {
            "action": action,
            "nonce": nonce,
            "signature": sig,
            "vaultAddress": None,
            "expiresAfter": None,
        }
        body.update(envelope)
        return requests.post(sim.base_url + "/exchange", json=body, timeout=10)

    # a funded user cannot become an agent; nor can the master itself
    r = approve(other.address).json()
    assert r["status"] == "err" and "is a user" in r["response"]
    r = approve(wallet.address).json()
    assert r["status"] == "err" and "is a user" in r["response"]
    # an agent of one master cannot be taken over by another (signed by hand: the SDK makes a fresh key)
    agent = _approve(sim, wallet, "x")
    nonce = get_timestamp_ms()
    action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "", "nonce": nonce}
    body = {"action": action, "nonce": nonce, "signature": sign_agent(other, action, False),
            "vaultAddress": None, "expiresAfter": None}  # fmt: skip
    r = requests.post(sim.base_url + "/exchange", json=body, timeout=10).json()
    assert r["status"] == "err" and "another user" in r["response"]
    # user-signed actions take no expiresAfter, and the outer nonce must equal the action's
    r = approve(new_wallet().address, expiresAfter=get_timestamp_ms() + 60_000).json()
    assert r["status"] == "err" and "expiresAfter" in r["response"]
    r = approve(new_wallet().address, nonce=get_timestamp_ms() + 5).json()
    assert r["status"] == "err" and r["response"].startswith("Invalid nonce")
    # a malformed agent address cannot be deserialized
    resp = approve(new_wallet().address, wire_address="0x1234")
    assert resp.status_code == 422


def test_nonces_are_kept_per_signer(sim: SimServer, wallet: LocalAccount) -> None:
    """The agent and its master each have their own nonce set (section 12.1)."""
    from test_sim_sdk_orders import post_signed

    agent = _approve(sim, wallet, "n")
    nonce = get_timestamp_ms() + 1000
    noop = {"type": "noop"}
    _ok(post_signed(sim, wallet, noop, nonce))
    _ok(post_signed(sim, agent, noop, nonce))
    dup = post_signed(sim, agent, noop, nonce)
    assert dup == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}


def test_agents_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "venue.sqlite"
    master = new_wallet()
    with SimServer(make_config(state_db=db)) as sim:
        sim.deposit(master.address, 10_000)
        agent = _approve(sim, master, "keep")
    with SimServer(make_config(state_db=db)) as sim:
        agents = Info(sim.base_url, skip_ws=True).post(
            "/info", {"type": "extraAgents", "user": master.address}
        )
        assert [a["address"] for a in agents] == [agent.address.lower()]
        resp = Exchange(agent, sim.base_url, account_address=master.address).market_open("ETH", False, 0.05)
        assert "filled" in resp["response"]["data"]["statuses"][0], resp


def test_expired_agent_and_wrong_chain_are_refused(sim: SimServer, wallet: LocalAccount) -> None:
    info = Info(sim.base_url, skip_ws=True)
    agent = _approve(sim, wallet, "short")

    def expire(v: Any) -> None:
        v.engine.accounts[wallet.address.lower()].agents["short"].valid_until = get_timestamp_ms() - 1

    sim.call(expire)
    assert info.post("/info", {"type": "extraAgents", "user": wallet.address}) == []
    resp = Exchange(agent, sim.base_url, account_address=wallet.address).market_open("ETH", True, 0.05)
    assert resp == {
        "status": "err",
        "response": f"User or API Wallet {agent.address.lower()} does not exist.",
    }
    # an approval signed for Mainnet does not verify on this (testnet-signing) venue: some other
    # address is recovered, and it is not a user
    nonce = get_timestamp_ms()
    action = {"type": "approveAgent", "agentAddress": new_wallet().address, "agentName": "", "nonce": nonce}
    sig = sign_agent(wallet, action, True)
    body = {"action": action, "nonce": nonce, "signature": sig, "vaultAddress": None, "expiresAfter": None}
    r = requests.post(sim.base_url + "/exchange", json=body, timeout=10).json()
    assert r["status"] == "err" and r["response"].startswith(
        "Must deposit before performing actions. User: 0x"
    )
    assert wallet.address.lower() not in r["response"]


def test_master_fund_moves_the_local_venue_does_not_model(sim: SimServer, wallet: LocalAccount) -> None:
    master = Exchange(wallet, sim.base_url)
    assert master.usd_class_transfer(10.0, False) == {
        "status": "err",
        "response": "usdClassTransfer is not supported by the local exchange (no spot wallet).",
    }
    assert master.withdraw_from_bridge(1.0, wallet.address) == {
        "status": "err",
        "response": "Withdrawal amount must exceed the 1 USDC fee.",
    }
