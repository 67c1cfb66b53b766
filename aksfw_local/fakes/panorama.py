"""A stateful simulator of the PAN-OS / Panorama XML API, for tests and demos.

It covers the parts of the XML API that aksfw uses:

* ``type=keygen`` (``user``/``password`` -> API key),
* ``type=user-id`` with a ``uid-message`` that registers / unregisters IP tags
  (per-entry messages, optional ``timeout`` per tag up to 30 days, ``persistent`` "0" or
  "1" per entry, 32-tag limit, strict duplicate reporting; a timeout or a ``persistent``
  out of range refuses the request), optionally for a managed firewall (``target``) and a
  ``vsys``; an entry may
  be a network (``a.b.c.d/nn``, IPv6 too) as PAN-OS 10.0 and later accept, unless
  ``sw_version`` is older (then a network entry is refused as an invalid address),
* ``type=op`` ``<show><object><registered-ip>`` within the op schema of PAN-OS
  10.2/11.1 (``all`` with ``option count``, ``ip`` with a netmask, ``iprange``, ``tag``;
  ``limit`` 1..500, ``start-point`` 1..100000; anything else is refused with code 17)
  and ``<show><devicegroups/>``.

Requests are POST or GET to ``/api/`` with a form-encoded body and/or query string.
The API key is taken from the ``X-PAN-KEY`` header, or from a ``key`` parameter as
real PAN-OS allows; every request is recorded in ``calls`` with where its key came
from, so tests can assert the key never travels in a URL or a body.

Faults (HTTP 5xx/429, session timeout, 403, slow answers, truncated or non-XML
bodies, dropped connections) are queued with ``inject`` and consumed one per request.
A device's runtime state is lost with ``reboot`` (what is not persistent goes) or
``clear`` (everything goes, as ``debug object registered-ip clear all``).

The server lifecycle (``start``/``stop``, ``url``, ``ca_file``, ``errors``) comes from
``FakeServer`` (``server.py``): plain HTTP, or HTTPS with a ``tls_dir``.

Run it as a process for a demo::

    python -m aksfw_local.fakes.panorama --port 0 --api-key KEY

which prints ``{"url": "http://127.0.0.1:PORT"}`` and serves until SIGTERM/SIGINT or
until its standard input is closed. A port it cannot listen on (in use, most often by a
simulator started before) is one line on stderr and exit 1, not a traceback.
"""

from __future__ import annotations

import argparse
import bisect
import enum
import hmac
import ipaddress
import json
import os
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal, Self
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from .server import FakeServer, HttpRequest, HttpResponse, listen_failure, listen_port

MAX_TAGS_PER_IP = 32
MAX_TAG_LENGTH = 127
MAX_TAG_TIMEOUT_S = 2_592_000
"""A tag's ``timeout`` is 0 (never expires) to 2592000 seconds (30 days)."""
MAX_PAGE = 500
"""``show object registered-ip``: ``limit`` is 1..500 (500 when absent)."""
MAX_START_POINT = 100_000
"""``show object registered-ip``: ``start-point`` is 1..100000 (1 when absent)."""

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_XML = "application/xml; charset=UTF-8"
_HTML = "text/html; charset=UTF-8"
_BAD_CREDENTIAL = (
    '<response status="error" code="403"><result><msg>Invalid Credential</msg></result></response>'
)
_INVALID_KEY = (
    '<response status="error" code="403"><result><msg>Invalid credentials.</msg></result>'
    "</response>"
)
_NOT_PERMITTED = (  # a valid key whose admin role lacks the request type's XML API permission
    '<response status="error" code="403"><result><msg>Unauthorized request.</msg></result>'
    "</response>"
)


class Fault(enum.Enum):
    """Faults that ``PanoramaSimulator.inject`` can queue."""

    HTTP_500 = "http-500"
    HTTP_503 = "http-503"  # with Retry-After
    HTTP_429 = "http-429"  # with Retry-After
    SESSION_TIMEOUT = "session-timeout"  # HTTP 200, code 22
    FORBIDDEN = "forbidden"  # HTTP 403, code 403
    SLOW = "slow"  # sleep slow_seconds, then answer normally
    TRUNCATED = "truncated"  # HTTP 200, cut-off XML
    NOT_XML = "not-xml"  # HTTP 200, an HTML page
    HTTP_501 = "http-501"  # a web server that does not implement POST (not an XML API)
    DROP = "drop"  # close the connection without answering
    DRIP = "drip"  # the normal answer, status line and headers too, a byte per drip_seconds
    ENDLESS = "endless"  # HTTP 200 with a body that never ends
    REDIRECT = "redirect"  # HTTP 307 to redirect_to (where a key would follow the body)


