"""The HTTP client for the PAN-OS / Panorama XML API: keygen, reading registered IPs, and
applying a `TagPlan` in batches, with the one retry policy.

The API key travels only in the `X-PAN-KEY` header of POST requests; it never appears in
a URL, a log line or an exception.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

from aksfw_core.errors import InputError, NonRetryable, Retryable
from aksfw_core.logs import log_event
from aksfw_core.panorama import xmlapi
from aksfw_core.reconcile import TagPlan
from aksfw_core.retry import RetrySettings, retrying

log = logging.getLogger(__name__)

PAGE_SIZE = 500
"""Entries per `show object registered-ip` page (the PAN-OS maximum)."""

MAX_TAG_TIMEOUT_S = 2_592_000
"""PAN-OS accepts registration timeouts up to 30 days."""


class ApiKey:
    """A PAN-OS API key that will not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if value.startswith("@Microsoft.KeyVault("):
            raise InputError(
                "PANORAMA_API_KEY is an unresolved Key Vault reference: store the secret "
                "panorama-api-key in the vault and let the app's identity read it"
            )
        if not value or not value.isprintable() or value != value.strip():
            raise InputError("the Panorama API key is empty or holds invalid characters")
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the request header only."""
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class PanoramaSettings:
    """Where and how to reach one PAN-OS XML API endpoint."""

    url: str
    """Base URL, `https://host[:port]` (or `http://` for a local simulator)."""
    target: str | None = None
    """Serial of a managed firewall to act on through Panorama; None = Panorama itself."""
    vsys: str | None = None
    """Virtual system on the target, e.g. `vsys1`; None = the default."""
    ca_bundle: str | None = None
    """PEM file of CAs to trust instead of the system store."""
    verify_tls: bool = True
    """False turns certificate checks off (logged as a warning)."""
    batch_size: int = 1000
    """IP entries per uid-message at most."""
    tag_timeout_s: int = 0
    """Seconds a registered tag lives on PAN-OS; 0 = never expires."""
    connect_timeout_s: float = 5.0
    """Seconds to wait for a TCP/TLS connection."""
    read_timeout_s: float = 60.0
    """Seconds to wait for a response."""
    retry: RetrySettings = field(default_factory=RetrySettings)
    """How transient faults are retried."""


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


def panorama_url(text: str) -> str:
    """Normalise `host[:port]`, `https://host[:port]` or `http://host[:port]` to a base URL.

    Raises:
        InputError: not a usable URL (credentials, query or fragment in it, no host).
    """
    candidate = text.strip()
    if "://" not in candidate:
        candidate = "https://" + candidate
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("Panorama URL must be https://host[:port] (or http:// for a simulator)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError("Panorama URL must not carry credentials, a query or a fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError("Panorama URL has an invalid port") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class PanoramaClient:
    """One XML API endpoint and target: read registered IP-tags, apply plans."""

    def __init__(
        self,
        settings: PanoramaSettings,
        key: ApiKey,
    ) -> None:
        self.settings = settings
        self._transport = _Transport(settings, key)

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
    ) -> ApiKey:
        """Generate an API key from a user name and password (sent in the POST body).

        Raises:
            AuthError: the credentials were refused.
            Retryable: Panorama stayed unreachable through every attempt.
        """
        transport = _Transport(settings, None)
        try:
            fields = {"type": "keygen", "user": user, "password": password}
            return ApiKey(xmlapi.api_key(transport.post(fields, "keygen")))
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
        """Every IP registered on the target with all its tags (any owner), read page by page.

        Raises:
            AuthError, NonRetryable: the request was refused.
            Retryable: the target stayed unreachable through every attempt.
        """
        result: dict[str, frozenset[str]] = {}
        start = 1
        while True:
            command = xmlapi.registered_ip_command(PAGE_SIZE, start)
            root = self._call({"type": "op", "cmd": command}, "show registered-ip")
            page = xmlapi.registered_page(root)
            known = len(result)
            for ip, tags in page:
                result[ip] = result.get(ip, frozenset()) | tags
            if len(page) < PAGE_SIZE:
                return result
            if len(result) == known:
                raise Retryable(f"registered-ip paging did not advance at start-point {start}")
            start += len(page)

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


class _Transport:
    """POSTs form requests to one endpoint under the retry policy, counting them."""

    def __init__(self, settings: PanoramaSettings, key: ApiKey | None) -> None:
        self._settings = settings
        self._endpoint = panorama_url(settings.url) + "/api/"
        self._host = urlsplit(self._endpoint).netloc
        self._headers = {"X-PAN-KEY": key.reveal()} if key else {}
        self._session = requests.Session()
        # Given with each request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self._verify: bool | str = settings.ca_bundle or True
        if not settings.verify_tls:
            log_event(log, "panorama.tls_verification_off", logging.WARNING, host=self._host)
            self._verify = False
        self.sent = 0

    def close(self) -> None:
        self._session.close()

    def post(self, fields: dict[str, str], what: str) -> ET.Element:
        timeout = (self._settings.connect_timeout_s, self._settings.read_timeout_s)
        for attempt in retrying(self._settings.retry, f"{what} on {self._host}"):
            with attempt:
                self.sent += 1
                try:
                    response = self._session.post(
                        self._endpoint,
                        data=fields,
                        headers=self._headers,
                        timeout=timeout,
                        verify=self._verify,
                    )
                except requests.exceptions.SSLError as error:
                    raise NonRetryable(
                        f"{what}: TLS verification of {self._host} failed"
                    ) from error
                except (requests.ConnectionError, requests.Timeout) as error:
                    kind = type(error).__name__
                    raise Retryable(f"{what}: {self._host} unreachable ({kind})") from None
                return xmlapi.parse_response(
                    response.status_code, response.content, _retry_after(response)
                )
        raise AssertionError("unreachable: tenacity re-raises the last error")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
