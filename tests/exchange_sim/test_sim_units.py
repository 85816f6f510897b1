"""Pure-function tests: tick/lot rules, number format, nonces, signature recovery, price path, book."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest
from eth_account import Account
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action, sign_l1_action

from exchange.sim import rules
from exchange.sim.book import BookParams, synthetic_levels
from exchange.sim.clock import Clock
from exchange.sim.data import Bars, Funding
from exchange.sim.market import Asset, Market
from exchange.sim.nonces import NonceTracker
from exchange.sim.numfmt import fmt, fmt_usd
from exchange.sim.signing import action_hash, recover_l1_signer

TEST_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
DOC_ACTION = {
    "type": "order",
    "orders": [
        {
            "a": 1,
            "b": True,
            "p": "1100",
            "s": "0.2",
            "r": False,
            "t": {"limit": {"tif": "Gtc"}},
            "c": "0x" + "0" * 31 + "1",
        }
    ],
    "grouping": "na",
}


@pytest.mark.parametrize(
    ("px", "szd", "err"),
    [
        ("1234.5", 1, None),
        ("1234.56", 1, rules.ERR_TICK),
        ("0.001234", 0, None),
        ("0.0012345", 0, rules.ERR_INVALID_PRICE),
        ("0.01234", 1, None),
        ("0.012345", 1, rules.ERR_INVALID_PRICE),
        ("123456", 5, None),
        ("12345.6", 5, rules.ERR_TICK),
        ("30135", 5, None),
        ("0", 2, rules.ERR_INVALID_PRICE),
    ],
)
def test_price_rules(px: str, szd: int, err: str | None) -> None:
    assert rules.price_error(D(px), szd) == err


def test_size_rules() -> None:
    assert rules.size_error(D("1.001"), 3) is None
    assert rules.size_error(D("1.0001"), 3) == rules.ERR_INVALID_SIZE
    assert rules.size_error(D("0"), 3) == rules.ERR_INVALID_SIZE


def test_round_price_always_valid() -> None:
    for px in ("82765.37", "1903.951", "26.51634", "0.06927713", "9.99999", "123456.7"):
        for szd in (0, 1, 2, 4, 5):
            r = rules.round_price(D(px), szd)
            assert rules.price_error(r, szd) is None, (px, szd, r)


def test_fmt_like_venue() -> None:
    assert fmt(D("30135")) == "30135.0"
    assert fmt(D("0")) == "0.0"
    assert fmt(D("0.001565")) == "0.001565"
    assert fmt(D("1E+1")) == "10.0"
    assert fmt_usd(D("1.23456789")) == "1.234568"


def test_signing_golden_vectors() -> None:
    """Protocol reference 4.3: the extra vector computed with the SDK."""
    assert action_hash(DOC_ACTION, None, 1_700_000_000_000, None).hex() == (
        "f0a06a60cc8195780b59c67014c7778dad8bb41f1f8d5c1c3e1be81cae0faebd"
    )
    assert action_hash(DOC_ACTION, None, 1_700_000_000_000, 1_700_000_060_000).hex() == (
        "d6c691a6f285b696e4c83cd336ff55cb7a2545922507d124bac9a0749170e5ca"
    )
    assert action_hash(
        DOC_ACTION, "0x1719884eb866cb12b2287399b15f7db5e7d775ea", 1_700_000_000_000, None
    ).hex() == ("0140423892773f61055665257b2c91b66b4448b30f3c3f443460e62c743181ce")
    sig = {
        "r": "0x78ff2a80a0a8e0f0785dee29fb8025eb7ece27af0c879e7a61f2c5a4f42a7569",
        "s": "0x5350331728ef01eb62f037bf249717e4f6e48b2855f4133f2bddd7723e2d1c0a",
        "v": 28,
    }
    addr = "0x14791697260e4c9a71f18484c9f997b308e59325"
    assert recover_l1_signer(DOC_ACTION, sig, None, 1_700_000_000_000, None, "b") == addr
    assert recover_l1_signer(DOC_ACTION, sig, None, 1_700_000_000_000, None, "a") != addr


def test_recovery_matches_sdk_with_unpadded_hex() -> None:
    wallet = Account.from_key(TEST_KEY)
    for nonce in range(1_700_000_000_000, 1_700_000_000_020):
        for vault, exp in ((None, None), ("0x1719884eb866cb12b2287399b15f7db5e7d775ea", 1_700_000_100_000)):
            sig = sign_l1_action(wallet, DOC_ACTION, vault, nonce, exp, False)
            ours = recover_l1_signer(DOC_ACTION, sig, vault, nonce, exp, "b")
            theirs = recover_agent_or_user_from_l1_action(DOC_ACTION, sig, vault, nonce, exp, False)
            assert ours == theirs.lower() == wallet.address.lower()
            padded = {"r": "0x" + sig["r"][2:].zfill(64), "s": "0x" + sig["s"][2:].zfill(64), "v": sig["v"]}
            assert recover_l1_signer(DOC_ACTION, padded, vault, nonce, exp, "b") == ours


def test_nonce_rules() -> None:
    now = 1_700_000_000_000
    n = NonceTracker()
    assert n.check_and_use("u", now, now) is None
    assert n.check_and_use("u", now, now) == f"Invalid nonce: duplicate nonce {now}"
    assert n.check_and_use("u", now - 3 * 86_400_000, now).startswith("Invalid nonce: nonce too low")
    assert n.check_and_use("u", now + 2 * 86_400_000, now).startswith("Invalid nonce: nonce too high")
    for i in range(1, 101):
        assert n.check_and_use("u", now + i, now) is None
    # Full: 100 highest kept are now+1..now+100; anything at or below now+1 is refused.
    assert n.check_and_use("u", now, now) is not None
    assert n.check_and_use("u", now + 1, now) == f"Invalid nonce: duplicate nonce {now + 1}"
    assert n.check_and_use("u", now + 500, now) is None
    assert n.check_and_use("u", now + 1, now) == f"Invalid nonce: nonce too low {now + 1} < {now + 2}"
    assert n.check_and_use("other", now, now) is None


def _market() -> Market:
    bars = Bars(
        "X", 300_000, t=[0, 300_000], o=[100.0, 103.0], h=[105.0, 104.0], low=[99.0, 98.0], c=[103.0, 99.0]
    )
    bars.v = [10.0, 20.0]
    bars.n = [5, 6]
    return Market([Asset("X", 0, 2, 10, bars, Funding())])


def test_price_path_up_bar_goes_low_then_high() -> None:
    m = _market()
    assert m.raw_price("X", 0) == 100.0
    assert m.raw_price("X", 100_000) == 99.0
    assert m.raw_price("X", 200_000) == 105.0
    assert m.raw_price("X", 300_000) == 103.0  # next bar's open
    assert m.raw_price("X", 400_000) == 104.0  # down bar: high first
    assert m.raw_price("X", 500_000) == 98.0
    full = m.ohlcv("X", 0, 600_000)
    assert full is not None and (full.o, full.h, full.low, full.c, full.v) == (100.0, 105.0, 98.0, 99.0, 30.0)
    part = m.ohlcv("X", 0, 150_001)
    assert part is not None and part.low == 99.0 and part.h < 105.0 and part.o == 100.0


def test_synthetic_book_consistent() -> None:
    bids, asks = synthetic_levels("BTC", D("83124"), 5, BookParams(seed=1), 3)
    assert len(bids) == 20 and len(asks) == 20
    assert bids[0].px < D("83124") < asks[0].px
    assert all(a.px < b.px for a, b in itertools.pairwise(asks))
    assert all(a.px > b.px for a, b in itertools.pairwise(bids))
    assert all(
        rules.price_error(lv.px, 5) is None and rules.size_error(lv.sz, 5) is None for lv in bids + asks
    )
    again = synthetic_levels("BTC", D("83124"), 5, BookParams(seed=1), 3)
    assert again == (bids, asks)


def test_clock_modes() -> None:
    c = Clock(start_ms=1000, mode="stepped")
    assert c.now_ms() == 1000
    c.advance(500)
    assert c.now_ms() == 1500
    with pytest.raises(ValueError):
        c.set(10)
    fast = Clock(start_ms=0, speed=1000.0)
    assert fast.now_ms() >= 0


def test_recovery_matches_eth_keys_pure_backend() -> None:
    """coincurve's recovery against eth_keys' own pure-Python backend (named explicitly: with coincurve
    installed, eth_keys' default backend is coincurve itself)."""
    import random

    from eth_keys import KeyAPI
    from eth_keys.backends import NativeECCBackend

    from exchange.sim.secp256k1 import N, recover_pubkey

    native = KeyAPI(NativeECCBackend)
    rng = random.Random(1)
    for _ in range(20):
        pk = native.PrivateKey(rng.randbytes(32))
        h = rng.randbytes(32)
        sig = native.ecdsa_sign(h, pk)
        want = native.ecdsa_recover(h, sig).to_bytes()
        assert want == pk.public_key.to_bytes()
        assert recover_pubkey(h, sig.r, sig.s, sig.v) == want
        # The high-s twin of a signature recovers the same key with the other recovery id.
        assert recover_pubkey(h, sig.r, N - sig.s, 1 - sig.v) == want
        # The other recovery id gives some other key, never this one.
        assert recover_pubkey(h, sig.r, sig.s, 1 - sig.v) != want
    with pytest.raises(ValueError):
        recover_pubkey(b"\x01" * 32, 0, 1, 0)
    with pytest.raises(ValueError):
        recover_pubkey(b"\x01" * 32, 5, 1, 2)
    with pytest.raises(ValueError):
        recover_pubkey(b"\x01" * 32, 5, 1, 0)  # no curve point has x = 5
    with pytest.raises(ValueError):
        recover_pubkey(b"\x01" * 32, N, 1, 0)


def test_message_budget_refills_per_minute() -> None:
    from exchange.sim.ws_api import MessageBudget

    b = MessageBudget(120, last=0.0)  # 2 a second, bursts of 120
    assert all(b.take(0.0) for _ in range(120))
    assert not b.take(0.0)
    assert b.take(0.5) and not b.take(0.5)  # half a second refills one
    assert all(b.take(1000.0) for _ in range(120)) and not b.take(1000.0)  # never above the burst