@dataclass(frozen=True)
class Call:
    """One API request as the simulator received it."""

    type: str
    target: str | None
    vsys: str | None
    body_bytes: int
    key_in_header: bool
    key_in_url: bool
    key_in_body: bool
    command: str | None
    fault: Fault | None


class _BadRequest(Exception):
    """A request the API rejects as a whole (nothing is applied)."""


class _OpSyntaxError(Exception):
    """An op command the CLI grammar does not know (code 17)."""


@dataclass(frozen=True)
class _EntryOp:
    ip: str  # as written in the request
    persistent: str | None
    tags: tuple[tuple[str, int], ...]  # (tag, timeout seconds; 0 = never expires)


@dataclass
class _Namespace:
    """Registered IPs of one (target, vsys): ip -> tag -> expiry (None = never)."""

    tags: dict[str, dict[str, float | None]] = field(default_factory=dict)
    persistent: dict[str, str] = field(default_factory=dict)
    next_expiry: float | None = None
    sort_keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    sorted_ips: list[str] | None = None
    sorted_keys: list[tuple[int, int]] = field(default_factory=list)

    def note_expiry(self, expiry: float | None) -> None:
        if expiry is not None and (self.next_expiry is None or expiry < self.next_expiry):
            self.next_expiry = expiry

    def purge(self, now: float) -> None:
        """Drop expired tags (and IPs left without tags); cheap when nothing expired."""
        if self.next_expiry is None or now < self.next_expiry:
            return
        next_expiry: float | None = None
        for ip in list(self.tags):
            tags = self.tags[ip]
            for tag, expiry in list(tags.items()):
                if expiry is None:
                    continue
                if expiry <= now:
                    del tags[tag]
                elif next_expiry is None or expiry < next_expiry:
                    next_expiry = expiry
            if not tags:
                self.remove_ip(ip)
        self.next_expiry = next_expiry

    def add_ip(
        self, ip: str, tags: dict[str, float | None], sort_key: tuple[int, int] | None = None
    ) -> None:
        self.tags[ip] = tags
        self.sort_keys[ip] = sort_key or _ip_sort_key(ip)
        self.sorted_ips = None

    def remove_ip(self, ip: str) -> None:
        del self.tags[ip]
        self.persistent.pop(ip, None)
        self.sort_keys.pop(ip, None)
        self.sorted_ips = None

    def ordered_ips(self) -> list[str]:
        if self.sorted_ips is None:
            self.sorted_ips = sorted(self.tags, key=self.sort_keys.__getitem__)
            self.sorted_keys = [self.sort_keys[ip] for ip in self.sorted_ips]
        return self.sorted_ips

    def ips_between(self, first: _Address, last: _Address) -> list[str]:
        """The IPs from ``first`` to ``last`` (one family), in order: a bisection, so a
        query by network stays cheap in a table of hundreds of thousands."""
        ips = self.ordered_ips()
        low = bisect.bisect_left(self.sorted_keys, (first.version, int(first)))
        high = bisect.bisect_right(self.sorted_keys, (last.version, int(last)))
        return ips[low:high]


