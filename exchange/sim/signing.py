"""L1 action signature verification, as the venue does it (protocol reference section 4.1).

The digest is computed here directly: msgpack(action) + nonce + vault byte (+ expiresAfter),
keccak, then the EIP-712 ``Agent`` struct under the ``Exchange`` domain (chainId 1337).
"""

from __future__ import annotations

from typing import Any

import msgpack
from eth_utils import keccak

from .secp256k1 import recover_pubkey

_DOMAIN_TYPE = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_AGENT_TYPE = keccak(b"Agent(string source,bytes32 connectionId)")
_DOMAIN_SEPARATOR = keccak(
    _DOMAIN_TYPE + keccak(b"Exchange") + keccak(b"1") + (1337).to_bytes(32, "big") + b"\x00" * 32
)

ERR_RECOVER = "Unable to recover signer."


class SignatureError(Exception):
    pass


def action_hash(action: Any, vault_address: str | None, nonce: int, expires_after: int | None) -> bytes:
    data = msgpack.packb(action)
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


def l1_digest(connection_id: bytes, source: str) -> bytes:
    struct_hash = keccak(_AGENT_TYPE + keccak(source.encode()) + connection_id)
    return keccak(b"\x19\x01" + _DOMAIN_SEPARATOR + struct_hash)


def parse_signature(sig: Any) -> tuple[int, int, int]:
    """``{"r": "0x…", "s": "0x…", "v": 27|28}``; hex may be unpadded. Returns (r, s, recovery id)."""
    if not isinstance(sig, dict):
        raise SignatureError(ERR_RECOVER)
    try:
        r = int(str(sig["r"]), 16)
        s = int(str(sig["s"]), 16)
        v = int(sig["v"])
    except (KeyError, ValueError, TypeError) as exc:
        raise SignatureError(ERR_RECOVER) from exc
    if v >= 27:
        v -= 27
    if v not in (0, 1) or not 0 < r < 2**256 or not 0 < s < 2**256:
        raise SignatureError(ERR_RECOVER)
    return r, s, v


def recover(digest: bytes, r: int, s: int, v: int) -> str:
    """Lower-case 0x address of the key that signed ``digest``."""
    try:
        pub = recover_pubkey(digest, r, s, v)
    except ValueError as exc:
        raise SignatureError(ERR_RECOVER) from exc
    return "0x" + keccak(pub)[12:].hex()


def recover_l1_signer(
    action: Any,
    signature: Any,
    vault_address: str | None,
    nonce: int,
    expires_after: int | None,
    source: str,
) -> str:
    r, s, v = parse_signature(signature)
    digest = l1_digest(action_hash(action, vault_address, nonce, expires_after), source)
    return recover(digest, r, s, v)


# ---- user-signed actions (protocol reference section 4.2) --------------------------------------

#: EIP-712 fields per user-signed action type the venue accepts: (primary type, [(name, type)]).
#: The same lists the official SDK signs with (``hyperliquid/utils/signing.py``).
USER_SIGNED_TYPES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "approveAgent": (
        "HyperliquidTransaction:ApproveAgent",
        (
            ("hyperliquidChain", "string"),
            ("agentAddress", "address"),
            ("agentName", "string"),
            ("nonce", "uint64"),
        ),
    ),
    "usdSend": (
        "HyperliquidTransaction:UsdSend",
        (("hyperliquidChain", "string"), ("destination", "string"), ("amount", "string"), ("time", "uint64")),
    ),
    "withdraw3": (
        "HyperliquidTransaction:Withdraw",
        (("hyperliquidChain", "string"), ("destination", "string"), ("amount", "string"), ("time", "uint64")),
    ),
    "usdClassTransfer": (
        "HyperliquidTransaction:UsdClassTransfer",
        (("hyperliquidChain", "string"), ("amount", "string"), ("toPerp", "bool"), ("nonce", "uint64")),
    ),
}
_USER_DOMAIN_NAME = keccak(b"HyperliquidSignTransaction")


class FieldError(Exception):
    """A user-signed action field of the wrong type (the venue cannot deserialize the body)."""


def _encode_field(kind: str, value: Any) -> bytes:
    if kind == "string":
        if not isinstance(value, str):
            raise FieldError
        return keccak(value.encode())
    if kind == "address":
        if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
            raise FieldError
        try:
            return bytes(12) + bytes.fromhex(value[2:])
        except ValueError as exc:
            raise FieldError from exc
    if kind == "uint64":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
            raise FieldError
        return value.to_bytes(32, "big")
    if kind == "bool":
        if not isinstance(value, bool):
            raise FieldError
        return int(value).to_bytes(32, "big")
    raise AssertionError(kind)


def user_signed_digest(action: dict[str, Any], chain: str) -> bytes:
    """EIP-712 digest of a user-signed action as signed for ``chain`` ("Mainnet"/"Testnet").

    Only the typed fields enter the struct hash; the domain's chainId is the action's
    ``signatureChainId``. Raises :class:`FieldError` for a missing or mistyped field.
    """
    primary, fields = USER_SIGNED_TYPES[str(action["type"])]
    chain_id_hex = action.get("signatureChainId")
    if not isinstance(chain_id_hex, str):
        raise FieldError
    try:
        chain_id = int(chain_id_hex, 16)
    except ValueError as exc:
        raise FieldError from exc
    if not 0 <= chain_id < 2**256:
        raise FieldError
    type_hash = keccak(f"{primary}({','.join(f'{t} {n}' for n, t in fields)})".encode())
    values = {**action, "hyperliquidChain": chain}
    if action["type"] == "approveAgent" and "agentName" not in action:
        values["agentName"] = ""  # the SDK signs "" and then drops the key (protocol section 3.3)
    if any(n not in values for n, _ in fields):
        raise FieldError
    struct_hash = keccak(type_hash + b"".join(_encode_field(t, values[n]) for n, t in fields))
    domain = keccak(
        _DOMAIN_TYPE + _USER_DOMAIN_NAME + keccak(b"1") + chain_id.to_bytes(32, "big") + b"\x00" * 32
    )
    return keccak(b"\x19\x01" + domain + struct_hash)


def recover_user_signer(action: dict[str, Any], signature: Any, chain: str) -> str:
    r, s, v = parse_signature(signature)
    return recover(user_signed_digest(action, chain), r, s, v)
