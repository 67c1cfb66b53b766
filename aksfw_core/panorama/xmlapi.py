"""The PAN-OS XML API as data: uid-messages, op commands, and the parsing of responses.

XML is built and read with ElementTree, never by string formatting, so no tag or IP can
inject markup. Pure code: no I/O.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias
from urllib.parse import quote_plus
from xml.parsers.expat import errors as expat_errors

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from aksfw_core.errors import AuthError, NonRetryable, Retryable, http_error
from aksfw_core.rules.plan import TagPlan
from aksfw_core.rules.tags import is_network

MAX_REQUEST_BYTES = 5_000_000
"""PAN-OS refuses XML API requests larger than 5 MB (read as decimal megabytes, the safer)."""

# Room left for the form fields around `cmd` (type, target, vsys) and their separators.
_FORM_OVERHEAD_BYTES = 4096

# PAN-OS error codes worth another try: internal errors, and 22, session timed out.
_TRANSIENT_CODES = frozenset({"2", "3", "4", "5", "11", "21", "22"})

_BENIGN_SUFFIXES = ("already exists, ignore", "does not exist, ignore unreg")

Action = Literal["register", "unregister"]


@dataclass(frozen=True)
class UidBatch:
    """One uid-message, small enough for one request."""

    command: str
    """The uid-message XML."""
    register_count: int
    """IP-tag pairs it registers."""
    unregister_count: int
    """IP-tag pairs it unregisters."""


@dataclass(frozen=True)
class EntryMessage:
    """A per-entry message in a uid-response."""

    action: Action
    ip: str
    message: str

    @property
    def benign(self) -> bool:
        """True for "already there" / "already gone": the entry is in the wanted state."""
        return self.message.endswith(_BENIGN_SUFFIXES)


def uid_batches(
    plan: TagPlan,
    batch_entries: int = 1000,
    tag_timeout_s: int = 0,
    max_request_bytes: int = MAX_REQUEST_BYTES,
) -> Iterator[UidBatch]:
    """Split a plan into uid-messages of at most `batch_entries` IP entries and at most
    `max_request_bytes` once form-encoded.

    Unregisters come before registers (in earlier batches, or first within a batch) so a
    changed IP frees room under the 32-tags limit before it gains new tags. Every register
    entry says `persistent="1"`: it survives a reboot of the device.
    """
    if batch_entries < 1:
        raise ValueError("batch_entries must be at least 1")
    budget = max_request_bytes - _FORM_OVERHEAD_BYTES
    batch = _BatchBuilder()
    entries: list[tuple[Action, str, frozenset[str]]] = [
        ("unregister", ip, plan.unregister[ip]) for ip in sorted(plan.unregister)
    ]
    entries += [("register", ip, plan.register[ip]) for ip in sorted(plan.register)]
    for action, ip, tags in entries:
        entry = _entry(action, ip, tags, tag_timeout_s)
        size = len(quote_plus(ET.tostring(entry, encoding="unicode")))
        if batch.entries and (batch.entries >= batch_entries or batch.size + size > budget):
            yield batch.build()
            batch = _BatchBuilder()
        batch.add(action, entry, len(tags), size)
    if batch.entries:
        yield batch.build()


class _BatchBuilder:
    def __init__(self) -> None:
        self.root = ET.Element("uid-message")
        ET.SubElement(self.root, "version").text = "2.0"
        ET.SubElement(self.root, "type").text = "update"
        self.payload = ET.SubElement(self.root, "payload")
        self.sections: dict[str, ET.Element] = {}
        self.counts = {"register": 0, "unregister": 0}
        self.entries = 0
        self.size = len(quote_plus(ET.tostring(self.root, encoding="unicode"))) + 64

    def add(self, action: Action, entry: ET.Element, pairs: int, size: int) -> None:
        if action not in self.sections:
            self.sections[action] = ET.SubElement(self.payload, action)
            self.size += 2 * len(action) + 16
        self.sections[action].append(entry)
        self.counts[action] += pairs
        self.entries += 1
        self.size += size

    def build(self) -> UidBatch:
        return UidBatch(
            command=ET.tostring(self.root, encoding="unicode"),
            register_count=self.counts["register"],
            unregister_count=self.counts["unregister"],
        )


def _entry(
    action: Action, ip: str, tags: frozenset[str], tag_timeout_s: int, persistent: bool = True
) -> ET.Element:
    entry = ET.Element("entry", ip=ip)
    if action == "register":
        # Said, not left to the release's default: a persistent registration survives a
        # reboot of the device (only aksfw's canary is registered otherwise).
        entry.set("persistent", "1" if persistent else "0")
    tag_element = ET.SubElement(entry, "tag")
    for tag in sorted(tags):
        member = ET.SubElement(tag_element, "member")
        member.text = tag
        if action == "register" and tag_timeout_s > 0:
            member.set("timeout", str(tag_timeout_s))
    return entry


def canary_command(action: Action, ip: str, tag: str, timeout_s: int) -> str:
    """The uid-message that registers a canary (`persistent="0"`, its tag with a timeout of
    `timeout_s`, so that a reboot or a clear removes it and it expires by itself) or
    unregisters it."""
    batch = _BatchBuilder()
    entry = _entry(action, ip, frozenset({tag}), timeout_s, persistent=False)
    batch.add(action, entry, 1, 0)
    return batch.build().command


REGISTERED_MAX_LIMIT = 500
"""`show object registered-ip`: entries one answer may hold at most (`limit` 1..500)."""

REGISTERED_MAX_START_POINT = 100_000
"""`show object registered-ip`: the highest `start-point` a device accepts (1..100000)."""

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An `address/netmask` that `show object registered-ip ip` accepts."""