def _normalize_ip(text: str, networks: bool = False) -> str | None:
    """An address in normal form; with ``networks``, a network (``a.b.c.d/nn``) too, its
    host bits cleared as PAN-OS stores it."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        pass
    if not networks or "/" not in text:
        return None
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        return None


def _ip_sort_key(ip: str) -> tuple[int, int]:
    """Address order; a network sorts at its first address, so a query by network or
    range lists the networks that start inside it (each in exactly one of disjoint
    queries, as an address is)."""
    network = ipaddress.ip_network(ip, strict=False)
    return network.version, int(network.network_address)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _xml(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, body.encode("utf-8"), _XML, headers or {})


def _error_result(code: int, msg: str) -> HttpResponse:
    """``<response status="error" code=N><result><msg>`` (HTTP 200, as PAN-OS does)."""
    return _xml(
        f'<response status="error" code="{code}"><result><msg>{escape(msg)}</msg></result>'
        "</response>"
    )


def _error_line(code: int, line: str) -> HttpResponse:
    """``<response status="error" code=N><msg><line>`` (HTTP 200)."""
    return _xml(
        f'<response status="error" code="{code}"><msg><line>{escape(line)}</line></msg></response>'
    )


def _valid_tag(tag: str) -> bool:
    return 0 < len(tag) <= MAX_TAG_LENGTH


class PanoramaSimulator(FakeServer):
    """In-process Panorama XML API on 127.0.0.1 (see the module docstring).

    Tests may change these attributes at any time: ``strict_duplicates``,
    ``reject_ips`` (IPs whose entries fail), ``clock`` (tag expiry time source),
    ``retry_after`` (Retry-After header value for HTTP 429/503 faults),
    ``slow_seconds`` (delay of the SLOW fault), ``sw_version`` (the PAN-OS version
    ``show system info`` reports; before 10.0, network entries are refused) and
    ``count_answer`` (how ``all option count`` is answered: ``"count"``, the number;
    ``"none"``, a success without a number; ``"refused"``, code 17 as a release that
    does not know the option).
    """

    def __init__(
        self,
        api_key: str = "test-key",
        users: dict[str, str] | None = None,
        tls_dir: Path | None = None,
        strict_duplicates: bool = False,
        firewalls: dict[str, str] | None = None,
        port: int = 0,
        sw_version: str = "11.1.0",
    ) -> None:
        super().__init__(tls_dir, port)
        self.sw_version = sw_version
        self.api_key = api_key
        self.users: dict[str, str] = dict(users) if users is not None else {"admin": "admin-pass"}
        self.strict_duplicates = strict_duplicates
        self.firewalls: dict[str, str] = dict(firewalls or {})
        self.reject_ips: set[str] = set()
        self.clock: Callable[[], float] = time.monotonic
        self.retry_after = "0"
        self.slow_seconds = 2.0
        self.drip_seconds = 0.05
        self.redirect_to = "https://elsewhere.invalid/api/"
        self.count_answer: Literal["count", "none", "refused"] = "count"
        self.role_lacks: set[str] = set()
        """Request types (``op``, ``user-id``) the key's admin role may not send: refused
        with code 403 once the key is accepted, as PAN-OS refuses a role without that XML
        API permission."""
        self.calls: list[Call] = []
        self._connected: set[str] = set(self.firewalls)
        self._namespaces: dict[tuple[str | None, str | None], _Namespace] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the simulator was answering at the same time."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()  # wakes requests sleeping in a SLOW fault
        super().stop()

    # ------------------------------------------------------------------ test helpers

    @property
    def accepts_networks(self) -> bool:
        """PAN-OS 10.0 and later register networks (``a.b.c.d/nn``) as well as addresses."""
        return _version_tuple(self.sw_version) >= (10, 0)

    def inject(self, fault: Fault, count: int = 1) -> None:
        """Queue ``fault`` for the next ``count`` requests (one fault per request)."""
        with self._lock:
            self._faults.extend([fault] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def disconnect(self, serial: str) -> None:
        """Mark a managed firewall as not connected (``target`` requests then fail)."""
        with self._lock:
            self._connected.discard(serial)

    def connect(self, serial: str) -> None:
        with self._lock:
            if serial not in self.firewalls:
                raise KeyError(serial)
            self._connected.add(serial)

    def write_calls(self) -> list[Call]:
        """The recorded ``type=user-id`` calls."""
        return [call for call in list(self.calls) if call.type == "user-id"]

    def reboot(self, target: str | None = None) -> None:
        """Restart a device: Panorama itself (None) or a managed firewall. It keeps the
        persistent registrations (``persistent="1"``, the default) with their timeouts and
        loses the others, in every vsys."""
        with self._lock:
            for (device, _vsys), namespace in self._namespaces.items():
                if device != target:
                    continue
                for ip in [ip for ip, flag in namespace.persistent.items() if flag == "0"]:
                    namespace.remove_ip(ip)

    def clear(self, target: str | None = None) -> None:
        """``debug object registered-ip clear all`` on a device (Panorama itself, None, or a
        managed firewall): every registration goes, persistent or not, in every vsys."""
        with self._lock:
            for device, vsys in list(self._namespaces):
                if device == target:
                    self._namespaces[(device, vsys)] = _Namespace()

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def registered(self, target: str | None = None, vsys: str | None = None) -> dict[str, set[str]]:
        """Unexpired tags per (normalised) IP of one namespace."""
        with self._lock:
            namespace = self._namespaces.get((target, vsys))
            if namespace is None:
                return {}
            namespace.purge(self.clock())
            return {ip: set(tags) for ip, tags in namespace.tags.items()}

    def seed(
        self,
        ip: str,
        tags: Iterable[str],
        target: str | None = None,
        vsys: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Register ``tags`` on ``ip`` directly, bypassing the API and its limits."""
        self.seed_many({ip: tags}, target, vsys, timeout)

    def seed_many(
        self,
        entries: Mapping[str, Iterable[str]],
        target: str | None = None,
        vsys: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """``seed`` for many IPs (or networks) at once (a table of hundreds of thousands in
        a second)."""
        parsed: dict[str, tuple[tuple[int, int], Iterable[str]]] = {}
        for ip, tags in entries.items():
            try:
                address = ipaddress.ip_address(ip.strip())
            except ValueError:
                network = _normalize_ip(ip, networks=True)
                if network is None:
                    raise ValueError(f"not an IP address or network: {ip!r}") from None
                parsed[network] = (_ip_sort_key(network), tags)
                continue
            parsed[str(address)] = ((address.version, int(address)), tags)
        with self._lock:
            now = self.clock()
            namespace = self._namespace(target, vsys)
            namespace.purge(now)
            expiry = now + timeout if timeout else None
            for ip, (sort_key, tags) in parsed.items():
                current = namespace.tags.get(ip)
                if current is None:
                    current = {}
                    namespace.add_ip(ip, current, sort_key)
                    namespace.persistent[ip] = "1"
                for tag in tags:
                    current[tag] = expiry
                if not current:
                    namespace.remove_ip(ip)
            namespace.note_expiry(expiry)

    # ------------------------------------------------------------------ request handling

    def _namespace(self, target: str | None, vsys: str | None) -> _Namespace:
        key = (target, vsys)
        namespace = self._namespaces.get(key)
        if namespace is None:
            namespace = self._namespaces[key] = _Namespace()
        return namespace

    def _handle(self, request: HttpRequest) -> HttpResponse:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, request: HttpRequest) -> HttpResponse:
        split = urlsplit(request.path)
        if split.path not in ("/api", "/api/"):
            return HttpResponse(404, b"<html><body>404 Not Found</body></html>", _HTML)
        if request.method not in ("GET", "POST"):
            return HttpResponse(405, b"<html><body>405 Method Not Allowed</body></html>", _HTML)

        query = parse_qs(split.query, keep_blank_values=True)
        body_params: dict[str, list[str]] = {}
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        unsupported_body = False
        if request.body:
            if content_type in ("", "application/x-www-form-urlencoded"):
                body_params = parse_qs(
                    request.body.decode("utf-8", "replace"), keep_blank_values=True
                )
            else:
                unsupported_body = True
        params = {name: values[0] for name, values in query.items()}
        params.update({name: values[0] for name, values in body_params.items()})

        header_key = request.headers.get("X-PAN-KEY")
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            self.calls.append(
                Call(
                    type=params.get("type", ""),
                    target=params.get("target") or None,
                    vsys=params.get("vsys") or None,
                    body_bytes=len(request.body),
                    key_in_header=header_key is not None,
                    key_in_url="key" in query,
                    key_in_body="key" in body_params,
                    command=params.get("cmd"),
                    fault=fault,
                )
            )
        if fault is Fault.SLOW:
            self._stopping.wait(self.slow_seconds)
        elif fault is not None and fault is not Fault.DRIP:
            return self._fault_response(fault)
        if unsupported_body:
            return _error_result(400, f"Unsupported Content-Type: {content_type}")
        key = header_key if header_key is not None else params.get("key")
        answer = self._dispatch(params, key)
        if fault is Fault.DRIP:
            return HttpResponse(answer.status, answer.body, answer.content_type, answer.headers,
                                pace_s=self.drip_seconds)  # fmt: skip
        return answer

    def _fault_response(self, fault: Fault) -> HttpResponse:
        retry = {"Retry-After": str(self.retry_after)}
        if fault is Fault.HTTP_500:
            return HttpResponse(500, b"<html><body>500 Internal Server Error</body></html>", _HTML)
        if fault is Fault.HTTP_503:
            body = b"<html><body>503 Service Unavailable</body></html>"
            return HttpResponse(503, body, _HTML, retry)
        if fault is Fault.HTTP_429:
            body = b"<html><body>429 Too Many Requests</body></html>"
            return HttpResponse(429, body, _HTML, retry)
        if fault is Fault.SESSION_TIMEOUT:
            return _error_line(22, "Session timed out")
        if fault is Fault.FORBIDDEN:
            return _xml(_INVALID_KEY, 403)
        if fault is Fault.TRUNCATED:
            return _xml('<response status="success"><result><uid-response><version>2.')
        if fault is Fault.ENDLESS:
            return HttpResponse(200, b"<entry>" * 8192, _XML, endless=True)
        if fault is Fault.REDIRECT:
            return HttpResponse(307, b"", _HTML, {"Location": self.redirect_to})
        if fault is Fault.HTTP_501:
            return HttpResponse(501, b"<html><body>501 Not Implemented</body></html>", _HTML)
        if fault is Fault.NOT_XML:
            page = (
                "<!DOCTYPE html><html><head><title>Maintenance</title></head>"
                "<body><p>The management server is restarting.<br></body></html>"
            )
            return HttpResponse(200, page.encode(), _HTML)
        return HttpResponse(0, drop=True)  # Fault.DROP

    def _dispatch(self, params: dict[str, str], key: str | None) -> HttpResponse:
        request_type = params.get("type", "")
        if request_type == "keygen":
            return self._keygen(params)
        if key is None or not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return _xml(_INVALID_KEY, 403)
        if request_type in self.role_lacks:
            return _xml(_NOT_PERMITTED, 403)
        if not request_type:
            return _error_result(400, "Missing parameter: type")
        target = params.get("target") or None
        vsys = params.get("vsys") or None
        if target is not None:
            with self._lock:
                connected = target in self._connected and target in self.firewalls
            if not connected:
                return _error_result(400, f"Device {target} is not connected")
        cmd = params.get("cmd")
        if request_type in ("user-id", "op") and not cmd:
            return _error_result(400, "Missing parameter: cmd")
        try:
            if request_type == "user-id":
                assert cmd is not None
                return self._user_id(cmd, target, vsys)
            if request_type == "op":
                assert cmd is not None
                return self._op(cmd, target, vsys)
        except _BadRequest as exc:
            return _error_result(400, f"Bad request: {exc}")
        except _OpSyntaxError as exc:
            return _error_line(17, str(exc))
        return _error_result(400, f"Unsupported request type: {request_type}")

    def _keygen(self, params: dict[str, str]) -> HttpResponse:
        user = params.get("user")
        password = params.get("password")
        expected = self.users.get(user or "")
        if (
            user is None
            or password is None
            or expected is None
            or not hmac.compare_digest(password.encode(), expected.encode())
        ):
            return _xml(_BAD_CREDENTIAL, 403)
        return _xml(
            f'<response status="success"><result><key>{escape(self.api_key)}</key></result>'
            "</response>"
        )

    # ------------------------------------------------------------------ user-id

    @staticmethod
    def _parse_uid_message(cmd: str) -> list[tuple[str, list[_EntryOp]]]:
        try:
            root = ET.fromstring(cmd)
        except ET.ParseError as exc:
            raise _BadRequest(f"malformed uid-message XML ({exc})") from exc
        if root.tag != "uid-message":
            raise _BadRequest(f"expected <uid-message>, got <{root.tag}>")
        payload: ET.Element | None = None
        for child in root:
            if child.tag == "version":
                if (child.text or "").strip() not in ("1.0", "2.0"):
                    raise _BadRequest(f"unsupported uid-message version {child.text!r}")
            elif child.tag == "type":
                if (child.text or "").strip() != "update":
                    raise _BadRequest(f"unsupported uid-message type {child.text!r}")
            elif child.tag == "payload":
                payload = child
            else:
                raise _BadRequest(f"unexpected element <{child.tag}> in <uid-message>")
        if payload is None:
            raise _BadRequest("uid-message has no <payload>")
        sections: list[tuple[str, list[_EntryOp]]] = []
        for section in payload:
            if section.tag not in ("register", "unregister"):
                raise _BadRequest(f"unsupported payload element <{section.tag}>")
            entries: list[_EntryOp] = []
            for entry in section:
                if entry.tag != "entry":
                    raise _BadRequest(f"unexpected element <{entry.tag}> in <{section.tag}>")
                ip = entry.get("ip")
                if ip is None:
                    raise _BadRequest(f"<entry> without ip attribute in <{section.tag}>")
                tag_elements = [child for child in entry if child.tag == "tag"]
                others = [child.tag for child in entry if child.tag != "tag"]
                if others or len(tag_elements) != 1:
                    raise _BadRequest(f"entry for ip {ip} must contain exactly one <tag>")
                tags: list[tuple[str, int]] = []
                for member in tag_elements[0]:
                    if member.tag != "member":
                        raise _BadRequest(f"unexpected element <{member.tag}> in <tag>")
                    timeout_text = member.get("timeout", "0").strip() or "0"
                    digits = timeout_text.isascii() and timeout_text.isdigit()
                    if not digits or int(timeout_text) > MAX_TAG_TIMEOUT_S:
                        raise _BadRequest(f"invalid timeout {timeout_text!r} for ip {ip}")
                    tags.append(((member.text or "").strip(), int(timeout_text)))
                if not tags:
                    raise _BadRequest(f"entry for ip {ip} has no tag <member>")
                persistent = entry.get("persistent")
                if persistent is not None and persistent.strip() not in ("0", "1"):
                    raise _BadRequest(f"invalid persistent {persistent!r} for ip {ip}")
                entries.append(_EntryOp(ip, persistent, tuple(tags)))
            sections.append((section.tag, entries))
        return sections

    def _user_id(self, cmd: str, target: str | None, vsys: str | None) -> HttpResponse:
        sections = self._parse_uid_message(cmd)
        messages: dict[str, list[tuple[str, str]]] = {}
        with self._lock:
            now = self.clock()
            namespace = self._namespace(target, vsys)
            namespace.purge(now)
            rejected = {_normalize_ip(ip, networks=True) or ip for ip in self.reject_ips}
            for section, entries in sections:
                out = messages.setdefault(section, [])
                for entry in entries:
                    if section == "register":
                        self._register(namespace, entry, now, rejected, out)
                    else:
                        self._unregister(namespace, entry, rejected, out)
        sections_xml = []
        for section, out in messages.items():
            if not out:
                sections_xml.append(f"<{section}/>")
                continue
            inner = "".join(
                f'<entry ip="{_attr(ip)}" message="{_attr(message)}"/>' for ip, message in out
            )
            sections_xml.append(f"<{section}>{inner}</{section}>")
        payload = "".join(sections_xml)
        uid = f"<uid-response><version>2.0</version><payload>{payload}</payload></uid-response>"
        if any(messages.values()):
            return _xml(f'<response status="error"><msg><line>{uid}</line></msg></response>')
        return _xml(f'<response status="success"><result>{uid}</result></response>')

    def _entry_ip(
        self, entry: _EntryOp, rejected: set[str], verb: str, out: list[tuple[str, str]]
    ) -> str | None:
        """The entry's address as the device keys it, or None after reporting why the
        entry fails (an invalid address, or one the `rejected` fault refuses)."""
        ip = _normalize_ip(entry.ip, self.accepts_networks)
        if ip is None:
            out.append((entry.ip, "Invalid ip address"))
        elif ip in rejected:
            out.append((entry.ip, f"Failed to {verb} ip-tag mapping"))
            return None
        return ip

    def _register(
        self,
        namespace: _Namespace,
        entry: _EntryOp,
        now: float,
        rejected: set[str],
        out: list[tuple[str, str]],
    ) -> None:
        ip = self._entry_ip(entry, rejected, "register", out)
        if ip is None:
            return
        current = namespace.tags.get(ip)
        created = current is None
        tags: dict[str, float | None] = {} if current is None else current
        for tag, timeout in entry.tags:
            if not _valid_tag(tag):
                out.append((entry.ip, "Invalid tag"))
                continue
            expiry = now + timeout if timeout > 0 else None
            if tag in tags:
                if self.strict_duplicates:
                    out.append((entry.ip, f"tag {tag} already exists, ignore"))
                tags[tag] = expiry  # a repeated registration refreshes the timeout
                namespace.note_expiry(expiry)
                continue
            if len(tags) >= MAX_TAGS_PER_IP:
                out.append(
                    (
                        entry.ip,
                        f"Failed to register: ip {entry.ip} has reached the maximum number "
                        f"of tags ({MAX_TAGS_PER_IP})",
                    )
                )
                continue
            tags[tag] = expiry
            namespace.note_expiry(expiry)
        if created and tags:
            namespace.add_ip(ip, tags)
        if ip in namespace.tags:
            if entry.persistent is not None:
                namespace.persistent[ip] = "0" if entry.persistent.strip() == "0" else "1"
            elif created:
                namespace.persistent[ip] = "1"

    def _unregister(
        self,
        namespace: _Namespace,
        entry: _EntryOp,
        rejected: set[str],
        out: list[tuple[str, str]],
    ) -> None:
        ip = self._entry_ip(entry, rejected, "unregister", out)
        if ip is None:
            return
        tags = namespace.tags.get(ip)
        if tags is None:
            if self.strict_duplicates:
                out.append((entry.ip, f"ip {entry.ip} does not exist, ignore unreg"))
            return
        for tag, _timeout in entry.tags:
            if not _valid_tag(tag):
                out.append((entry.ip, "Invalid tag"))
            elif tag in tags:
                del tags[tag]
            elif self.strict_duplicates:
                out.append((entry.ip, f"tag {tag} does not exist, ignore unreg"))
        if not tags:
            namespace.remove_ip(ip)

    # ------------------------------------------------------------------ op commands

    def _op(self, cmd: str, target: str | None, vsys: str | None) -> HttpResponse:
        try:
            root = ET.fromstring(cmd)
        except ET.ParseError as exc:
            raise _BadRequest(f"malformed op command XML ({exc})") from exc
        if root.tag != "show":
            raise _OpSyntaxError(f"{root.tag} is unexpected")
        children = list(root)
        if not children:
            raise _OpSyntaxError("show is incomplete")
        if len(children) > 1:
            raise _OpSyntaxError(f"show -> {children[1].tag} is unexpected")
        node = children[0]
        if node.tag == "devicegroups":
            return self._show_devicegroups()
        if node.tag == "system" and [child.tag for child in node] == ["info"]:
            return self._show_system_info()
        if node.tag != "object":
            raise _OpSyntaxError(f"show -> {node.tag} is unexpected")
        inner = list(node)
        if len(inner) != 1 or inner[0].tag != "registered-ip":
            name = inner[0].tag if inner else "object"
            raise _OpSyntaxError(f"show -> object -> {name} is unexpected")
        return self._show_registered_ip(inner[0], target, vsys)

    def _show_system_info(self) -> HttpResponse:
        """`show system info`: what clients read to learn the PAN-OS version."""
        return _xml(
            '<response status="success"><result><system>'
            "<hostname>simulator</hostname><model>Panorama</model><serial>007000000000</serial>"
            f"<sw-version>{escape(self.sw_version)}</sw-version>"
            "<app-version>8800-8900</app-version>"
            "<multi-vsys>off</multi-vsys>"
            "</system></result></response>"
        )

    def _show_devicegroups(self) -> HttpResponse:
        with self._lock:
            groups: dict[str, list[tuple[str, bool]]] = {}
            for serial, group in self.firewalls.items():
                groups.setdefault(group, []).append((serial, serial in self._connected))
        parts = ['<response status="success"><result><devicegroups>']
        for group in sorted(groups):
            parts.append(f'<entry name="{_attr(group)}"><devices>')
            for serial, connected in sorted(groups[group]):
                parts.append(
                    f'<entry name="{_attr(serial)}"><serial>{escape(serial)}</serial>'
                    f"<connected>{'yes' if connected else 'no'}</connected></entry>"
                )
            parts.append("</devices></entry>")
        parts.append("</devicegroups></result></response>")
        return _xml("".join(parts))

    def _show_registered_ip(
        self, node: ET.Element, target: str | None, vsys: str | None
    ) -> HttpResponse:
        """``show object registered-ip`` as PAN-OS 10.2/11.1 publish its op schema.

        One choice at most: ``all`` (optional ``<option>count|file</option>``), ``ip``
        (an address or address/netmask), ``iprange`` (``a-b``, one family, a <= b) or
        ``tag`` (``<entry name=...>``, with an optional ``ip`` or ``iprange`` beside it);
        no choice reads as ``all`` (pan-os-python sends none, and devices answer it).
        ``limit`` is 1..500 (500 when absent), ``start-point`` 1..100000 (1 when
        absent). Anything else (a value out of range, two choices, an unknown or repeated
        element) is refused with code 17, as a device refuses it.

        Entries come in address order, IPv4 first; a registered network (PAN-OS 10.0+)
        sorts at its first address, and ``ip``/``iprange`` list the networks that start
        inside them (an assumption: the published schema does not say how a device
        matches registered networks). ``all option count`` answers
        ``<result><count>N</count></result>``: the number of registered IPs, no entries.
        ``all option file`` answers a message and no entries (a device writes a file).
        ``count_answer`` makes ``all option count`` answer without a number, or refuse.
        """
        prefix = "show -> object -> registered-ip"
        limit = MAX_PAGE
        start = 1
        seen: set[str] = set()
        option: str | None = None
        tag_filter: set[str] | None = None
        bounds: tuple[_Address, _Address] | None = None
        for child in node:
            text = (child.text or "").strip()
            if child.tag in seen:
                raise _OpSyntaxError(f"{prefix} -> {child.tag} is unexpected")
            seen.add(child.tag)
            choices = seen & {"all", "ip", "iprange", "tag"}
            if len(choices) > 1 and choices not in ({"tag", "ip"}, {"tag", "iprange"}):
                raise _OpSyntaxError(f"{prefix} -> {child.tag} is unexpected")
            if child.tag in ("limit", "start-point"):
                highest = MAX_PAGE if child.tag == "limit" else MAX_START_POINT
                if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= highest:
                    raise _OpSyntaxError(f"{prefix} -> {child.tag} '{text}' is invalid")
                if child.tag == "limit":
                    limit = int(text)
                else:
                    start = int(text)
            elif child.tag == "all":
                option = self._all_option(child, prefix)
            elif child.tag == "tag":
                names = [entry.get("name", "") for entry in child if entry.tag == "entry"]
                if not names or any(not name for name in names) or len(names) != len(child):
                    raise _OpSyntaxError(f"{prefix} -> tag is invalid")
                tag_filter = set(names)
            elif child.tag in ("ip", "iprange"):
                bounds = _address_bounds(child.tag, text)
                if bounds is None:
                    raise _OpSyntaxError(f"{prefix} -> {child.tag} '{text}' is invalid")
            else:
                raise _OpSyntaxError(f"{prefix} -> {child.tag} is unexpected")

        if option == "file":
            return _xml(
                '<response status="success"><result><msg>registered-ip list written to '
                "file</msg></result></response>"
            )
        if option == "count" and self.count_answer == "refused":
            raise _OpSyntaxError(f"{prefix} -> all -> option is unexpected")
        if option == "count" and self.count_answer == "none":
            return _xml('<response status="success"><result/></response>')
        with self._lock:
            namespace = self._namespace(target, vsys)
            namespace.purge(self.clock())
            if option == "count":
                return _xml(
                    f'<response status="success"><result><count>{len(namespace.tags)}</count>'
                    "</result></response>"
                )
            ips: Sequence[str] = (
                namespace.ordered_ips() if bounds is None else namespace.ips_between(*bounds)
            )
            if tag_filter is not None:
                wanted = tag_filter
                ips = [ip for ip in ips if not wanted.isdisjoint(namespace.tags[ip])]
            page = ips[start - 1 : start - 1 + limit]
            rows = [
                (ip, sorted(namespace.tags[ip]), namespace.persistent.get(ip, "1")) for ip in page
            ]
        parts = ['<response status="success"><result>']
        for ip, tags, persistent in rows:
            members = "".join(f"<member>{escape(tag)}</member>" for tag in tags)
            parts.append(
                f'<entry ip="{ip}" from_agent="0" persistent="{persistent}">'
                f"<tag>{members}</tag></entry>"
            )
        parts.append(f"<count>{len(rows)}</count></result></response>")
        return _xml("".join(parts))

    @staticmethod
    def _all_option(node: ET.Element, prefix: str) -> str | None:
        children = list(node)
        if not children:
            return None
        option = children[0]
        text = (option.text or "").strip()
        if len(children) > 1 or option.tag != "option":
            name = children[-1].tag if option.tag == "option" else option.tag
            raise _OpSyntaxError(f"{prefix} -> all -> {name} is unexpected")
        if text not in ("count", "file") or len(option):
            raise _OpSyntaxError(f"{prefix} -> all -> option '{text}' is invalid")
        return text


