"""Watch one cluster's Services and say, at most once per short window, that something
which can change its tags has changed (`aksfw watch`, DESIGN section 3).

The watcher lists Services (for their resource version and a baseline), then watches
them in all namespaces with the real `kubernetes` client, resuming from the last version
it saw (bookmarks move it on), listing again on 410 Gone and reconnecting with capped,
jittered exponential backoff. What counts as a change is decided by the engine's own
Service parsing (`rules.services`): an object's tag view is the `Service` record tags
are computed from, or nothing for a Service that is not a LoadBalancer, so status
conditions, other annotations and version-only updates change nothing. The notice
carries no Service data: the app lists the cluster itself, as for any event.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aksfw_core.errors import (
    AksfwError,
    InputError,
    NonRetryable,
    Retryable,
    http_error,
    retry_after_seconds,
)
from aksfw_core.kube import KubernetesServices
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.retry import RetrySettings
from aksfw_core.rules.model import Service
from aksfw_core.rules.services import parse_service_items
from aksfw_core.transport import ResponseTooLarge, connection_failure, deadline

log = logging.getLogger(__name__)

TagView = Service | str | None
"""What tags can see of one Service: its `Service` record (a LoadBalancer), None (any
other type), or the reason it cannot be read (a malformed object)."""

ServiceKey = tuple[str, str]
"""(namespace, name)."""


def tag_view(obj: object) -> TagView:
    """The tag-relevant view of one Service object, as the engine would read it."""
    try:
        parsed = parse_service_items([obj])
    except InputError as error:
        return f"unreadable: {error}"
    return parsed.services[0] if parsed.services else None


def service_key(obj: Mapping[str, Any]) -> ServiceKey | None:
    """(namespace, name) of a Service object, or None if it names neither."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace", "default")
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return (namespace, name)


def backoff_s(failures: int, limits: Limits, jitter: Callable[[], float]) -> float:
    """Seconds to wait after `failures` failures in a row: exponential from
    `watch_backoff_initial_s`, capped at `watch_backoff_max_s`, between half and all of
    that (jitter, so many watchers do not come back in step)."""
    exponent = min(max(failures - 1, 0), 32)
    ceiling = min(limits.watch_backoff_max_s, limits.watch_backoff_initial_s * 2**exponent)
    return float(ceiling / 2 + ceiling / 2 * jitter())


@dataclass
class Debouncer:
    """At most one publish per window: the first change after a quiet period opens a
    window, the publish happens when it closes and covers every change inside it. Pure;
    the caller passes the time."""

    window_s: float
    first_change: float | None = None
    """When the oldest change not yet published arrived (None: nothing pending)."""

    def changed(self, now: float) -> None:
        """Note a change."""
        if self.first_change is None:
            self.first_change = now

    def due_in(self, now: float) -> float | None:
        """Seconds until a publish is due (0: now), or None with nothing pending."""
        if self.first_change is None:
            return None
        return max(0.0, self.first_change + self.window_s - now)

    def begin(self) -> float | None:
        """A publish starts: changes from now on open a new window. Returns what to pass
        to `failed` if the publish fails."""
        first, self.first_change = self.first_change, None
        return first

    def failed(self, first: float | None) -> None:
        """The publish `begin` started failed: its changes are pending again, due now."""
        if first is not None:
            self.first_change = min(first, self.first_change or first)


class _Gone(Exception):
    """The watch's resource version is too old (410): list again."""


