"""The HTTP client for the PAN-OS / Panorama XML API: keygen, reading registered IPs (and
reporting how many a target holds), applying a `TagPlan` in batches, and checking and
writing the canary (`panorama.canary`), with the one retry policy.

The API key travels only in the `X-PAN-KEY` header of POST requests; it never appears in
a URL, a log line or an exception.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from opentelemetry import trace

from aksfw_core import telemetry
from aksfw_core.config import PanoramaSettings
from aksfw_core.endpoints import panorama_url
from aksfw_core.errors import InputError, NonRetryable, Retryable, retry_after_seconds
from aksfw_core.logs import log_event
from aksfw_core.panorama import xmlapi
from aksfw_core.panorama.canary import Canary
from aksfw_core.panorama.registered_read import PAGE_SIZE, RegisteredRead
from aksfw_core.panorama.trust import TRUST_HINT, TrustingAdapter, trust_of
from aksfw_core.retry import retrying, time_left
from aksfw_core.rules.plan import TagPlan
from aksfw_core.secret import Secret
from aksfw_core.transport import connection_failure, deadline, read_capped, watch_pools

log = logging.getLogger(__name__)

__all__ = ["PAGE_SIZE", "ApplyResult", "PanoramaClient", "RegisteredCount", "api_key"]

RegisteredCount = Callable[[str, int, int | None], None]
"""Told each count of registered IPs a read finds: the target (`panorama` or a serial), the
count, and `panorama.capacityWarningIps` (None when unset)."""


def api_key(value: str) -> Secret:
    """A PAN-OS API key (`PANORAMA_API_KEY`, or what keygen answered).

    Raises:
        InputError: an unresolved Key Vault reference, or not a key.
    """
    if value.startswith("@Microsoft.KeyVault("):
        raise InputError(
            "PANORAMA_API_KEY is an unresolved Key Vault reference: store the secret "
            "panorama-api-key in the vault and let the app's identity read it"
        )
    return Secret(value, "Panorama API key")


@dataclass(frozen=True)
class ApplyResult:
    """What applying one plan did."""

    registered: int = 0
    """IP-tag pairs registered (including ones PAN-OS already had)."""
    unregistered: int = 0
    """IP-tag pairs unregistered (including ones PAN-OS no longer had)."""
    requests: int = 0
    """Write requests sent, retries included."""
    failures: tuple[xmlapi.EntryMessage, ...] = ()
    """Entries PAN-OS refused."""


class PanoramaClient:
    """One XML API endpoint and target: read registered IP-tags, apply plans."""

    def __init__(
        self,
        settings: PanoramaSettings,
        key: Secret,
        tracer: trace.Tracer | None = None,
        on_count: RegisteredCount | None = None,
    ) -> None:
        """`tracer` makes a client span of each request (default: the global tracer's);
        `on_count` is told how many IPs each read of the table finds (a metric)."""
        self.settings = settings
        self._transport = _Transport(settings, key, tracer)
        self._on_count = on_count

    @property
    def requests_sent(self) -> int:
        """Requests sent by this client so far, retries included."""
        return self._transport.sent

    @classmethod
    def keygen(
        cls,
        settings: PanoramaSettings,
        user: str,
        password: str,
    ) -> Secret:
        """Generate an API key from a user name and password (sent in the POST body).

        Raises:
            AuthError: the credentials were refused.
            Retryable: Panorama stayed unreachable through every attempt.
        """
        transport = _Transport(settings, None)
        try:
            fields = {"type": "keygen", "user": user, "password": password}
            return api_key(xmlapi.api_key(transport.post(fields, "keygen")))
        finally:
            transport.close()

    def close(self) -> None:
        """Release the HTTP connections."""
        self._transport.close()

    def __enter__(self) -> PanoramaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def registered(self) -> dict[str, frozenset[str]]:
        """Every IP registered on the target with all its tags (any owner).

        A device pages `show object registered-ip` only as far as start-point 100,000, so
        the read first asks how many IPs there are (`all option count`). Fewer than that,
        or no readable count, are paged through `all`; only when the count says 100,000
        or more, or the pages of `all` reach start-point 100,000 with more to come, is
        the address space read network by network (the `ip` choice with a netmask),
        splitting a network 16 ways while it holds 100,000 IPs or more. Every IP lies in
        exactly one network, so the networks' union is the whole table, whatever order
        the device answers in.

        Raises:
            AuthError, NonRetryable: a request was refused, the read needs more than
                `limits.panorama_max_pages` requests, or a single address overflowed.
            Retryable: the target stayed unreachable through every attempt, or a page
                repeated what was already read (the table changed under the read).
        """
        started = time.monotonic()
        limits = self.settings.limits
        read = RegisteredRead(self._call, limits.panorama_max_pages, self.settings.target)
        result = read.run()
        if read.count is not None:
            self._note_count(read.count)
        log_event(
            log,
            "panorama.read",
            target=self.settings.target or "panorama",
            ips=len(result),
            requests=read.requests,
            networks=read.networks,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return result

    def _note_count(self, count: int) -> None:
        """Report a target's count of registered IPs, and warn when it reaches
        `panorama.capacityWarningIps`: the device refuses registrations past its model's
        limit, and the DAGs stop following the clusters."""
        target = self.settings.target or "panorama"
        warning = self.settings.capacity_warning_ips
        if self._on_count is not None:
            self._on_count(target, count, warning)
        if warning is not None and count >= warning:
            log_event(
                log,
                "panorama.capacity_warning",
                logging.WARNING,
                target=target,
                ips=count,
                warning_ips=warning,
                message=(
                    f"{target} holds {count:,} registered IPs, at or above "
                    f"panorama.capacityWarningIps ({warning:,}): its model refuses "
                    "registrations past its limit"
                ),
            )

    def canary_present(self, canary: Canary) -> bool:
        """Whether the target holds the canary: one `show object registered-ip ip` request
        for its address.

        Raises:
            AuthError, NonRetryable, Retryable: as `registered`.
        """
        address = ipaddress.ip_network(canary.ip)
        command = xmlapi.registered_ip_command(1, 1, address)
        root = self._call({"type": "op", "cmd": command}, "show registered-ip canary")
        return any(
            ip == canary.ip and canary.tag in tags for ip, tags in xmlapi.registered_page(root)
        )

    def write_canary(self, canary: Canary, action: xmlapi.Action, timeout_s: int = 0) -> None:
        """Register the canary (not persistent, expiring after `timeout_s`) or unregister it:
        one uid-message.

        Raises:
            NonRetryable: the target refused the entry (the message says why).
            AuthError, Retryable: as `apply`.
        """
        command = xmlapi.canary_command(action, canary.ip, canary.tag, timeout_s)
        root = self._call({"type": "user-id", "cmd": command}, f"{action} canary")
        for message in xmlapi.entry_messages(root):
            if not message.benign:
                raise NonRetryable(f"the canary's {action} was refused: {message.message}")

    def connected_firewalls(self, device_groups: Iterable[str]) -> dict[str, list[str]]:
        """Serials of the connected firewalls of each device group (Panorama only).

        Raises:
            AuthError, NonRetryable, Retryable: as `registered`.
        """
        root = self._call({"type": "op", "cmd": xmlapi.devicegroups_command()}, "show devicegroups")
        found = xmlapi.connected_firewalls(root)
        return {group: found.get(group, []) for group in device_groups}

    def apply(self, plan: TagPlan) -> ApplyResult:
        """Send the plan as uid-messages. Per-entry refusals are returned, not raised;
        benign ones (already registered, already gone) count as done.

        Raises:
            AuthError, NonRetryable: the request was refused.
            Retryable: the target stayed unreachable through every attempt; batches sent
                before stay applied, and applying the plan again is harmless.
        """
        started = time.monotonic()
        before = self.requests_sent
        registered = unregistered = 0
        failures: list[xmlapi.EntryMessage] = []
        for batch in xmlapi.uid_batches(
            plan, self.settings.batch_size, self.settings.tag_timeout_s
        ):
            root = self._call({"type": "user-id", "cmd": batch.command}, "uid-message")
            failures.extend(m for m in xmlapi.entry_messages(root) if not m.benign)
            registered += batch.register_count
            unregistered += batch.unregister_count
        result = ApplyResult(registered, unregistered, self.requests_sent - before, tuple(failures))
        log_event(
            log,
            "panorama.apply",
            target=self.settings.target or "panorama",
            registered=registered,
            unregistered=unregistered,
            requests=result.requests,
            failures=len(failures),
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return result

    def _call(self, fields: dict[str, str], what: str) -> ET.Element:
        target = {"target": self.settings.target, "vsys": self.settings.vsys}
        return self._transport.post(fields | xmlapi.form_fields(target), what)


_gates: dict[str, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


def _gate(host: str, size: int) -> threading.BoundedSemaphore:
    """The process's turns for one Panorama: every client of the process shares them, so
    however many invocations run at once, at most `size` requests are in flight to it."""
    with _gates_lock:
        gate = _gates.get(host)
        if gate is None:
            gate = _gates[host] = threading.BoundedSemaphore(size)
        return gate


class _Transport:
    """POSTs form requests to one endpoint under the retry policy, counting them.

    Each request is bounded by a total deadline and a cap on the answer's bytes, and
    follows no redirect: the API key and the keygen password go to the configured origin
    and nowhere else.
    """

    def __init__(
        self, settings: PanoramaSettings, key: Secret | None, tracer: trace.Tracer | None = None
    ) -> None:
        self._settings = settings
        self._limits = settings.limits
        self._endpoint = panorama_url(settings.url) + "/api/"
        parts = urlsplit(self._endpoint)
        self._host = parts.netloc
        default_port = 443 if parts.scheme == "https" else 80
        self._address = parts.netloc if parts.port else f"{parts.netloc}:{default_port}"
        """`host:port`, the port spelled out, for messages about the connection."""
        self._tracer = tracer or trace.get_tracer(telemetry.NAME)
        self._headers = {"X-PAN-KEY": key.reveal()} if key else {}
        self._session = requests.Session()
        # A hook runs before requests looks at a redirect at all (even with
        # allow_redirects=False it would read the body to prepare the next request).
        self._session.hooks["response"].append(self._refuse_redirect)
        adapter = TrustingAdapter(trust_of(settings))
        watch_pools(adapter.poolmanager)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        # Given with each request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self._verify = adapter.verify
        if not self._verify:
            log_event(log, "panorama.tls_verification_off", logging.WARNING, host=self._host)
        self.sent = 0

    def close(self) -> None:
        self._session.close()

    def _refuse_redirect(self, response: requests.Response, **_: Any) -> None:
        if not 300 <= response.status_code < 400:
            return
        response.close()
        target = urlsplit(str(response.headers.get("Location", "")))
        where = f"{target.scheme}://{target.netloc}"[:200] if target.netloc else "elsewhere"
        raise NonRetryable(
            f"{self._host} answered HTTP {response.status_code}, a redirect to {where}; "
            "aksfw follows no redirect, so the API key stays with the configured host: "
            "set panorama.host to the address the XML API answers on",
            status=response.status_code,
        )

    def post(self, fields: dict[str, str], what: str) -> ET.Element:
        gate = _gate(self._host, self._limits.panorama_max_concurrent_requests)
        for attempt in retrying(self._settings.retry, f"{what} on {self._host}"):
            with attempt, self._span(what) as span:
                # Waiting for a turn counts against the deadline too; retries wait outside.
                # An overall deadline (`retry.overall_deadline`) cuts it to the time left.
                seconds = time_left(self._limits.panorama_deadline_s)
                with deadline(seconds, f"{what}: {self._host}"):
                    if not gate.acquire(timeout=seconds):
                        raise Retryable(f"{what}: no turn for {self._host} in time")
                    try:
                        self.sent += 1
                        status, body, retry_after = self._exchange(fields, what)
                    finally:
                        gate.release()
                span.set_attribute("http.response.status_code", status)
                return xmlapi.parse_response(status, body, retry_after, self._host)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    @contextmanager
    def _span(self, what: str) -> Iterator[trace.Span]:
        """A client span for one request: method, path, host, what it asks and how it
        ended; never its fields (the keygen password), headers (the API key) or text."""
        endpoint = urlsplit(self._endpoint)
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.path": endpoint.path,
            "server.address": endpoint.hostname or "",
            "server.port": endpoint.port or (443 if endpoint.scheme == "https" else 80),
            "aksfw.panorama.request": what,
            "aksfw.target": self._settings.target or "panorama",
        }
        with self._tracer.start_as_current_span(
            f"POST {endpoint.path}",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as error:
                span.set_attribute("error.type", type(error).__name__)
                span.set_status(trace.Status(trace.StatusCode.ERROR))
                raise

    def _exchange(self, fields: dict[str, str], what: str) -> tuple[int, bytes, float | None]:
        timeout = (
            time_left(self._limits.panorama_connect_timeout_s),
            time_left(self._limits.panorama_read_timeout_s),
        )
        try:
            response = self._session.post(
                self._endpoint,
                data=fields,
                headers=self._headers,
                timeout=timeout,
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = read_capped(
                    response.iter_content(64 * 1024),
                    self._limits.panorama_max_response_bytes,
                    f"{what}: {self._host}",
                )
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                return response.status_code, body, retry_after
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as error:  # SSLError too: a ConnectionError
            tls = isinstance(error, requests.exceptions.SSLError)
            raise connection_failure(
                error, what, "Panorama", self._address, tls_repeats=tls, tls_hint=TRUST_HINT
            ) from None