def _address_bounds(kind: str, text: str) -> tuple[_Address, _Address] | None:
    """First and last address of an ``ip`` (address or address/netmask) or an ``iprange``
    (``a-b``, one family, a <= b); None when the text is not one."""
    try:
        if kind == "ip":
            network = ipaddress.ip_network(text, strict=False)
            return network.network_address, network.broadcast_address
        first_text, last_text = text.split("-")
        first = ipaddress.ip_address(first_text.strip())
        last = ipaddress.ip_address(last_text.strip())
    except ValueError:
        return None
    if first.version != last.version or int(first) > int(last):
        return None
    return first, last


# ---------------------------------------------------------------------- process mode


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a simulator until SIGTERM/SIGINT or end of standard input."""
    parser = argparse.ArgumentParser(
        prog="python -m aksfw_local.fakes.panorama",
        description="Panorama XML API simulator (test fake)",
    )
    parser.add_argument("--port", type=listen_port, default=0, help="0: a free one")
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD")
    parser.add_argument("--firewall", action="append", default=[], metavar="SERIAL=DEVICEGROUP")
    parser.add_argument("--tls-dir", type=Path, default=None)
    parser.add_argument("--strict-duplicates", action="store_true")
    parser.add_argument("--sw-version", default="11.1.0", help="PAN-OS version to play")
    parser.add_argument(
        "--count-answer",
        choices=("count", "none", "refused"),
        default="count",
        help="how `show object registered-ip all option count` is answered",
    )
    parser.add_argument(
        "--ignore-stdin", action="store_true", help="do not stop when stdin is closed"
    )
    args = parser.parse_args(argv)

    users = dict(item.split(":", 1) for item in args.user) if args.user else None
    firewalls = dict(item.split("=", 1) for item in args.firewall)
    simulator = PanoramaSimulator(
        api_key=args.api_key,
        users=users,
        tls_dir=args.tls_dir,
        strict_duplicates=args.strict_duplicates,
        firewalls=firewalls,
        port=args.port,
        sw_version=args.sw_version,
    )
    simulator.count_answer = args.count_answer
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin(fd: int) -> None:
        # os.read on the raw descriptor: a buffered read would hold a lock that
        # blocks interpreter shutdown when a signal ends the process instead.
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        finally:
            done.set()

    try:
        simulator.start()
    except OSError as error:  # a second paste of the README's block: one line, no traceback
        print(f"aksfw_local.fakes.panorama: {listen_failure(args.port, error)}", file=sys.stderr)
        return 1
    try:
        info = {"url": simulator.url}
        if simulator.ca_file is not None:
            info["ca_file"] = str(simulator.ca_file)
        print(json.dumps(info), flush=True)
        if not args.ignore_stdin and sys.stdin is not None:
            watcher = threading.Thread(
                target=watch_stdin, args=(sys.stdin.fileno(),), name="stdin-watch", daemon=True
            )
            watcher.start()
        while not done.wait(0.2):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
