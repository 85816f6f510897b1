"""``POST /exchange``: envelope parsing, signature and nonce checks, action dispatch (protocol section 3, 6).

L1 actions are handled here; user-signed ones (approveAgent, withdraw3, usdSend, usdClassTransfer)
in user_actions.py.
"""

from __future__ import annotations

from typing import Any

from . import user_actions
from .matching import ActionError
from .signing import USER_SIGNED_TYPES, SignatureError, recover_l1_signer
from .state import Venue
from .user_actions import master_of
from .validation import DESERIALIZE_ERROR, InfoError

L1_ACTIONS = {
    "order",
    "cancel",
    "cancelByCloid",
    "modify",
    "batchModify",
    "updateLeverage",
    "scheduleCancel",
    "noop",
}


def ok(kind: str, statuses: list[Any] | None = None) -> dict[str, Any]:
    if statuses is None:
        return {"status": "ok", "response": {"type": kind}}
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def err(msg: str) -> dict[str, Any]:
    return {"status": "err", "response": msg}


def _opt_int(x: Any) -> int | None:
    if x is None:
        return None
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise InfoError(DESERIALIZE_ERROR)
    return x


def handle(v: Venue, body: Any, wall_now: int) -> dict[str, Any]:
    """Answer one ``/exchange`` body. Raises :class:`InfoError` (HTTP 422) for an unparseable envelope."""
    if not isinstance(body, dict):
        raise InfoError(DESERIALIZE_ERROR)
    action = body.get("action")
    nonce = body.get("nonce")
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise InfoError(f"{DESERIALIZE_ERROR}: action")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce < 2**64:
        raise InfoError(f"{DESERIALIZE_ERROR}: nonce")
    kind = action["type"]
    if kind not in L1_ACTIONS and kind not in USER_SIGNED_TYPES:
        raise InfoError(f"{DESERIALIZE_ERROR}: unknown variant `{kind}`")
    vault = body.get("vaultAddress")
    if vault is not None and (not isinstance(vault, str) or len(vault.removeprefix("0x")) != 40):
        raise InfoError(f"{DESERIALIZE_ERROR}: vaultAddress")
    expires_after = _opt_int(body.get("expiresAfter"))
    if kind in USER_SIGNED_TYPES:
        return user_actions.handle(v, body, nonce, vault, expires_after, wall_now)

    accounts = v.engine.accounts
    signer: str | None = None
    try:
        for source in v.signature_sources:
            cand = recover_l1_signer(action, body.get("signature"), vault, nonce, expires_after, source)
            if signer is None:
                signer = cand
            if cand in accounts or master_of(accounts, cand, wall_now) is not None:
                signer = cand
                break
    except SignatureError as exc:
        return err(str(exc))
    assert signer is not None
    if expires_after is not None and expires_after < wall_now:
        return err("Action already expired")
    # An approved API wallet acts for its master (checked first: an agent key never trades for itself).
    acct = master_of(accounts, signer, wall_now) or accounts.get(signer)
    if acct is None:
        return err(f"User or API Wallet {signer} does not exist.")
    if vault is not None:
        return err(f"Vault not registered: {vault.lower()}")
    nerr = v.nonces.check_and_use(signer, nonce, wall_now)  # nonces are kept per signer (section 12.1)
    if nerr is not None:
        return err(nerr)
    if v.store is not None:
        v.store.dirty_signers.add(signer)
    acct.n_requests += 1
    v.engine.dirty_accounts.add(acct.address)
    try:
        return _dispatch(v, acct.address, action, wall_now)
    except ActionError as exc:
        return err(str(exc))


def _dispatch(v: Venue, user: str, action: dict[str, Any], wall_now: int) -> dict[str, Any]:
    e = v.engine
    kind = action["type"]
    if kind == "order":
        orders = action.get("orders")
        reject = None
        if isinstance(orders, list):
            reject = v.faults.reject_order()
        if reject is not None:
            assert isinstance(orders, list)
            return ok("order", [{"error": reject} for _ in orders])
        statuses = e.place_orders(user, orders, action.get("grouping", "na"))
        return ok("order", statuses)
    if kind in ("cancel", "cancelByCloid"):
        return ok("cancel", e.cancel(user, action.get("cancels"), kind == "cancelByCloid"))
    if kind == "batchModify":
        statuses = e.modify(user, action.get("modifies"))
        return ok("order", statuses)
    if kind == "modify":
        statuses = e.modify(user, [{"oid": action.get("oid"), "order": action.get("order")}])
        first = statuses[0] if statuses else None
        if isinstance(first, dict) and "error" in first:
            return err(str(first["error"]))
        return ok("default")
    if kind == "updateLeverage":
        e.update_leverage(user, action.get("asset"), action.get("isCross"), action.get("leverage"))
        return ok("default")
    if kind == "scheduleCancel":
        e.schedule_cancel(user, action.get("time"), wall_now)
        return ok("default")
    return ok("default")  # noop: the nonce is now used
