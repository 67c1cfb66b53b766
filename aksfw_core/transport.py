"""What every outside call has in common: azure-core failures classified by the one rule
(`errors.http_error`), a total deadline per request that a drip-feeding server cannot
stretch, and a cap on the bytes of an answer.

The deadline works below the HTTP libraries: connections made through a pool manager
that `watch_pools` has prepared register their socket with the deadline active in the
calling thread; when it passes, a timer shuts those sockets down, so whatever read or
write is blocked returns at once, however the server paces its bytes.
"""

from __future__ import annotations

import re
import socket
import ssl
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
from azure.identity import CredentialUnavailableError
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import SSLError as CheckFailed
from urllib3.exceptions import TimeoutError as PoolTimeoutError

from aksfw_core.errors import (
    AksfwError,
    AuthError,
    NonRetryable,
    Retryable,
    http_error,
    retry_after_seconds,
)


class DeadlineExceeded(Retryable):
    """A request did not complete within its total deadline."""


class ResponseTooLarge(NonRetryable):
    """An answer was larger than its cap: asking again would bring the same."""


# ----------------------------------------------------------------------- Azure SDKs


@contextmanager
def azure_errors(what: str, service: str) -> Iterator[None]:
    """Translate azure-core exceptions (Resource Manager, Key Vault, Storage, Event Grid)
    raised in the block with `http_error`. A 404 is left to the caller
    (`ResourceNotFoundError`) when it catches it inside the block; otherwise it is a
    `NonRetryable` with status 404.

    A failed sign-in (the credential, before any request reached `service`) is told apart
    from `service` refusing the token: no credential could try at all is the `az login`
    advice; Microsoft Entra ID refusing is an `AuthError` with Entra's own reason
    (`entra_refusal`); Entra being briefly unavailable (429, 5xx, `temporarily_unavailable`
    or a transient AADSTS code) is `Retryable`, like the same answer from `service`.

    Raises:
        AuthError, Retryable, NonRetryable: as `http_error` classifies the status.
    """
    try:
        yield
    except CredentialUnavailableError:  # no credential could even try to sign in
        raise AuthError(f"{what}: {NO_AZURE_CREDENTIAL}") from None
    except ClientAuthenticationError as error:
        raise _sign_in_failure(error, what, service) from None
    except HttpResponseError as error:
        response: Any = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or {}
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        raise http_error(error.status_code or 0, f"{what}: {service}", retry_after) from None
    except (ServiceRequestError, ServiceResponseError) as error:
        raise connection_failure(error, what, service, tls_repeats=False) from None


NO_AZURE_CREDENTIAL = (
    "no Azure credential: run `az login` (or set AZURE_CLIENT_ID with AZURE_TENANT_ID and "
    "AZURE_CLIENT_SECRET for a service principal, or AZURE_CLIENT_ID alone for a "
    "user-assigned managed identity)"
)
"""What to do when `DefaultAzureCredential` found no way to sign in."""

ENTRA = "Microsoft Entra ID"

_TRANSIENT_AADSTS = frozenset({"AADSTS90006", "AADSTS90033", "AADSTS90055"})
"""AADSTS codes Microsoft documents as transient: ExternalServerRetryableError,
MsodsServiceUnavailable, TenantThrottlingError (the Entra error-code reference)."""
_TRANSIENT_OAUTH = ("temporarily_unavailable", "server_error")
"""OAuth 2.0 error codes (RFC 6749 5.2 / 4.1.2.1) for a token endpoint that cannot answer now."""
_REASON_LIMIT = 300
_AADSTS = re.compile(r"\b(AADSTS\d{5,7}):\s*([^\r\n]*?)(?:\.(?:\s|$)|\r|\n|$)")
_OAUTH_ERROR = re.compile(r"\((" + "|".join(_TRANSIENT_OAUTH) + r")\)")


def entra_refusal(message: str) -> tuple[str | None, bool]:
    """Entra ID's reason in a credential's failure message, and whether it is transient:
    `("AADSTS700213: No matching federated identity record found for presented
    assertion", False)`; `(None, False)` when the text carries no Entra answer.

    The one place a message text is read: `DefaultAzureCredential` (a chain) raises a
    `ClientAuthenticationError` without a response whose only record of each credential's
    failure is its text (azure-identity keeps no structured field, cause or status for
    it). The reason is the AADSTS code with its first sentence, cut at 300 characters; an
    AADSTS text carries no token. Transient: a `temporarily_unavailable`/`server_error`
    OAuth error or an AADSTS code in `_TRANSIENT_AADSTS`.
    """
    match = _AADSTS.search(message)
    oauth = _OAUTH_ERROR.search(message)
    transient = oauth is not None or (match is not None and match[1] in _TRANSIENT_AADSTS)
    if match is None:
        return (f"{ENTRA}: {oauth[1]}" if oauth else None), transient
    reason = f"{match[1]}: {match[2].strip()}" if match[2].strip() else match[1]
    return reason[:_REASON_LIMIT], transient


