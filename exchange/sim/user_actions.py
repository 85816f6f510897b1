"""API (agent) wallets and the user-signed actions (protocol reference sections 3.3, 4.2, 12.6).

A master account approves an agent with ``approveAgent`` (user-signed by the master). L1 actions the
agent signs then apply to the master's account (:func:`master_of`); user-signed actions (withdraw,
transfers, approving agents) are accepted only from the master's own key, so an agent can trade
but never move funds. Where the protocol reference gives no rule, the strict choice is made here
and listed in docs/local-exchange.md.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .accounts import Account, Agent
from .data import DAY_MS
from .matching import ActionError
from .numfmt import parse_decimal
from .signing import USER_SIGNED_TYPES, FieldError, SignatureError, recover_user_signer
from .state import Venue
from .validation import ADDRESS_RE, DESERIALIZE_ERROR, InfoError

#: How long an approval lasts (local choice: the venue reports a ``validUntil`` per agent, and the
#: values it returns lie months after the approval; an expired agent is refused like an unknown one).
AGENT_VALID_MS = 180 * DAY_MS
WITHDRAW_FEE = Decimal(1)  # USDC, protocol reference section 3.3


def master_of(accounts: dict[str, Account], address: str, wall_now: int) -> Account | None:
    """The account ``address`` is an unexpired agent of, if any."""
    for acct in accounts.values():
        for a in acct.agents.values():
            if a.address == address and a.valid_until > wall_now:
                return acct
    return None


def _err(msg: str) -> dict[str, Any]:
    return {"status": "err", "response": msg}


def _recover(v: Venue, action: dict[str, Any], signature: Any) -> str:
    """The signer, trying each chain the venue accepts; the first candidate that is an account wins."""
    chains = ["Testnet", "Mainnet"] if "a" in v.signature_sources else ["Testnet"]
    signer: str | None = None
    for chain in chains:
        cand = recover_user_signer(action, signature, chain)
        if signer is None:
            signer = cand
        if cand in v.engine.accounts:
            return cand
    assert signer is not None
    return signer


def handle(
    v: Venue,
    body: dict[str, Any],
    nonce: int,
    vault: str | None,
    expires_after: int | None,
    wall_now: int,
) -> dict[str, Any]:
    """Answer one user-signed action (``action.type`` in :data:`USER_SIGNED_TYPES`)."""
    action: dict[str, Any] = body["action"]
    kind = str(action["type"])
    if not isinstance(action.get("hyperliquidChain"), str):
        raise InfoError(f"{DESERIALIZE_ERROR}: hyperliquidChain")
    try:
        signer = _recover(v, action, body.get("signature"))
    except FieldError:
        raise InfoError(f"{DESERIALIZE_ERROR}: {kind}") from None
    except SignatureError as exc:
        return _err(str(exc))
    accounts = v.engine.accounts
    acct = accounts.get(signer)
    # An agent's key is not a user: it may not withdraw, transfer or approve (the venue's text for a
    # user-signed action from an address that is not a funded user).
    if acct is None or master_of(accounts, signer, wall_now) is not None:
        return _err(f"Must deposit before performing actions. User: {signer}")
    if expires_after is not None:
        return _err("expiresAfter is not supported on user-signed actions")
    if vault is not None:
        return _err(f"Vault not registered: {vault.lower()}")
    inner = action.get("time" if kind in ("usdSend", "withdraw3") else "nonce")
    if inner != nonce:
        return _err(f"Invalid nonce: the action's nonce {inner} must equal the request nonce {nonce}")
    nerr = v.nonces.check_and_use(signer, nonce, wall_now)
    if nerr is not None:
        return _err(nerr)
    if v.store is not None:
        v.store.dirty_signers.add(signer)
    acct.n_requests += 1
    v.engine.dirty_accounts.add(signer)
    try:
        _dispatch(v, acct, action, wall_now)
    except ActionError as exc:
        return _err(str(exc))
    return {"status": "ok", "response": {"type": "default"}}


def _amount(action: dict[str, Any]) -> Decimal:
    amount = parse_decimal(action.get("amount"))
    if amount is None or amount <= 0:
        raise InfoError(f"{DESERIALIZE_ERROR}: amount")
    return amount


def _withdrawable(v: Venue, acct: Account) -> Decimal:
    return Decimal(str(v.engine.clearinghouse_state(acct.address)["withdrawable"]))


def _dispatch(v: Venue, acct: Account, action: dict[str, Any], wall_now: int) -> None:
    kind = action["type"]
    if kind == "approveAgent":
        approve(v.engine.accounts, acct, action, wall_now)
    elif kind in ("withdraw3", "usdSend"):
        amount = _amount(action)
        dest = action.get("destination")
        if not isinstance(dest, str) or not ADDRESS_RE.match(dest):
            raise InfoError(f"{DESERIALIZE_ERROR}: destination")
        if kind == "withdraw3" and amount <= WITHDRAW_FEE:
            raise ActionError(f"Withdrawal amount must exceed the {WITHDRAW_FEE} USDC fee.")
        if amount > _withdrawable(v, acct):
            raise ActionError("Insufficient balance for withdrawal or transfer.")
        acct.balance -= amount
        if kind == "usdSend":
            v.engine.deposit(dest, amount)
    else:  # usdClassTransfer: the local venue has no spot wallet to move USDC to or from
        raise ActionError(f"{kind} is not supported by the local exchange (no spot wallet).")


def approve(accounts: dict[str, Account], master: Account, action: dict[str, Any], wall_now: int) -> None:
    """Register (or replace) an agent of ``master``: one per name, the unnamed one included."""
    addr = str(action["agentAddress"]).lower()
    name = str(action.get("agentName") or "")
    if addr == master.address or addr in accounts:
        raise ActionError(f"Agent address {addr} is a user; an API wallet must be a fresh address.")
    for other in accounts.values():
        if other is not master and any(a.address == addr for a in other.agents.values()):
            raise ActionError(f"Agent address {addr} is already an API wallet of another user.")
    for n, a in list(master.agents.items()):
        if a.address == addr:
            del master.agents[n]  # the same key approved again: it moves to the new name
    master.agents[name] = Agent(addr, name, wall_now + AGENT_VALID_MS)


__all__ = ["AGENT_VALID_MS", "USER_SIGNED_TYPES", "approve", "handle", "master_of"]
