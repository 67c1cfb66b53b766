"""Where aksfw sends a credential: the one spelling of Panorama's address (the API key) and
of the Function App's (the function key, `aksfw status`, `replay`, `uninstall`) that every
caller normalises to, so no spelling can send a key to another origin than the one that
reads as configured. Pure code: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from aksfw_core.errors import InputError

_HOST_NAME_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_LOOPBACK_NAMES = ("localhost",)


def panorama_url(text: str) -> str:
    """Normalise `host[:port]`, `https://host[:port]` or `http://host[:port]` to a base URL.

    The host is a DNS name or an IP address (IPv6 in brackets); nothing else may be in it:
    no user information, path, query or fragment, so no spelling can send the API key to
    another origin than the one that reads as configured.

    Raises:
        InputError: anything else, saying what is wrong.
    """
    candidate = text.strip()
    if not candidate or any(c.isspace() or not c.isprintable() or c == "\\" for c in candidate):
        raise InputError("Panorama address must be host[:port] or http(s)://host[:port]")
    if "://" not in candidate:
        candidate = "https://" + candidate
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https"):
        raise InputError("Panorama address must use https:// (or http:// for a simulator)")
    if "@" in parts.netloc:
        raise InputError("Panorama address must not carry user information")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in candidate:
        raise InputError("Panorama address must not carry a path, a query or a fragment")
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME_RE.fullmatch(host) or parts.netloc.startswith("["):
            raise InputError(f"Panorama address has an invalid host name {host[:80]!r}") from None
    try:
        port = parts.port
    except ValueError:
        raise InputError("Panorama address has an invalid port") from None
    if port == 0:
        raise InputError("Panorama address has an invalid port")
    return f"{parts.scheme}://{parts.netloc}"


def app_url(text: str) -> str:
    """`https://host[:port]` (or `http://` to this machine) as the base of the Function
    App's API; a bare `host[:port]` is HTTPS, a trailing `/api` is dropped.

    Raises:
        InputError: another scheme, plain HTTP to another machine, user information, a
            path, a query, a fragment or an invalid port (naming `--app`).
    """
    candidate = text.strip()
    if not candidate or any(c.isspace() or not c.isprintable() for c in candidate):
        raise InputError("--app must be https://host[:port]")
    if "://" not in candidate:
        candidate = "https://" + candidate
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("--app must be https://host[:port]")
    if "@" in parts.netloc:
        raise InputError("--app must not carry user information")
    if parts.path not in ("", "/", "/api", "/api/") or parts.query or parts.fragment:
        raise InputError("--app must not carry a path, a query or a fragment")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise InputError("--app has an invalid port")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InputError("--app must use https:// (http:// only to this machine)")
    return f"{parts.scheme}://{parts.netloc}"


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
