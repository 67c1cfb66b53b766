"""Where aksfw sends a credential: the one spelling of Panorama's address that every
caller normalises to, so no spelling can send the API key to another origin than the one
that reads as configured. Pure code: no I/O.
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
