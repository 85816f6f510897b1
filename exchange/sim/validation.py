"""What the request handlers (``/info``, ``/exchange``, ``/ws``) share to refuse a body they cannot parse."""

from __future__ import annotations

import re
from typing import Any

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
DESERIALIZE_ERROR = "Failed to deserialize the JSON body into the target type"


class InfoError(Exception):
    """Answered as HTTP 422 text/plain, like the venue does for a body it cannot parse."""


def book_params_ok(n_sig_figs: Any, mantissa: Any) -> bool:
    """``nSigFigs`` 2|3|4|5|null; ``mantissa`` 1|2|5|null, and only with 5 (protocol section 2)."""
    if isinstance(n_sig_figs, bool) or isinstance(mantissa, bool):
        return False
    if n_sig_figs is not None and n_sig_figs not in (2, 3, 4, 5):
        return False
    if mantissa is not None and (n_sig_figs != 5 or mantissa not in (1, 2, 5)):
        return False
    # ``in`` compares by value: 5.0 would pass, the venue's integer field would not.
    return all(x is None or isinstance(x, int) for x in (n_sig_figs, mantissa))
