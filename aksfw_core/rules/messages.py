"""The one place that knows the queue message schema (versioned JSON). Pure code.

Two queues carry them: `cluster-resync` holds `ResyncRequest`s, `panorama-updates` holds
`Snapshot`s, one per (cluster, target). A message stays under the 64 KiB Storage limit
once the host's base64 is applied: a large snapshot is gzip-compressed inline, and one
still too large is written to a blob by the queue adapter and sent as a `BlobReference`.

Schema versions. Version 1: kinds `resync`, `snapshot`, `gzip` (a compressed message) and
`blob` (a reference to a blob holding a whole message). Version 2 adds the shared payload
of a device-group fan-out: kind `payload` is a snapshot without its target, written once
to a blob, and a version-2 `blob` reference names that blob and the `target` it is for, so
thirty firewalls' messages share one copy of the cluster's tags. Every message is written
with the oldest version that can express it: a version-1 reader refuses only the new
references (by version, so they go to the poison queue and the next resync heals them),
and this reader reads both.

Telemetry fields, in any kind that carries a request or a snapshot: `traceparent` and
`tracestate` (the W3C trace context of the span that sent it, so an event, its resync and
its applies form one trace) and `originTime` (seconds since the epoch when the change
began: the event's time, or when a timer, HTTP or follow-up request was due; the lag is
measured from it). They are optional and need no new version: every reader so far reads
the fields it knows by name and ignores the rest, so an older instance still running
during a deployment applies such a message exactly as before and only loses its trace and
lag, while a version bump would make it poison every message. They are data, not
authority: a malformed, oversized or all-zero value is dropped (the message is processed
without it), never trusted and never a reason to poison the message.

`confirm` (a resync request's; written only when true, so every other request reads as
before) marks the delayed second list of a held-back mass removal. It needs no new version
either: an older reader takes it for an ordinary resync.

`compareSince` (a resync request's and a snapshot's; written only when set) is when the
comparison with the targets it asks for was decided: an audit's start, or when a target
was found to have forgotten. A target's table read since then serves it
(`pipeline.shared_tables`). No new version either: an older reader reads the target
itself, and an implausible value is dropped like an origin time (the applier's own
freshness rule then decides), never a reason to poison the message.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aksfw_core.errors import InputError
from aksfw_core.jsondoc import load_json
from aksfw_core.limits import Limits
from aksfw_core.rules.model import IpTags, ip_tags_json

SCHEMA_VERSION = 1
"""The version of every kind but the shared payload and its references."""
SHARED_PAYLOAD_VERSION = 2
"""The version that adds `payload` and `blob` references with a `target`."""
KNOWN_VERSIONS = (SCHEMA_VERSION, SHARED_PAYLOAD_VERSION)
MAX_QUEUE_TEXT = 48_000
"""Characters of JSON per message at most: base64 makes 64,000, under the 64 KiB limit."""
PANORAMA_TARGET = "panorama"
"""The target name for Panorama itself; other targets are firewall serials."""
MAX_TRACESTATE = 512
"""Characters of `tracestate` kept at most (W3C: 32 members, 512 characters suffice)."""

_TRACEPARENT_RE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
"""Version 00 of the W3C `traceparent`, the only one written."""
_TRACESTATE_RE = re.compile(r"[\x20-\x7e]*")
_EARLIEST_ORIGIN = 1_000_000_000.0
"""2001: an origin time before this is not one aksfw wrote."""
_LATEST_ORIGIN = 10_000_000_000.0
"""2286: nor one after this."""


class MalformedMessage(InputError):
    """A message that can never be processed: it goes to the poison queue at once."""


_SERIAL_RE = re.compile(r"[0-9A-Za-z]{1,32}")


def is_firewall_serial(text: str) -> bool:
    """Whether `text` can be a managed firewall's serial number (a target other than
    `PANORAMA_TARGET`)."""
    return _SERIAL_RE.fullmatch(text) is not None


@dataclass(frozen=True)
class TraceContext:
    """A W3C trace context, checked: build it with `read_trace_context`."""

    traceparent: str
    tracestate: str | None = None


@dataclass(frozen=True)
class ResyncRequest:
    """Read one cluster's Services again and queue its snapshots."""

    cluster_id: str
    reason: str
    follow_up: bool = False
    """The delayed resync after an event; it schedules no further follow-up."""
    audit: bool = False
    """Compare with what Panorama really holds, not with the saved state."""
    trace: TraceContext | None = None
    """The trace of the work that queued it (telemetry only)."""
    origin_time: float | None = None
    """When the change began, in seconds since the epoch (telemetry only)."""
    confirm: bool = False
    """The delayed second list of a held-back mass removal: the removal goes ahead only if
    it finds the same wanted tags (`pipeline.resyncer`)."""
    compare_since: float | None = None
    """When the comparison with the targets this request asks for was decided, in seconds
    since the epoch (an audit's start, a target found to have forgotten): a target's table
    read since then serves it. Its snapshots carry it on."""