def registered_ip_command(limit: int, start_point: int, within: Network | None = None) -> str:
    """`show object registered-ip` for one page: `all`, or the IPs `within` one network
    (the `ip` choice with a netmask). `start_point` counts from 1.

    Raises:
        ValueError: `limit` or `start_point` lies outside what a device accepts.
    """
    if not 1 <= limit <= REGISTERED_MAX_LIMIT:
        raise ValueError(f"limit must be 1..{REGISTERED_MAX_LIMIT}, not {limit}")
    if not 1 <= start_point <= REGISTERED_MAX_START_POINT:
        raise ValueError(f"start-point must be 1..{REGISTERED_MAX_START_POINT}, not {start_point}")
    show, query = _registered_ip_query()
    if within is None:
        ET.SubElement(query, "all")
    else:
        ET.SubElement(query, "ip").text = str(within)
    ET.SubElement(query, "limit").text = str(limit)
    ET.SubElement(query, "start-point").text = str(start_point)
    return ET.tostring(show, encoding="unicode")


def registered_count_command() -> str:
    """`show object registered-ip all option count`: how many IPs are registered."""
    show, query = _registered_ip_query()
    ET.SubElement(ET.SubElement(query, "all"), "option").text = "count"
    return ET.tostring(show, encoding="unicode")


def _registered_ip_query() -> tuple[ET.Element, ET.Element]:
    show = ET.Element("show")
    return show, ET.SubElement(ET.SubElement(show, "object"), "registered-ip")


def devicegroups_command() -> str:
    """`show devicegroups`: the device groups and their firewalls, as Panorama sees them."""
    show = ET.Element("show")
    ET.SubElement(show, "devicegroups")
    return ET.tostring(show, encoding="unicode")


def connected_firewalls(root: ET.Element) -> dict[str, list[str]]:
    """Device group → serials of its connected firewalls, from a `show devicegroups` answer."""
    groups: dict[str, list[str]] = {}
    for group in root.findall("result/devicegroups/entry"):
        serials = groups.setdefault(group.get("name", ""), [])
        for device in group.findall("devices/entry"):
            serial = device.findtext("serial") or device.get("name") or ""
            if serial and (device.findtext("connected") or "").strip() == "yes":
                serials.append(serial)
    return groups


def parse_response(
    http_status: int, body: bytes, retry_after: float | None = None, source: str = "Panorama"
) -> ET.Element:
    """Check an XML API response from `source` (the host, for messages) and return its
    root element.

    A `status="error"` response that carries a uid-response is returned, not raised:
    its per-entry messages are read by `entry_messages`.

    Raises:
        AuthError: HTTP 401/403 or PAN-OS code 403.
        Retryable: HTTP 429/5xx, an XML answer cut short, or a PAN-OS error code that
            means a transient fault (22, session timed out; internal errors).
        NonRetryable: HTTP 501, or an answer that is not PAN-OS XML (an HTML page, text,
            XML with a DTD): the address is not an XML API, and asking again will not
            change that; any other error: the request itself is wrong.
    """
    if http_status == 501:
        raise _not_an_xml_api(source, f"HTTP {http_status}", http_status)
    if http_status == 429 or http_status >= 500:
        raise http_error(http_status, f"{source} answered with an error", retry_after)
    root = _parse_xml(body, http_status, source)
    code = root.get("code")
    if http_status in (401, 403) or code == "403":
        message = f"API key or credentials refused (HTTP {http_status}, code {code})"
        raise AuthError(message, status=http_status)
    if root.tag != "response":
        raise Retryable(f"unexpected XML root <{root.tag}> (HTTP {http_status})")
    if root.get("status") == "success" and http_status == 200:
        return root
    if root.get("status") == "error" and code is None and root.find(".//uid-response") is not None:
        return root
    detail = _error_text(root)
    if code in _TRANSIENT_CODES:
        raise Retryable(f"PAN-OS error code {code}: {detail}", status=http_status)
    raise PanosError(
        f"PAN-OS error (HTTP {http_status}, code {code}): {detail}", code, status=http_status
    )