class ServiceWatcher:
    """Watches every Service of one cluster and calls `publish` after each window in
    which something that can change its tags changed (see the module docstring).

    `run` blocks until `stop` is called or a permanent failure; it is meant for one
    thread, `stop` for any other.
    """

    def __init__(
        self,
        api_client: Any,
        publish: Callable[[], None],
        *,
        limits: Limits | None = None,
        debounce_s: float = 2.0,
        list_retry: RetrySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """`sleep` makes every backoff wait (default: a wait that `stop` cuts short);
        `clock` times the debounce window; `jitter` returns a fraction in [0, 1)."""
        self._limits = limits or Limits()
        self._listing = KubernetesServices(api_client, self._limits, list_retry)
        self._core = k8s.CoreV1Api(api_client)
        self._server = getattr(api_client.configuration, "host", "the API server")
        self._publish = publish
        self._clock = clock
        self._jitter = jitter
        self._stopped = threading.Event()
        self._sleep = sleep or self._stopped.wait
        self._changes = threading.Condition()
        self._debouncer = Debouncer(debounce_s)
        self._failure: BaseException | None = None
        self._views: dict[ServiceKey, TagView] = {}
        self._version: str | None = None
        self._response: Any = None
        self.published = 0
        """Successful publishes so far."""

    @property
    def resource_version(self) -> str | None:
        """The newest resource version seen (None before the first list)."""
        return self._version

    def stop(self) -> None:
        """Make `run` return soon: the open watch is cut, waits end."""
        self._stopped.set()
        with self._changes:
            self._changes.notify_all()
        response = self._response
        if response is not None:
            with suppress(Exception):  # already closed, or closing in the other thread
                response.shutdown()

    def run(self) -> None:
        """Watch and publish until `stop`.

        Raises:
            AuthError: the API server refused the credential or the watch (401/403), or
                the publisher refused its credential.
            NonRetryable: another permanent failure (TLS verification, a refused request).
        """
        watching = threading.Thread(target=self._watch_thread, name="aksfw-watch", daemon=True)
        watching.start()
        try:
            self._publish_loop()
        finally:
            self.stop()
            watching.join(timeout=self._limits.kube_deadline_s)
            self._listing.close()
        if self._failure is not None:
            raise self._failure

    # ------------------------------------------------------------------ publishing

    def _changed(self, why: str, key: ServiceKey | None) -> None:
        log_event(log, "watch.change", logging.DEBUG, why=why, service="/".join(key or ()))
        with self._changes:
            self._debouncer.changed(self._clock())
            self._changes.notify_all()

    def _publish_loop(self) -> None:
        failures = 0
        while True:
            with self._changes:
                if self._stopped.is_set():
                    return
                due = self._debouncer.due_in(self._clock())
                if due is None or due > 0:
                    self._changes.wait(1.0 if due is None else due)
                    continue
                first = self._debouncer.begin()
            try:
                self._publish()
            except Retryable as error:
                failures += 1
                wait = max(backoff_s(failures, self._limits, self._jitter), error.retry_after or 0)
                log_event(
                    log, "watch.publish_failed", logging.WARNING, error=str(error), wait_s=wait
                )
                with self._changes:
                    self._debouncer.failed(first)
                self._sleep(wait)
                continue
            except AksfwError as error:
                self._fail(error)
                return
            failures = 0
            self.published += 1
            log_event(log, "watch.published", cluster_changes_since_s=self._clock() - (first or 0))

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self.stop()

    # ------------------------------------------------------------------ watching

    def _watch_thread(self) -> None:
        try:
            self._watch_loop()
        except BaseException as error:  # run() raises it in its own thread
            if not self._stopped.is_set():
                self._fail(error)
        finally:
            self.stop()

    def _watch_loop(self) -> None:
        failures = 0
        listed = False
        while not self._stopped.is_set():
            fresh = False
            try:
                if not listed:
                    self._relist()
                    listed = fresh = True
                self._watch_once()
                failures = 0
            except _Gone:
                log_event(log, "watch.gone", logging.INFO, version=self._version)
                if fresh:  # gone from the version a list just gave: do not spin
                    failures += 1
                    self._sleep(backoff_s(failures, self._limits, self._jitter))
                listed = False
            except Retryable as error:
                if self._stopped.is_set():
                    return
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
                self._sleep(wait)

    def _relist(self) -> None:
        items = self._listing.list_items()
        views: dict[ServiceKey, TagView] = {}
        for item in items:
            key = service_key(item) if isinstance(item, Mapping) else None
            view = tag_view(item)
            if key is not None and view is not None:
                views[key] = view
        first = self._version is None
        if not first and views != self._views:
            self._changed("relist", None)
        self._views = views
        self._version = self._listing.resource_version
        log_event(log, "watch.listed", services=len(items), version=self._version)

    def _watch_once(self) -> None:
        """One watch request, read to its end.

        Raises:
            _Gone: the version is too old.
            AuthError, NonRetryable, Retryable: as `http_error` classifies the failure.
        """
        limits = self._limits
        what = f"{self._server}: watch Services"
        try:
            with deadline(limits.kube_watch_timeout_s + limits.kube_deadline_s, what):
                self._response = self._core.list_service_for_all_namespaces(
                    watch=True,
                    resource_version=self._version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=max(1, int(limits.kube_watch_timeout_s)),
                    _preload_content=False,
                    _request_timeout=(
                        limits.kube_connect_timeout_s,
                        limits.kube_watch_timeout_s + limits.kube_read_timeout_s,
                    ),
                )
                try:
                    if self._stopped.is_set():
                        return
                    for line in self._lines(self._response, what):
                        self._handle(line)
                finally:
                    self._response.release_conn()
                    self._response = None
        except ApiException as error:
            if isinstance(error.__context__, urllib3.exceptions.SSLError):
                raise NonRetryable(f"{self._server}: TLS verification failed") from None
            if error.status == 410:
                raise _Gone from None
            retry_after = retry_after_seconds((error.headers or {}).get("Retry-After"))
            raise http_error(error.status or 0, f"{what} failed", retry_after) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise connection_failure(
                error, what, "the Kubernetes API server", tls_repeats=False
            ) from None

    def _lines(self, response: Any, what: str) -> Iterator[bytes]:
        cap = self._limits.kube_watch_max_event_bytes
        buffer = b""
        for chunk in response.stream(64 * 1024):
            buffer += chunk
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                if line.strip():
                    yield line
            if len(buffer) > cap:
                raise ResponseTooLarge(f"{what}: an event larger than {cap} bytes")
        if buffer.strip():
            yield buffer

    def _handle(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            raise Retryable(f"{self._server}: a watch event is not JSON") from None
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise Retryable(f"{self._server}: a watch event without an object")
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            code = obj.get("code") if isinstance(obj.get("code"), int) else 0
            if code == 410:
                raise _Gone
            raise http_error(code, f"{self._server}: the watch ended with an error")
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        version = metadata.get("resourceVersion")
        if kind not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
            raise Retryable(f"{self._server}: a watch event of unknown type {kind!r}")
        if kind != "BOOKMARK":
            self._apply(kind, obj)
        if isinstance(version, str) and version:
            self._version = version

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        key = service_key(obj)
        if key is None:
            self._changed("unreadable", None)
            return
        old = self._views.get(key)
        new = None if kind == "DELETED" else tag_view(obj)
        if new is None:
            self._views.pop(key, None)
        else:
            self._views[key] = new
        if old != new:
            self._changed(kind.lower(), key)


def kube_api_client(kubeconfig: str | None, context: str | None = None) -> Any:
    """A `kubernetes` API client: from a kubeconfig (and optionally one of its contexts),
    or the pod's service account when `kubeconfig` is None.

    Raises:
        InputError: the kubeconfig is unusable, or not running in a pod without one.
    """
    try:
        if kubeconfig is not None:
            return k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, persist_config=False
            )
        if context is not None:
            raise InputError("--context needs --kubeconfig")
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s.ApiClient(configuration)
    except (ConfigException, OSError, ValueError, TypeError) as error:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster config"
        raise InputError(f"{where}: {error}") from None
