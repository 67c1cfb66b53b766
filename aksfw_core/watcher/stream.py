"""The Kubernetes watch protocol for Services, as a stream of lists and events.

`ServiceStream.items` lists every Service (a baseline and a resourceVersion), then watches
them in all namespaces from the newest version it has seen: bookmarks move that version on
without an event, a dropped or timed-out stream resumes from it, 410 Gone (an HTTP answer
or an `ERROR` event) lists again, and other transient failures reconnect after a backoff
(`timing.backoff_s`). The client, its bounds and the classification of its failures are
`aksfw_core.kube`'s; the list is `KubernetesServices` (with the one bounded retry policy
for that one call).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any, NamedTuple

from kubernetes import client as k8s

from aksfw_core.errors import Retryable, http_error
from aksfw_core.kube import Gone, KubernetesServices, api_errors, request_bounds, server_of
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.retry import RetrySettings
from aksfw_core.transport import ResponseTooLarge, deadline
from aksfw_core.watcher.timing import Clock, SystemClock, backoff_s

log = logging.getLogger(__name__)

SERVICE_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED"})


class Listed(NamedTuple):
    """A complete list of Service objects (the first, or again after 410 Gone)."""

    items: list[dict[str, Any]]


class ServiceEvent(NamedTuple):
    """One watch event about one Service."""

    kind: str
    """`ADDED`, `MODIFIED` or `DELETED`."""
    obj: dict[str, Any]


class WatchEvent(NamedTuple):
    """One line of a watch stream, read."""

    kind: str
    """`ADDED`, `MODIFIED`, `DELETED` or `BOOKMARK`."""
    obj: dict[str, Any]
    version: str | None
    """The resourceVersion the stream has reached with it, if it says."""


def read_event(line: bytes, server: str) -> WatchEvent:
    """One watch event from its JSON line.

    Raises:
        Gone: an `ERROR` event with code 410.
        AuthError, NonRetryable, Retryable: another `ERROR` event, by `http_error`.
        Retryable: not JSON, no object, or an unknown event type.
    """
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        raise Retryable(f"{server}: a watch event is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise Retryable(f"{server}: a watch event without an object")
    kind, obj = event.get("type"), event["object"]
    if kind == "ERROR":
        code = obj.get("code") if isinstance(obj.get("code"), int) else 0
        if code == 410:
            raise Gone(f"{server}: the watch's version is gone (410)", status=410)
        raise http_error(code, f"{server}: the watch ended with an error")
    if kind not in SERVICE_EVENTS and kind != "BOOKMARK":
        raise Retryable(f"{server}: a watch event of unknown type {kind!r}")
    metadata = obj.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return WatchEvent(str(kind), obj, version if isinstance(version, str) and version else None)


def event_lines(chunks: Iterable[bytes], cap: int, what: str) -> Iterator[bytes]:
    """The non-blank lines of a watch stream's chunks.

    Raises:
        ResponseTooLarge: a line grows past `cap` bytes.
    """
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            if line.strip():
                yield line
        if len(buffer) > cap:
            raise ResponseTooLarge(f"{what}: an event larger than {cap} bytes")
    if buffer.strip():
        yield buffer


class ServiceStream:
    """Lists and watches every Service of one cluster (see the module docstring).

    `items` is meant for one thread, `stop` for any other.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        limits: Limits | None = None,
        list_retry: RetrySettings | None = None,
        clock: Clock | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """`clock` times the backoff waits; `jitter` returns a fraction in [0, 1)."""
        self._limits = limits or Limits()
        # Bounds the client's connections (kube.bound_connections): the watch shares them.
        self._listing = KubernetesServices(api_client, self._limits, list_retry)
        self._core = k8s.CoreV1Api(api_client)
        self._server = server_of(api_client)
        self._clock = clock or SystemClock()
        self._jitter = jitter
        self._stopped = threading.Event()
        self._response: Any = None
        self._version: str | None = None

    @property
    def resource_version(self) -> str | None:
        """The newest resource version handed on (None before the first list)."""
        return self._version

    def stop(self) -> None:
        """Make `items` return soon: the open watch is cut, a backoff wait ends."""
        self._stopped.set()
        response = self._response
        if response is not None:
            with suppress(Exception):  # already closed, or closing in the other thread
                response.shutdown()

    def close(self) -> None:
        """Release the HTTP connections."""
        self._listing.close()

    def items(self) -> Iterator[Listed | ServiceEvent]:
        """Lists and Service events until `stop`. The resource version moves past an item
        only when the caller asks for the next one, so a caller that has seen the version
        has handled everything before it.

        Raises:
            AuthError: the API server refused the credential or the watch (401/403).
            NonRetryable: another permanent failure (TLS verification, a refused request,
                an event over `limits.kube_watch_max_event_bytes`).
        """
        failures = 0
        listed = False
        while not self._stopped.is_set():
            fresh = False
            try:
                if not listed:
                    yield from self._list()
                    listed = fresh = True
                yield from self._watch()
                failures = 0
            except Retryable as error:
                if self._stopped.is_set():
                    return
                if isinstance(error, Gone) and listed:  # from the watch: list again
                    log_event(log, "watch.gone", logging.INFO, version=self._version)
                    listed = False
                    if fresh:  # gone from the version a list just gave: do not spin
                        failures += 1
                        self._clock.wait(
                            backoff_s(failures, self._limits, self._jitter), self._stopped
                        )
                    continue
                failures += 1
                wait = max(backoff_s(failures, self._limits, self._jitter), error.retry_after or 0)
                log_event(
                    log,
                    "watch.reconnect",
                    logging.WARNING,
                    error=str(error),
                    attempt=failures,
                    wait_s=round(wait, 2),
                    version=self._version,
                )
                self._clock.wait(wait, self._stopped)

    def _list(self) -> Iterator[Listed]:
        items = self._listing.list_items()
        version = self._listing.resource_version
        log_event(log, "watch.listed", services=len(items), version=version)
        yield Listed(items)
        self._version = version

    def _watch(self) -> Iterator[ServiceEvent]:
        """One watch request, read to its end.

        Raises:
            Gone: the version is too old.
            AuthError, NonRetryable, Retryable: as `kube.api_errors` classifies the failure.
        """
        limits = self._limits
        what = f"{self._server}: watch Services"
        bounds = request_bounds(limits, limits.kube_watch_timeout_s)
        # A stream cut mid-way can fail like a TLS handshake: keep that transient.
        with (
            api_errors(self._server, "watching Services", tls_repeats=False),
            deadline(bounds.deadline_s, what),
        ):
            self._response = self._core.list_service_for_all_namespaces(
                watch=True,
                resource_version=self._version,
                allow_watch_bookmarks=True,
                timeout_seconds=max(1, int(limits.kube_watch_timeout_s)),
                _preload_content=False,
                _request_timeout=bounds.timeout,
            )
            try:
                if self._stopped.is_set():
                    return
                chunks = self._response.stream(64 * 1024)
                for line in event_lines(chunks, limits.kube_watch_max_event_bytes, what):
                    event = read_event(line, self._server)
                    if event.kind != "BOOKMARK":
                        yield ServiceEvent(event.kind, event.obj)
                    if event.version is not None:
                        self._version = event.version
            finally:
                self._response.release_conn()
                self._response = None