CODE_SYNTAX = "17"
"""The PAN-OS error code of a command its release does not know (or a value out of range)."""


class PanosError(NonRetryable):
    """A request PAN-OS refused with an error answer; `code` is its error code, if any."""

    def __init__(self, message: str, code: str | None, *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.code = code


NETWORK_ENTRY_NOTE = (
    "an entry for a network (a node subnet): PAN-OS accepts networks in User-ID "
    "registrations from version 10.0 on"
)
"""Added to every refusal of a network entry, so a device older than 10.0 explains itself."""


def entry_messages(root: ET.Element) -> list[EntryMessage]:
    """The per-entry messages of a uid-message response (empty when all went through).

    The message of a refused network entry (`a.b.c.d/nn`) says that networks need
    PAN-OS 10.0 or later: the likeliest cause, named without reading the device's text.
    """
    messages: list[EntryMessage] = []
    for payload in root.iter("payload"):
        for action in ("register", "unregister"):
            for section in payload.findall(action):
                for entry in section.findall("entry"):
                    ip, message = entry.get("ip", ""), entry.get("message", "")
                    if not message:
                        continue
                    found = EntryMessage(action, ip, message)
                    if is_network(ip) and not found.benign:
                        found = EntryMessage(action, ip, f"{message} ({NETWORK_ENTRY_NOTE})")
                    messages.append(found)
    return messages


def registered_page(root: ET.Element) -> list[tuple[str, frozenset[str]]]:
    """The (ip, tags) entries of one `show object registered-ip` page."""
    result = root.find("result")
    if result is None:
        raise Retryable("registered-ip response without <result>")
    page: list[tuple[str, frozenset[str]]] = []
    for entry in result.findall("entry"):
        ip = _normalise_ip(entry.get("ip", ""))
        tags = frozenset(m.text for m in entry.findall("tag/member") if m.text)
        page.append((ip, tags))
    return page


def registered_count(root: ET.Element) -> int | None:
    """The number of registered IPs in a `show object registered-ip all option count`
    answer, `<result><count>N</count></result>`; None when the answer holds no count."""
    text = (root.findtext("result/count") or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def api_key(root: ET.Element) -> str:
    """The key of a keygen response.

    Raises:
        NonRetryable: the response holds no key.
    """
    key = root.findtext("result/key")
    if not key:
        raise NonRetryable("keygen response holds no key")
    return key


def form_fields(fields: Mapping[str, str | None]) -> dict[str, str]:
    """Drop unset optional fields (target, vsys) from a request's form."""
    return {name: value for name, value in fields.items() if value is not None}


# Parse errors of an XML answer cut short (the rest may come next time), not of another kind
# of document.
_CUT_SHORT = frozenset(
    expat_errors.codes[message]
    for message in (
        expat_errors.XML_ERROR_NO_ELEMENTS,
        expat_errors.XML_ERROR_UNCLOSED_TOKEN,
        expat_errors.XML_ERROR_PARTIAL_CHAR,
    )
)


def _parse_xml(body: bytes, http_status: int, source: str) -> ET.Element:
    # PAN-OS never sends a DTD (an HTML page does). defusedxml refuses any DTD, entity
    # declaration or external reference whatever the body's encoding.
    try:
        root: ET.Element = safe_fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise _not_an_xml_api(source, _kind_of(body, http_status), http_status) from None
    except ET.ParseError as error:
        if error.code in _CUT_SHORT:
            raise Retryable(
                f"{source} answered XML that is cut short (HTTP {http_status}): {error}",
                status=http_status,
            ) from None
        raise _not_an_xml_api(source, _kind_of(body, http_status), http_status) from None
    return root


def _not_an_xml_api(source: str, answer: str, http_status: int) -> NonRetryable:
    return NonRetryable(
        f"{source} does not answer like a PAN-OS XML API ({answer}): check the Panorama "
        "address (--panorama, or panorama.host in the configuration)",
        status=http_status,
    )


def _kind_of(body: bytes, http_status: int) -> str:
    start = body.lstrip()[:64].lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return f"an HTML page, HTTP {http_status}"
    return f"an answer that is not PAN-OS XML, HTTP {http_status}"


def _error_text(root: ET.Element) -> str:
    parts = [text.strip() for text in root.itertext() if text.strip()]
    text = " ".join(parts) or "no message"
    return text[:300]


def _normalise_ip(ip: str) -> str:
    """An address, or a network (`a.b.c.d/nn`, registered since PAN-OS 10.0), in the form
    aksfw keys them by; anything else as the device wrote it."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        pass
    if is_network(ip):
        try:
            return str(ipaddress.ip_network(ip, strict=False))
        except ValueError:
            pass
    return ip
