"""The one classifier of failed venue requests: what went wrong, and what it means for the caller.

* :func:`classify` sorts an exception from the SDK or ``requests`` into a :class:`VenueProblem`:
  connection refused, TLS mismatch, host not found, timeout, rate limited (HTTP 429), another HTTP
  status, or other. The daemon prints ``problem.line()`` at start-up and logs it in the loop; the
  executor's ``QueryError`` carries it, so a 429 stays visible behind the executor's retries.
* :func:`unreachable_reason`: whether an exception (or one it was raised from) means the venue did
  not answer (no connection, a timeout, an HTTP 5xx), as opposed to a refusal or a bug.
* :func:`diagnose` puts both together as a :class:`Failure`: rate limited (back off), unreachable
  (an outage), rejected (the venue answered with an error), config (the URL is wrong) or other.

Callers above exchange/ decide on these types, never on the SDK's exception classes or status codes.
No secret travels in these lines: only the URL, the HTTP status and a short reason.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import requests
from hyperliquid.utils.error import ClientError, ServerError

Kind = Literal["refused", "tls", "dns", "timeout", "rate_limited", "http", "bad_url", "other"]

#: Kinds that a restart cannot fix: the URL in the configuration is wrong.
CONFIG_KINDS: frozenset[str] = frozenset({"tls", "bad_url"})

_WHAT: dict[str, str] = {
    "refused": "connection refused: nothing listens there (is the exchange running, on this port?)",
    "tls": "TLS handshake failed: the port speaks plain HTTP, not HTTPS (use http:// for the local exchange)",
    "dns": "host not found",
    "timeout": "no answer in time (timeout)",
    "rate_limited": "rate limited (429)",
}


@dataclass(frozen=True, slots=True)
class VenueProblem:
    kind: Kind
    url: str
    status: int | None = None
    detail: str = ""

    @property
    def config_error(self) -> bool:
        """True when the URL itself is wrong (TLS on a plain-HTTP port, a malformed URL)."""
        return self.kind in CONFIG_KINDS

    @property
    def rate_limited(self) -> bool:
        return self.kind == "rate_limited"

    def reason(self) -> str:
        if self.kind in _WHAT and not (self.kind == "tls" and self.detail):
            return _WHAT[self.kind]
        if self.kind == "http":
            return f"HTTP {self.status}" + (f": {self.detail}" if self.detail else "")
        return self.detail or self.kind

    def line(self, doing: str = "", retry_s: float | None = None) -> str:
        """``venue URL (doing): reason[: retrying in N s]``, one line."""
        where = f"venue {self.url}" + (f" ({doing})" if doing else "")
        tail = f": retrying in {retry_s:.0f} s" if retry_s is not None else ""
        return f"{where}: {self.reason()}{tail}"


def _one_line(text: object, limit: int = 160) -> str:
    return " ".join(str(text).split())[:limit]


def classify(exc: BaseException, url: str) -> VenueProblem:
    """What went wrong talking to the venue at ``url``."""
    problem = getattr(exc, "problem", None)
    if isinstance(problem, VenueProblem):
        return problem
    if isinstance(exc, ClientError):
        if exc.status_code == 429:
            return VenueProblem("rate_limited", url, 429)
        msg = exc.error_message if exc.error_message not in (None, "null") else ""
        return VenueProblem("http", url, int(exc.status_code), _one_line(msg or ""))
    if isinstance(exc, ServerError):
        return VenueProblem("http", url, int(exc.status_code), _one_line(exc.message or "")[:80])
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text or "record layer" in text:
            return VenueProblem("tls", url)
        return VenueProblem(
            "tls", url, detail="TLS error: " + _one_line(text.rsplit("(", 1)[-1].strip(")'\" "))
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return VenueProblem("timeout", url)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):  # fmt: skip
        return VenueProblem("bad_url", url, detail=f"not a usable URL ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "refused" in text.lower():
            return VenueProblem("refused", url)
        if "resolve" in text or "Name or service not known" in text or "nodename nor servname" in text:
            return VenueProblem("dns", url)
        return VenueProblem("other", url, detail="connection failed: " + _one_line(text, 120))
    return VenueProblem("other", url, detail=f"{type(exc).__name__}: {_one_line(exc, 120)}")


def venue_problem(exc: BaseException, url: str) -> VenueProblem | None:
    """:func:`classify` for a failed venue request (SDK, ``requests``, or an error that carries
    its ``problem``, like the executor's ``QueryError``); None for any other exception."""
    if isinstance(getattr(exc, "problem", None), VenueProblem) or isinstance(
        exc, (ClientError, ServerError, requests.RequestException)
    ):
        return classify(exc, url)
    return None


def unreachable_reason(exc: BaseException) -> str | None:
    """A short reason when ``exc`` (or an exception it was raised from) means the venue did not
    answer: a refused or broken connection, a timeout, a name that does not resolve, an HTTP 5xx.
    None for anything else (a 4xx, a 429, bad data, a bug, a sidecar failure)."""
    from exchange.sidecar import SidecarError, SidecarTimeout, SidecarUnavailable

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, SidecarUnavailable | SidecarTimeout | SidecarError):
            return None
        status = getattr(cur, "status_code", None)
        if isinstance(status, int) and status >= 500:
            return f"HTTP {status}"
        if isinstance(
            cur,
            requests.exceptions.ConnectionError
            | requests.exceptions.Timeout
            | ConnectionError
            | TimeoutError
            | socket.gaierror,
        ):
            return type(cur).__name__
        cur = cur.__cause__ or cur.__context__
    return None


class Failure(StrEnum):
    """What a failed venue request means for the caller."""

    RATE_LIMITED = "rate_limited"  # HTTP 429: the weight budget is spent; back off, then retry
    UNREACHABLE = "unreachable"  # no answer: connection refused or broken, timeout, DNS, HTTP 5xx
    REJECTED = "rejected"  # the venue answered with an error (an HTTP 4xx but 429)
    CONFIG = "config"  # the URL itself is wrong (a malformed URL)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One failed venue request, classified once. ``problem`` is the operator's line (None when
    only an exception deep in the chain was the venue's, e.g. a dropped socket); ``unreachable`` is
    the short reason when the venue did not answer."""

    failure: Failure
    problem: VenueProblem | None
    unreachable: str | None

    def line(self, doing: str = "", retry_s: float | None = None) -> str:
        if self.problem is not None:
            return self.problem.line(doing, retry_s)
        return f"venue unreachable ({self.unreachable})"


def diagnose(exc: BaseException, url: str) -> Diagnosis | None:
    """:class:`Diagnosis` of ``exc`` from a request to the venue at ``url``; None when it is not a
    venue failure (a bug, bad data, a sidecar failure). A 429 is rate limited before anything else;
    an exception chain that holds an unanswered request is unreachable."""
    problem = venue_problem(exc, url)
    reason = unreachable_reason(exc)
    if problem is not None and problem.rate_limited:
        return Diagnosis(Failure.RATE_LIMITED, problem, reason)
    if reason is not None:
        return Diagnosis(Failure.UNREACHABLE, problem, reason)
    if problem is None:
        return None
    if problem.kind == "http" and problem.status is not None and problem.status < 500:
        return Diagnosis(Failure.REJECTED, problem, None)
    return Diagnosis(Failure.CONFIG if problem.config_error else Failure.OTHER, problem, None)


__all__ = [
    "CONFIG_KINDS",
    "Diagnosis",
    "Failure",
    "Kind",
    "VenueProblem",
    "classify",
    "diagnose",
    "unreachable_reason",
    "venue_problem",
]