@dataclass(frozen=True)
class Snapshot:
    """The complete wanted IP-tags of one cluster on one target."""

    cluster_id: str
    tag_name: str
    target: str
    """`panorama`, or a firewall serial."""
    version: int
    """When the Services were read (ns since the epoch): newer wins."""
    tags: IpTags = field(default_factory=dict)
    tombstone: bool = False
    """The cluster is gone or no longer monitored: remove all of its tags."""
    audit: bool = False
    trace: TraceContext | None = None
    """The trace of the resync that queued it (telemetry only)."""
    origin_time: float | None = None
    """When the change it carries began, in seconds since the epoch (telemetry only)."""
    compare_since: float | None = None
    """As its resync request's: a target's table read since then serves its comparison."""

    @cached_property
    def fingerprint(self) -> str:
        """Identifies the wanted state (tags, tombstone), whatever the version."""
        return fingerprint(self.tags, self.tombstone)


@dataclass(frozen=True)
class BlobReference:
    """A message whose body was too large for the queue and sits in a blob."""

    blob: str
    target: str | None = None
    """None: the blob holds a whole message (version 1). Otherwise the blob holds a shared
    payload (a snapshot without its target) and this message is for `target`."""


Message = ResyncRequest | Snapshot


def read_trace_context(traceparent: object, tracestate: object = None) -> TraceContext | None:
    """A W3C trace context from untrusted values (a message, the Functions host), or None
    when `traceparent` is not a well-formed version-00 one with non-zero IDs. A
    `tracestate` that is not printable ASCII of at most `MAX_TRACESTATE` characters is
    dropped alone. Never raises."""
    if not isinstance(traceparent, str) or len(traceparent) != 55:
        return None
    match = _TRACEPARENT_RE.fullmatch(traceparent)
    if match is None or not int(match[1], 16) or not int(match[2], 16):
        return None
    state = None
    if (
        isinstance(tracestate, str)
        and 0 < len(tracestate) <= MAX_TRACESTATE
        and _TRACESTATE_RE.fullmatch(tracestate)
    ):
        state = tracestate
    return TraceContext(traceparent, state)


