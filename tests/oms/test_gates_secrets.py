"""Live gates (every combination) and the secrets loader."""

from __future__ import annotations

import itertools
import json
import os
import pickle
from pathlib import Path

import pytest

from engine.live_gates import LIVE_CONFIRM_PHRASE, evaluate_gates
from engine.secrets import KEY_ENV_VAR, Secret, SecretError, load_wallet_secrets, wallet_from

KEY = "0x" + "ab" * 32

ENABLE = [None, "", "0", "1", "true", " 1 "]
CONFIRM = [None, "", "yes", LIVE_CONFIRM_PHRASE, LIVE_CONFIRM_PHRASE.lower()]
HARD = [None, "", "0", "false", "off", "1", "true", "on", "maybe"]


@pytest.mark.parametrize(
    ("enable", "confirm", "hard", "want"), list(itertools.product(ENABLE, CONFIRM, HARD, [True, False]))
)
def test_every_gate_combination(
    enable: str | None, confirm: str | None, hard: str | None, want: bool
) -> None:
    env = {
        k: v
        for k, v in {
            "AI_QUANT_LIVE_ENABLE": enable,
            "AI_QUANT_LIVE_CONFIRM": confirm,
            "AI_QUANT_HARD_KILL_SWITCH": hard,
        }.items()
        if v is not None
    }
    d = evaluate_gates(env, want_live=want)
    expect = (
        want
        and (enable or "").strip() == "1"
        and confirm == LIVE_CONFIRM_PHRASE
        and (hard or "").strip().lower() in ("", "0", "false", "off", "no")
    )
    assert d.live_orders is expect
    assert (d.mode == "live") is expect
    assert bool(d.problems) is not expect
    assert all(LIVE_CONFIRM_PHRASE not in p for p in d.problems)


def test_secret_never_shows_its_value() -> None:
    s = Secret(KEY)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s})):
        assert KEY not in text and "ab" * 8 not in text
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s.reveal() == KEY


def test_secrets_file_refused_when_group_or_world_readable(tmp_path: Path) -> None:
    f = tmp_path / "secrets.json"
    f.write_text(json.dumps({"secret_key": KEY}))
    for mode in (0o640, 0o604, 0o644):
        f.chmod(mode)
        with pytest.raises(SecretError) as exc:
            load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(f)})
        assert KEY not in str(exc.value)
    f.chmod(0o600)
    got = load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(f)})
    assert got.key.reveal() == KEY and got.source.startswith("file:")
    assert wallet_from(got.key).address.startswith("0x")


def test_secrets_file_inside_repo_refused() -> None:
    inside = Path(__file__).resolve().parent / "tmp-secrets-inside-repo.json"
    try:
        inside.write_text(json.dumps({"secret_key": KEY}))
        inside.chmod(0o600)
        with pytest.raises(SecretError, match="inside the repository"):
            load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(inside)})
    finally:
        inside.unlink(missing_ok=True)


def test_env_key_is_popped_and_bad_keys_do_not_echo(tmp_path: Path) -> None:
    env = {"AI_QUANT_SECRETS_PATH": str(tmp_path / "missing.json"), KEY_ENV_VAR: KEY}
    got = load_wallet_secrets(env)
    assert got.source == "env" and KEY_ENV_VAR not in env
    bad = "0x" + "zz" * 32
    with pytest.raises(SecretError) as exc:
        load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(tmp_path / "missing.json"), KEY_ENV_VAR: bad})
    assert bad not in str(exc.value)
    with pytest.raises(SecretError):
        load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(tmp_path / "missing.json")})
    assert os.environ.get(KEY_ENV_VAR) is None


def test_account_address_must_be_an_address_and_is_never_echoed(tmp_path: Path) -> None:
    """An agent key with the master's address is the recommended set-up; a mangled address (or a key
    pasted into the wrong field) is refused with one line that does not repeat the value."""
    path = tmp_path / "secrets.json"
    master = "0x" + "Ab" * 20
    path.write_text(json.dumps({"secret_key": KEY, "account_address": master}))
    path.chmod(0o600)
    got = load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(path)})
    assert got.account_address == master.lower() and got.key == Secret(KEY)
    for bad in (KEY, "0x1234", "master", True):
        path.write_text(json.dumps({"secret_key": KEY, "account_address": bad}))
        with pytest.raises(SecretError) as exc:
            load_wallet_secrets({"AI_QUANT_SECRETS_PATH": str(path)})
        assert "account_address is not a 0x-prefixed 40-hex address" in str(exc.value)
        assert str(bad) not in str(exc.value)