def _sign_in_failure(error: ClientAuthenticationError, what: str, service: str) -> AksfwError:
    """A `ClientAuthenticationError`: `service` refused the token (it answered 401), or the
    credential could not sign in (Entra ID's answer, seen directly or through the chain)."""
    status = error.status_code if error.response is not None else None
    reason, transient = entra_refusal(str(error.message or ""))
    headers = getattr(error.response, "headers", None) or {}
    if transient or (status is not None and (status == 429 or (status >= 500 and status != 501))):
        # Only a token endpoint answers 429/5xx with a ClientAuthenticationError: a service's
        # own 5xx is an HttpResponseError.
        detail = f" ({reason})" if reason else f" (HTTP {status})" if status else ""
        return Retryable(
            f"{what}: {ENTRA} is unavailable{detail}: signing in is tried again",
            retry_after_seconds(headers.get("Retry-After")),
            status=status,
        )
    if reason:
        return AuthError(f"{what}: {ENTRA} refused to sign in: {reason}", status=status)
    if error.response is None:  # the chain found no way to sign in, with no Entra answer
        return AuthError(f"{what}: {NO_AZURE_CREDENTIAL}")
    return AuthError(f"{what}: {service} refused the credential", status=status or 401)


# ----------------------------------------------------------------------- failed connections

# OpenSSL's reasons when the other end does not speak TLS at all (a plain HTTP server).
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL",
     "PACKET_LENGTH_TOO_LONG"}
)  # fmt: skip


def connection_failure(
    error: BaseException,
    what: str,
    service: str,
    where: str | None = None,
    *,
    tls_repeats: bool = True,
    tls_hint: str = "check the CA bundle",
) -> AksfwError:
    """The error for a request that got no answer, saying what to check, classified by the
    causes' types (never their text): a name that does not resolve and a refused or
    broken connection are transient; a failed TLS handshake or certificate check repeats.

    `what` is the call ("list Services on https://..."); `service` names the server kind
    ("Panorama") for the hint; `where` is `host:port` (default: the failed connection's).
    `tls_repeats=False` keeps a TLS failure transient, for callers that cannot tell a
    failed handshake from a connection dropped mid-way. `tls_hint` says what to do about
    a certificate that is not trusted.
    """
    causes = list(_causes(error))
    where = where or _address(causes) or service
    host = where.rsplit(":", 1)[0] if where.count(":") == 1 else where
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return Retryable(f"{what}: {host} does not resolve (DNS): check the name")
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return Retryable(
            f"{what}: {where} refused the connection (is {service} listening on that port?)"
        )
    if tls := _tls_failure(causes, what, where, tls_hint):
        return tls if tls_repeats else Retryable(str(tls))
    if any(_timed_out(cause) for cause in causes):
        return Retryable(f"{what}: {where} did not answer in time")
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return Retryable(f"{what}: the connection to {where} failed ({cause.strerror})")
    return Retryable(f"{what}: the connection to {where} failed")


def _tls_failure(
    causes: list[BaseException], what: str, where: str, hint: str
) -> NonRetryable | None:
    """A failed certificate check or handshake, or a certificate that is not the pinned
    one: the same at every attempt."""
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return NonRetryable(
                f"{what}: the TLS certificate of {where} is not trusted "
                f"({cause.verify_message}): {hint}"
            )
        if isinstance(cause, ssl.SSLError) and cause.reason in _NOT_TLS_REASONS:
            return NonRetryable(
                f"{what}: TLS handshake failed with {where}: is this an http:// server?"
            )
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            reason = (cause.reason or "unknown").lower().replace("_", " ")
            return NonRetryable(f"{what}: TLS handshake failed with {where} ({reason})")
    if any(isinstance(cause, CheckFailed) for cause in causes):
        # urllib3's own check after the handshake, with no ssl error under it: the pin.
        return NonRetryable(
            f"{what}: the TLS certificate of {where} is not the pinned one (its SHA-256 "
            "fingerprint differs); nothing was sent: compare with the device's "
            "(README: Panorama's certificate)"
        )
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and every exception it wraps: causes, contexts, urllib3's `reason`,
    azure-core's `inner_exception`, exceptions passed as arguments."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__]
        linked += [getattr(current, "reason", None), getattr(current, "inner_exception", None)]
        linked += list(current.args)
        pending += [item for item in linked if isinstance(item, BaseException)]


def _address(causes: list[BaseException]) -> str | None:
    for cause in causes:
        if isinstance(cause, NewConnectionError) and cause.conn is not None:
            host = str(cause.conn.host)
            return f"{host}:{cause.conn.port}" if cause.conn.port else host
    return None


def _timed_out(cause: BaseException) -> bool:
    if isinstance(cause, NewConnectionError):  # a subclass of the timeout, for history
        return False
    return isinstance(cause, (TimeoutError, PoolTimeoutError))


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
