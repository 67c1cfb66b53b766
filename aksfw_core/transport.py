"""What every outside call has in common: azure-core failures classified by the one rule
(`errors.http_error`), a total deadline per request that a drip-feeding server cannot
stretch, and a cap on the bytes of an answer.

The deadline works below the HTTP libraries: connections made through a pool manager
that `watch_pools` has prepared register their socket with the deadline active in the
calling thread; when it passes, a timer shuts those sockets down, so whatever read or
write is blocked returns at once, however the server paces its bytes.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection

from aksfw_core.errors import AuthError, NonRetryable, Retryable, http_error, retry_after_seconds


class DeadlineExceeded(Retryable):
    """A request did not complete within its total deadline."""


class ResponseTooLarge(NonRetryable):
    """An answer was larger than its cap: asking again would bring the same."""


# ----------------------------------------------------------------------- Azure SDKs


@contextmanager
def azure_errors(what: str, service: str) -> Iterator[None]:
    """Translate azure-core exceptions (Resource Manager, Key Vault, Storage) raised in the
    block with `http_error`. A 404 is left to the caller (`ResourceNotFoundError`) when it
    catches it inside the block; otherwise it is a `NonRetryable` with status 404.

    Raises:
        AuthError, Retryable, NonRetryable: as `http_error` classifies the status.
    """
    try:
        yield
    except ClientAuthenticationError as error:
        status = error.status_code or 401
        raise AuthError(f"{what}: {service} refused the credential", status=status) from None
    except HttpResponseError as error:
        response: Any = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or {}
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        raise http_error(error.status_code or 0, f"{what}: {service}", retry_after) from None
    except (ServiceRequestError, ServiceResponseError) as error:
        kind = type(error).__name__
        raise Retryable(f"{what}: {service} unreachable ({kind})") from None


# ----------------------------------------------------------------------- deadlines


class _Watch:
    """The sockets one deadline guards, and whether it has passed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for TLS sockets: it acts on the descriptor without
    # touching the TLS object another thread is reading with.
    with suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_active = threading.local()


def _watch(sock: socket.socket | None) -> None:
    watch: _Watch | None = getattr(_active, "watch", None)
    if watch is not None:
        watch.add(sock)


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Bound everything the block sends and receives through watched pools to `seconds`
    in total.

    Raises:
        DeadlineExceeded: the deadline passed before the block was done.
    """
    watch = _Watch()
    outer = getattr(_active, "watch", None)
    _active.watch = watch
    timer = threading.Timer(seconds, watch.expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception:
        if watch.expired:
            raise DeadlineExceeded(f"{what}: no complete answer within {seconds:g} s") from None
        raise
    finally:
        timer.cancel()
        _active.watch = outer


class _WatchedConnection(HTTPConnection):
    """Registers its socket with the calling thread's deadline whenever it is used."""

    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedTlsConnection(_WatchedConnection, HTTPSConnection):
    """The same for HTTPS: `_WatchedConnection` comes first, so its methods wrap TLS's."""


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedTlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


def watch_pools(manager: PoolManager) -> None:
    """Make the connections `manager` opens from now on obey `deadline`."""
    manager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedTlsPool}
    manager.clear()


# ----------------------------------------------------------------------- size caps


def read_capped(chunks: Iterable[bytes], limit: int, what: str) -> bytes:
    """Join an answer's chunks, refusing it once it passes `limit` bytes.

    Raises:
        ResponseTooLarge: more than `limit` bytes arrived.
    """
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"{what}: answer larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