def read_origin_time(value: object) -> float | None:
    """An origin time from an untrusted value, or None when it is not a plausible number
    of seconds since the epoch. Never raises."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or not _EARLIEST_ORIGIN <= seconds <= _LATEST_ORIGIN:
        return None
    return seconds


def plausible_origin(when: float | None, now: float, max_age_s: float, max_ahead_s: float) -> float:
    """When a change happened, for its lag: `when` (an event's own time) if it lies within
    `max_age_s` before `now` and `max_ahead_s` after it, else `now` (the event's clock, or
    its sender, cannot be believed: the lag is measured from its arrival instead)."""
    if when is None or not now - max_age_s <= when <= now + max_ahead_s:
        return now
    return when


def fingerprint(tags: IpTags, tombstone: bool = False) -> str:
    """A stable digest of an IP-tag map."""
    canonical = json.dumps([tombstone, ip_tags_json(tags)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode(message: Message) -> str:
    """JSON text for the queue, gzip-compressed when large. It may still exceed
    `MAX_QUEUE_TEXT`; the queue adapter then stores it in a blob."""
    text = _dump(_as_dict(message))
    if len(text) <= MAX_QUEUE_TEXT:
        return text
    packed = base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()
    return _dump({"v": SCHEMA_VERSION, "kind": "gzip", "data": packed})


def encode_payload(snapshot: Snapshot) -> str:
    """The shared payload of `snapshot` for a blob: everything but its target, always
    gzip-compressed (it is only written when even the compressed message is too large)."""
    document = _as_dict(snapshot)
    del document["target"]
    document.update(v=SHARED_PAYLOAD_VERSION, kind="payload")
    packed = base64.b64encode(gzip.compress(_dump(document).encode(), mtime=0)).decode()
    return _dump({"v": SCHEMA_VERSION, "kind": "gzip", "data": packed})


def encode_reference(reference: BlobReference) -> str:
    if reference.target is None:
        return _dump({"v": SCHEMA_VERSION, "kind": "blob", "blob": reference.blob})
    return _dump(
        {
            "v": SHARED_PAYLOAD_VERSION,
            "kind": "blob",
            "blob": reference.blob,
            "target": reference.target,
        }
    )


def decode(text: str | bytes, max_bytes: int = Limits.max_message_bytes) -> Message | BlobReference:
    """Read a message; a compressed one may unpack to `max_bytes` at most.

    Raises:
        MalformedMessage: not a message of a known kind and version, or larger than
            `max_bytes`, naming what is wrong.
    """
    document = _unpacked(text, max_bytes)
    kind = document.get("kind")
    if kind == "blob":
        shared = document["v"] >= SHARED_PAYLOAD_VERSION
        return BlobReference(
            _field(document, "blob", str), _field(document, "target", str) if shared else None
        )
    if kind == "payload":
        raise MalformedMessage("message: a shared payload is read only through a reference")
    if kind == "resync":
        return ResyncRequest(
            cluster_id=_field(document, "cluster", str),
            reason=_field(document, "reason", str),
            follow_up=_field(document, "followUp", bool, False),
            audit=_field(document, "audit", bool, False),
            trace=_trace(document),
            origin_time=read_origin_time(document.get("originTime")),
            confirm=_field(document, "confirm", bool, False),
            compare_since=read_origin_time(document.get("compareSince")),
        )
    if kind == "snapshot":
        return _snapshot(document, _field(document, "target", str))
    raise MalformedMessage(f"message: unknown kind {kind!r}")


def decode_payload(
    text: str | bytes, target: str, max_bytes: int = Limits.max_message_bytes
) -> Snapshot:
    """Read a shared payload (`encode_payload`) as the snapshot for `target`.

    Raises:
        MalformedMessage: not a shared payload, or larger than `max_bytes` unpacked.
    """
    document = _unpacked(text, max_bytes)
    if document.get("kind") != "payload" or document["v"] < SHARED_PAYLOAD_VERSION:
        raise MalformedMessage("message: a shared reference points at no shared payload")
    return _snapshot(document, target)


def _unpacked(text: str | bytes, max_bytes: int) -> Mapping[str, Any]:
    """The document, decompressed to `max_bytes` at most. One layer of compression only:
    the encoder never makes more, and a gzip quine would unpack for ever."""
    if len(text) > max_bytes:
        raise MalformedMessage(f"message: larger than {max_bytes} bytes")
    document = _load(text)
    if document.get("kind") == "gzip":
        document = _load(_gunzip(_field(document, "data", str), max_bytes))
        if document.get("kind") == "gzip":
            raise MalformedMessage("message: gzip inside gzip")
    return document


def _snapshot(document: Mapping[str, Any], target: str) -> Snapshot:
    return Snapshot(
        cluster_id=_field(document, "cluster", str),
        tag_name=_field(document, "tagName", str),
        target=target,
        version=_field(document, "version", int),
        tags=_tags(document.get("tags")),
        tombstone=_field(document, "tombstone", bool, False),
        audit=_field(document, "audit", bool, False),
        trace=_trace(document),
        origin_time=read_origin_time(document.get("originTime")),
        compare_since=read_origin_time(document.get("compareSince")),
    )


def _gunzip(data: str, max_bytes: int) -> bytes:
    try:
        inflater = zlib.decompressobj(wbits=31)  # gzip framing
        text = inflater.decompress(base64.b64decode(data, validate=True), max_bytes)
    except (ValueError, zlib.error):
        raise MalformedMessage("message: gzip data is corrupt") from None
    if inflater.unconsumed_tail:
        raise MalformedMessage(f"message: unpacks to more than {max_bytes} bytes")
    if not inflater.eof:
        raise MalformedMessage("message: gzip data is truncated")
    return text


def _as_dict(message: Message) -> dict[str, Any]:
    return _core_dict(message) | _telemetry_dict(message)


def _core_dict(message: Message) -> dict[str, Any]:
    if isinstance(message, ResyncRequest):
        request = {
            "v": SCHEMA_VERSION,
            "kind": "resync",
            "cluster": message.cluster_id,
            "reason": message.reason,
            "followUp": message.follow_up,
            "audit": message.audit,
        }
        if message.confirm:  # only when set: the message is otherwise as before
            request["confirm"] = True
        return request | _compare_since(message)
    snapshot = {
        "v": SCHEMA_VERSION,
        "kind": "snapshot",
        "cluster": message.cluster_id,
        "tagName": message.tag_name,
        "target": message.target,
        "version": message.version,
        "tombstone": message.tombstone,
        "audit": message.audit,
        "tags": ip_tags_json(message.tags),
    }
    return snapshot | _compare_since(message)


def _compare_since(message: Message) -> dict[str, Any]:
    """`compareSince` when it is set (none: the message as before)."""
    return {} if message.compare_since is None else {"compareSince": message.compare_since}


def _telemetry_dict(message: Message) -> dict[str, Any]:
    """The optional telemetry fields that are set (none: the message as before)."""
    document: dict[str, Any] = {}
    if message.trace is not None:
        document["traceparent"] = message.trace.traceparent
        if message.trace.tracestate:
            document["tracestate"] = message.trace.tracestate
    if message.origin_time is not None:
        document["originTime"] = message.origin_time
    return document


def _trace(document: Mapping[str, Any]) -> TraceContext | None:
    return read_trace_context(document.get("traceparent"), document.get("tracestate"))


def _dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


def _load(text: str | bytes) -> Mapping[str, Any]:
    try:
        document = load_json(text, "message")
    except InputError as error:
        raise MalformedMessage(str(error)) from None
    if not isinstance(document, dict):
        raise MalformedMessage("message: expected a JSON object")
    version = document.get("v")
    if isinstance(version, bool) or version not in KNOWN_VERSIONS:
        known = " or ".join(str(v) for v in KNOWN_VERSIONS)
        raise MalformedMessage(f"message: schema version {version!r} is not {known}")
    return document


_MISSING = object()


def _field(document: Mapping[str, Any], key: str, kind: type, default: Any = _MISSING) -> Any:
    value = document.get(key, _MISSING)
    if value is _MISSING and default is not _MISSING:
        return default
    if (
        value is _MISSING
        or not isinstance(value, kind)
        or (kind is int and isinstance(value, bool))
    ):
        raise MalformedMessage(f"message: {key} must be a {kind.__name__}")
    if isinstance(value, str) and not value:
        raise MalformedMessage(f"message: {key} is empty")
    return value


def _tags(value: object) -> dict[str, frozenset[str]]:
    if not isinstance(value, dict):
        raise MalformedMessage("message: tags must be an object of IP → tag list")
    tags: dict[str, frozenset[str]] = {}
    for ip, members in value.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise MalformedMessage(f"message: tags of {ip!r} must be a list of strings")
        tags[ip] = frozenset(members)
    return tags
