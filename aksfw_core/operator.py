"""The command line's client for the app's own HTTP API: `GET /api/status`,
`POST /api/replay` and `POST /api/uninstall` of a deployed Function App (or of
`func start` on this machine).

The function key travels in the `x-functions-key` header only: never in the URL, a log
line or an error's text. Every request is bounded (a total deadline, a cap on the
answer's bytes), TLS is verified (certifi's CAs, or a given bundle), plain HTTP is
allowed to this machine only, and no redirect is followed, since one would carry the
key to another address. Nothing is retried: an operator runs the command again.
"""

from __future__ import annotations

import ipaddress
import json
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable, http_error
from aksfw_core.jsondoc import load_json
from aksfw_core.limits import MIB
from aksfw_core.secret import Secret
from aksfw_core.transport import connection_failure, deadline, read_capped, watch_pools

KEY_HEADER = "x-functions-key"
KEY_VARIABLE = "AKSFW_FUNCTION_KEY"
"""The environment variable the command line reads the function key from."""
CONNECT_TIMEOUT_S = 10.0
"""Seconds to open a connection to the Function App."""
DEADLINE_S = 240.0
"""Seconds one whole request may take: Azure's front end ends an HTTP trigger after 230."""
MAX_RESPONSE_BYTES = 16 * MIB
"""Bytes of one answer at most (a replay report of the largest call is far smaller)."""
_ERROR_TEXT_CHARS = 300
_LOOPBACK_NAMES = ("localhost",)


def app_url(text: str) -> str:
    """`https://host[:port]` (or `http://` to this machine) as the base of the API.

    Raises:
        InputError: another scheme, user information, a path, a query or a fragment.
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


class AppClient:
    """Calls one Function App's HTTP routes with a function key."""

    def __init__(self, url: str, key: Secret | None, ca_bundle: str | None = None) -> None:
        """Raises:
        InputError: `url` is not a usable address (`app_url`)."""
        self._base = app_url(url)
        self._host = urlsplit(self._base).netloc
        self._key = key
        self._manager = urllib3.PoolManager(
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=DEADLINE_S),
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_bundle or certifi.where(),
        )
        watch_pools(self._manager)

    def status(self) -> Any:
        """`GET /api/status`.

        Raises:
            AuthError: the function key was refused (or none was given and one is needed).
            InputError: the app refused the request as wrong (HTTP 400, 404, 413).
            Retryable, NonRetryable: the app could not be reached, failed, or did not
                answer with JSON.
        """
        return self._call("GET", "status", None)

    def replay(self, queue: str | None, dry_run: bool, most: int | None) -> Any:
        """`POST /api/replay`. Raises as `status`."""
        body: dict[str, Any] = {"dryRun": dry_run}
        if queue is not None:
            body["queue"] = queue
        if most is not None:
            body["max"] = most
        return self._call("POST", "replay", body)

    def uninstall(self, dry_run: bool) -> Any:
        """`POST /api/uninstall`: queue a tombstone for every (cluster, target) aksfw
        applied tags to (or, with `dry_run`, say which). Raises as `status`."""
        return self._call("POST", "uninstall", {"dryRun": dry_run})

    def close(self) -> None:
        self._manager.clear()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, route: str, body: dict[str, Any] | None) -> Any:
        what = f"{method} /api/{route} on {self._host}"
        headers = {"Accept": "application/json"}
        if self._key is not None:
            headers[KEY_HEADER] = self._key.reveal()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            with deadline(DEADLINE_S, what):
                response = self._manager.request(
                    method,
                    f"{self._base}/api/{route}",
                    body=data,
                    headers=headers,
                    redirect=False,
                    preload_content=False,
                )
                try:
                    answer = read_capped(response.stream(64 * 1024), MAX_RESPONSE_BYTES, what)
                finally:
                    response.release_conn()
        except SSLError:
            raise NonRetryable(f"{what}: TLS verification failed") from None
        except NewConnectionError as error:
            if isinstance(error.__cause__, ConnectionRefusedError):
                raise Retryable(f"{what}: connection refused") from None
            raise Retryable(f"{what}: cannot connect") from None
        except (ConnectTimeoutError, ReadTimeoutError):
            raise Retryable(f"{what}: no answer in time") from None
        except (HTTPError, OSError) as error:
            raise connection_failure(error, what, "the Function App") from None
        return self._read(what, response.status, answer)

    def _read(self, what: str, status: int, answer: bytes) -> Any:
        if 300 <= status < 400:
            raise NonRetryable(
                f"{what}: answered HTTP {status}, a redirect; none is followed, so the "
                "function key stays with this address: give --app the Function App's own",
                status=status,
            )
        if status in (401, 403):
            if self._key is None:
                raise AuthError(
                    f"{what}: a function key is needed (--key or {KEY_VARIABLE}) (HTTP {status})",
                    status=status,
                )
            raise AuthError(f"{what}: the function key was refused (HTTP {status})", status=status)
        try:
            document = load_json(answer, "the answer")
        except InputError:
            raise NonRetryable(
                f"{what}: answered HTTP {status} with something other than JSON: is --app "
                "the Function App's address?",
                status=status,
            ) from None
        if 200 <= status < 300:
            return document
        error = document.get("error") if isinstance(document, dict) else None
        text = " ".join(str(error or "no reason given").split())[:_ERROR_TEXT_CHARS]
        if status in (400, 404, 413):
            raise InputError(f"{what}: refused (HTTP {status}): {text}")
        raise http_error(status, f"{what}: {text}")
