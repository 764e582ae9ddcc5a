"""Who may connect (pure): the ``Host``, ``Origin`` and token rules of the HTTP handshake.

The threat model is ``docs/security.md``. In short:

- **Host** (against DNS rebinding): a page on ``evil.example`` whose name the attacker
  re-points at ``127.0.0.1`` makes the browser send ``Host: evil.example:PORT`` *and*
  ``Origin: http://evil.example:PORT``, so "Origin equals Host" proves nothing. The server
  therefore accepts only the names it is known by: an IP literal it is bound to (for a
  loopback bind any of ``127.0.0.0/8`` / ``::1``; for a wildcard bind any IP literal —
  literals cannot be re-pointed), ``localhost`` when loopback is bound, the bound name
  itself, and the names configured with ``--allow-host`` (a reverse proxy's public name).
- **Origin**: absent (not a browser), in the allow-list, or the page's own origin — only
  once its ``Host`` passed the rule above.
- **Token**: given as ``?token=…`` and/or ``Authorization: Bearer …`` (the scheme is
  case-insensitive, RFC 7235). Every credential presented must be the right one: a wrong
  ``?token`` next to a right header (or the reverse) is refused, never silently ignored
  (RFC 6750 §2 forbids sending the token twice; we accept it only when both agree).

Nothing here does I/O; :class:`~streamkit.transport.server.Server` calls these per request.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "WILDCARD_HOSTS",
    "host_allowed",
    "is_loopback",
    "origin_allowed",
    "split_host",
    "token_ok",
]

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
"""Bind addresses that listen on every interface."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (all of ``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """``Host`` header → (lower-case name without brackets, port); None when malformed."""
    if not value or any(c in value for c in "@/\\?# \t"):
        return None
    try:
        parts = urlsplit("//" + value)
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name:
        return None
    return name, port


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def host_allowed(name: str, bound: str, names: Sequence[str] = ()) -> bool:
    """Whether a request whose ``Host`` is ``name`` (from :func:`split_host`) is for us.

    ``bound``: the address the server listens on; ``names``: extra names it is reached by.
    """
    name = name.lower().strip("[]")
    if name in {n.lower().strip("[]") for n in names}:
        return True
    bound_l = bound.lower().strip("[]") if bound not in WILDCARD_HOSTS else ""
    wildcard = bound in WILDCARD_HOSTS
    address = _ip(name)
    if address is not None:
        if wildcard:
            return True
        if is_loopback(bound_l):
            return address.is_loopback
        bound_ip = _ip(bound_l)
        return bound_ip is not None and address == bound_ip
    if name == "localhost":
        return wildcard or is_loopback(bound_l)
    return bool(bound_l) and _ip(bound_l) is None and name == bound_l


def origin_allowed(origin: str, host: str, allowed: Sequence[str]) -> bool:
    """``Origin`` ``origin`` for a request whose (already accepted) ``Host`` is ``host``."""
    if origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
        origin_host, origin_port = parts.hostname, parts.port
    except ValueError:
        return False
    own = split_host(host)
    if parts.scheme not in ("http", "https") or origin_host is None or own is None:
        return False
    default = 443 if parts.scheme == "https" else 80
    return (origin_host, origin_port or default) == (own[0], own[1] or default)


def token_ok(token: str | None, query: str, authorization: Sequence[str]) -> bool:
    """Whether a request carries the right token (see the module docstring).

    ``query``: the URL's query string; ``authorization``: every ``Authorization`` header.
    """
    if not token:
        return True
    given = parse_qs(query).get("token", [])
    for header in authorization:
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            given.append(credentials.strip())
    expected = token.encode()
    results = [hmac.compare_digest(g.encode("utf-8", "surrogatepass"), expected) for g in given]
    return bool(results) and all(results)
