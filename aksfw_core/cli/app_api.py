"""The command line's client for the app's own HTTP API: `GET /api/status`,
`POST /api/replay` and `POST /api/uninstall` of a deployed Function App (or of
`func start` on this machine), for `aksfw status`, `replay` and `uninstall`.

The function key travels in the `x-functions-key` header only: never in the URL, a log
line or an error's text. Every request is bounded (a total deadline, a cap on the
answer's bytes: `CommandLineLimits`), TLS is verified (certifi's CAs, or a given bundle),
plain HTTP is allowed to this machine only (`endpoints.app_url`), and no redirect is
followed, since one would carry the key to another address. Nothing is retried: an
operator runs the command again.
"""

from __future__ import annotations

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

from aksfw_core.endpoints import app_url
from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable, http_error
from aksfw_core.jsondoc import load_json
from aksfw_core.limits import CommandLineLimits
from aksfw_core.retry import time_left
from aksfw_core.secret import Secret
from aksfw_core.transport import connection_failure, deadline, read_capped, watch_pools

KEY_HEADER = "x-functions-key"
KEY_VARIABLE = "AKSFW_FUNCTION_KEY"
"""The environment variable the command line reads the function key from."""
_ERROR_TEXT_CHARS = 300


class AppClient:
    """Calls one Function App's HTTP routes with a function key."""

    def __init__(
        self,
        url: str,
        key: Secret | None,
        ca_bundle: str | None = None,
        limits: CommandLineLimits | None = None,
    ) -> None:
        """Raises:
        InputError: `url` is not a usable address (`endpoints.app_url`)."""
        self._base = app_url(url)
        self._host = urlsplit(self._base).netloc
        self._key = key
        self._limits = limits or CommandLineLimits()
        self._manager = urllib3.PoolManager(
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_bundle or certifi.where(),
        )
        watch_pools(self._manager)

    @property
    def url(self) -> str:
        """The app's address, as checked (`endpoints.app_url`)."""
        return self._base

    def status(self) -> Any:
        """`GET /api/status`.

        Raises:
            AuthError: the function key was refused, none was given and one is needed
                (HTTP 401), or the app refused this address (HTTP 403).
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

    def cancel_uninstall(self) -> Any:
        """`POST /api/uninstall` with `{"cancel": true}`: end an uninstall's pause of
        resyncs. Raises as `status`."""
        return self._call("POST", "uninstall", {"cancel": True})

    def close(self) -> None:
        """Release the connections."""
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
            # An overall deadline (`retry.overall_deadline`: `--timeout`) cuts each bound.
            seconds = time_left(self._limits.app_deadline_s)
            timeout = urllib3.Timeout(
                connect=time_left(self._limits.app_connect_timeout_s), read=seconds
            )
            with deadline(seconds, what):
                response = self._manager.request(
                    method,
                    f"{self._base}/api/{route}",
                    timeout=timeout,
                    body=data,
                    headers=headers,
                    redirect=False,
                    preload_content=False,
                )
                try:
                    answer = read_capped(
                        response.stream(64 * 1024), self._limits.app_max_response_bytes, what
                    )
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
        if status == 403:  # App Service refuses before the host looks at any key
            raise AuthError(
                f"{what}: refused before any function key was checked (HTTP 403): the app's "
                "access restrictions do not admit this machine's address, or the app is "
                "stopped (az functionapp config access-restriction show, az functionapp show)",
                status=status,
            )
        if status == 401:
            where = "(az functionapp keys list --resource-group RG --name APP)"
            if self._key is None:
                raise AuthError(
                    f"{what}: a function key is needed (HTTP 401): set {KEY_VARIABLE} (or "
                    f"--key) to the app's key {where}",
                    status=status,
                )
            raise AuthError(
                f"{what}: the function key was refused (HTTP 401): set {KEY_VARIABLE} (or "
                f"--key) to a key of this app {where}",
                status=status,
            )
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
