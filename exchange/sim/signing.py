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
