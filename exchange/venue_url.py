"""Whether two URLs name the same venue.

They do when (TLS or not, host, port, path) agree after normalising: ``http``/``ws`` (and
``https``/``wss``) of one host:port are one venue, a trailing slash or the ``/ws`` endpoint does not
matter, the scheme's default port is implied, and ``localhost``, ``127.0.0.1`` and ``::1`` are one
host. Used to refuse a WS sidecar that streams another venue than the daemon trades on.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def venue_key(url: str) -> tuple[bool, str, int, str]:
    """(TLS, host, port, path) of a venue URL, normalised."""
    parts = urlsplit(url.strip())
    secure = parts.scheme.lower() in ("https", "wss")
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK:
        host = "loopback"
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError:
        port = -1
    path = parts.path.rstrip("/").removesuffix("/ws").rstrip("/")
    return secure, host, port, path


def same_venue(a: str, b: str) -> bool:
    return venue_key(a) == venue_key(b)


__all__ = ["same_venue", "venue_key"]
