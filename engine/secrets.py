"""The wallet key: loaded from a secrets file outside the repository or from the environment,
held in a :class:`Secret` that never prints its value.

Sources, in order:

1. ``AI_QUANT_SECRETS_PATH`` (default ``~/.config/ai-quant/secrets.json``) if the file exists. It must
   be a regular file with mode 0600 or stricter (``engine.env.check_secrets_file``) and must not lie
   inside the repository. JSON: ``{"secret_key": "0x<64 hex>", "account_address": "0x…"}``
   (``private_key`` is accepted for ``secret_key``; ``account_address`` is optional). With an API
   (agent) wallet, ``secret_key`` is the agent's key and ``account_address`` the master account.
2. ``AI_QUANT_PRIVATE_KEY`` in the environment (removed from ``os.environ`` once read so that child
   processes do not inherit it).

Errors name the source, never the value, and are raised ``from None`` so no traceback carries it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from eth_account import Account
from eth_account.signers.local import LocalAccount

from engine.env import DEFAULT_SECRETS_PATH, EnvError, check_secrets_file

KEY_ENV_VAR = "AI_QUANT_PRIVATE_KEY"
SECRETS_PATH_VAR = "AI_QUANT_SECRETS_PATH"
REPO_ROOT = Path(__file__).resolve().parents[1]
_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


class SecretError(ValueError):
    """A secret could not be loaded; the message never contains the secret."""


class Secret:
    """A value kept out of logs, reprs, pickles and tracebacks; :meth:`reveal` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


@dataclass(frozen=True, slots=True)
class WalletSecrets:
    key: Secret
    account_address: str | None
    source: str  # "file:<path>" or "env"


def _check_key(raw: Any, source: str) -> Secret:
    if not isinstance(raw, str) or not _KEY_RE.match(raw.strip()):
        raise SecretError(f"{source}: the private key is not 32 bytes of hex")
    k = raw.strip()
    return Secret(k if k.startswith("0x") else "0x" + k)


def _inside_repo(path: Path) -> bool:
    try:
        path.resolve().relative_to(REPO_ROOT)
    except ValueError:
        return False
    return True


def load_wallet_secrets(environ: MutableMapping[str, str] | None = None) -> WalletSecrets:
    env = os.environ if environ is None else environ
    path = Path(env.get(SECRETS_PATH_VAR) or DEFAULT_SECRETS_PATH).expanduser()
    if path.exists() or path.is_symlink():
        if _inside_repo(path):
            raise SecretError(f"secrets file {path} is inside the repository; keep it outside")
        try:
            check_secrets_file(path)
        except EnvError as exc:
            raise SecretError(str(exc)) from None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            raise SecretError(f"secrets file {path} is not readable JSON") from None
        if not isinstance(data, dict):
            raise SecretError(f"secrets file {path} must hold a JSON object")
        key = _check_key(data.get("secret_key", data.get("private_key")), f"secrets file {path}")
        addr = data.get("account_address")
        if addr and (not isinstance(addr, str) or not _ADDRESS_RE.match(addr.strip())):
            # an address is not a secret, but a key pasted here by mistake is: never echo the value
            raise SecretError(f"secrets file {path}: account_address is not a 0x-prefixed 40-hex address")
        addr = addr.strip() if isinstance(addr, str) else addr
        return WalletSecrets(key, str(addr).lower() if addr else None, f"file:{path}")
    raw = env.pop(KEY_ENV_VAR, None)
    if raw is None:
        raise SecretError(f"no wallet key: neither {path} nor {KEY_ENV_VAR} is set")
    return WalletSecrets(_check_key(raw, KEY_ENV_VAR), None, "env")


def wallet_from(secret: Secret) -> LocalAccount:
    try:
        acct: LocalAccount = Account.from_key(secret.reveal())
    except Exception:
        raise SecretError("the private key was refused by eth_account") from None
    return acct
