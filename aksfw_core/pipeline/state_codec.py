"""The stored form of the records in `pipeline.state`: as blob metadata (one table of
names per record, `_SCHEMAS` at the end, read and written by one encoder and one decoder)
and as JSON bodies. Pure code.

Metadata values must be ASCII: text that may hold anything else (a resource group name,
an error) is percent-encoded; integers are decimal, times (seconds since the epoch) are
Python's `repr` of a float, flags `true` or `false`. Names are read whatever their case.
A field that is empty or None is left out (Storage refuses empty values), and reads back
as the record's empty value.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote, unquote

from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.jsondoc import load_json
from aksfw_core.pipeline.state import (
    AppliedState,
    CanaryRecord,
    EnqueuedMark,
    HeldBack,
    LastWatcherEvent,
    StateSummary,
    TableRecord,
    cut_error,
)
from aksfw_core.rules.model import IpTags, ip_tags_json

MetadataRecord = TypeVar(
    "MetadataRecord",
    StateSummary,
    EnqueuedMark,
    HeldBack,
    LastWatcherEvent,
    CanaryRecord,
    TableRecord,
)

_SCHEMA = "1"
"""The value of a record's marker; a blob whose marker is missing or other predates it."""
_MAX_ERROR_METADATA = 1200  # percent-encoded: the whole metadata stays far under 8 KiB


def to_metadata(
    record: StateSummary | EnqueuedMark | HeldBack | LastWatcherEvent | CanaryRecord | TableRecord,
) -> dict[str, str]:
    """The record as blob metadata (names lower-case identifiers, values ASCII)."""
    schema = _SCHEMAS[type(record)]
    metadata = {schema.marker: _SCHEMA} if schema.marker else {}
    for name, attribute, form in schema.fields:
        value = form.write(getattr(record, attribute))
        if value is not None:
            metadata[name] = value
    return metadata


def from_metadata(
    kind: type[MetadataRecord], metadata: Mapping[str, str] | None
) -> MetadataRecord | None:
    """The record of type `kind` a blob's metadata holds, or None when it holds none, an
    older one or an unreadable one (for a summary the caller then reads the blob; an older
    mark counts as none, so the snapshot is queued once more)."""
    schema = _SCHEMAS[kind]
    found = {name.lower(): value for name, value in (metadata or {}).items()}
    if schema.marker is not None and found.get(schema.marker) != _SCHEMA:
        return None
    try:
        values = {field.attribute: _decode(field, found) for field in schema.fields}
    except (KeyError, ValueError):
        return None
    return kind(**values)


def applied_body(state: AppliedState) -> bytes:
    """The applied state as the JSON body of its blob."""
    return _to_bytes(
        {
            "cluster": state.cluster_id,
            "tagName": state.tag_name,
            "target": state.target,
            "version": state.version,
            "fingerprint": state.fingerprint,
            "appliedAt": state.applied_at,
            "dirty": state.dirty,
            "lastError": state.last_error,
            "lastErrorAt": state.last_error_at,
            "missingSince": state.missing_since,
            "tags": ip_tags_json(state.tags),
        }
    )


def applied_from_body(data: bytes) -> AppliedState:
    """The applied state a blob's body holds.

    Raises:
        NonRetryable: the stored state is unreadable (it needs an operator).
    """
    try:
        document = load_json(data, "stored applied state")
    except InputError as error:
        raise NonRetryable(str(error)) from None
    if not isinstance(document, dict):
        raise NonRetryable("stored applied state is not an object")
    try:
        return AppliedState(
            cluster_id=str(document["cluster"]),
            tag_name=str(document["tagName"]),
            target=str(document["target"]),
            version=_int(document["version"]),
            fingerprint=str(document["fingerprint"]),
            tags={ip: frozenset(tags) for ip, tags in dict(document["tags"]).items()},
            applied_at=_time(document.get("appliedAt") or 0.0),
            dirty=bool(document.get("dirty", False)),
            last_error=document.get("lastError"),
            last_error_at=_optional_time(document.get("lastErrorAt")),
            missing_since=_optional_time(document.get("missingSince")),
        )
    except (KeyError, TypeError, ValueError):
        raise NonRetryable("stored applied state is malformed") from None


def mark_body(mark: EnqueuedMark) -> bytes:
    """The mark as the JSON body of its blob (kept for people; aksfw reads the metadata)."""
    return _to_bytes(
        {
            "cluster": mark.cluster_id,
            "target": mark.target,
            "version": mark.version,
            "fingerprint": mark.fingerprint,
            "enqueuedAt": mark.enqueued_at,
        }
    )


def table_json(owners: Mapping[str, IpTags]) -> bytes:
    """A shared table's tags (by owner, `rules.plan.by_owner`) as JSON, before compression:
    its length is what `limits.shared_table_max_bytes` bounds."""
    return _to_bytes({"owners": {owner: ip_tags_json(tags) for owner, tags in owners.items()}})


def table_body(text: bytes) -> bytes:
    """`table_json`'s text as a blob's body (gzip: a table is mostly repeated tag names)."""
    return gzip.compress(text, compresslevel=6, mtime=0)


def table_from_body(data: bytes, max_bytes: int) -> dict[str, IpTags]:
    """The tags by owner a shared table's body holds, unpacked to `max_bytes` at most.

    Raises:
        NonRetryable: the body is unreadable or larger (the table is read again instead).
    """
    try:
        inflater = zlib.decompressobj(wbits=31)  # gzip framing
        text = inflater.decompress(data, max_bytes)
        if inflater.unconsumed_tail or not inflater.eof:
            raise NonRetryable(f"stored table is truncated or over {max_bytes} bytes")
        document = load_json(text, "stored table")
        owners = dict(document["owners"])
        return {
            str(owner): {str(ip): frozenset(map(str, tags)) for ip, tags in dict(ips).items()}
            for owner, ips in owners.items()
        }
    except (zlib.error, InputError, KeyError, TypeError, ValueError):
        raise NonRetryable("stored table is malformed") from None


# ---------------------------------------------------------------------- values


def _text(value: str) -> str:
    """ASCII for a metadata value: percent-encoded, readable for the usual characters."""
    return quote(value, safe="/:.,;()[]{}'=@!*+-_~")


def _error_text(error: str | None) -> str | None:
    """As much of an error as a summary keeps and its metadata value has room for."""
    error = cut_error(error)
    while error and len(_text(error)) > _MAX_ERROR_METADATA:
        error = error[: len(error) // 2]
    return _text(error) if error else None


def _int(value: str | int) -> int:
    """Raises ValueError, TypeError: not an integer."""
    return int(value)


def _time(value: str | float) -> float:
    """Seconds since the epoch. Raises ValueError, TypeError: not a number."""
    return float(value)


def _optional_time(value: str | float | None) -> float | None:
    """Raises ValueError, TypeError: neither None nor a number."""
    return _time(value) if value is not None else None


def _time_text(value: float) -> str:
    return repr(float(value))


def _to_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class _Form(NamedTuple):
    """How a field is kept as a metadata value."""

    write: Callable[[Any], str | None]
    """Its value as metadata; None leaves it out."""
    read: Callable[[str], Any]
    """Its value from metadata. Raises ValueError."""
    optional: bool
    """May be left out, and reads back as `left_out` when it is."""
    left_out: Any = None


_TEXT = _Form(_text, unquote, optional=False)
_OPTIONAL_TEXT = _Form(lambda text: _text(text) if text else None, unquote, True, left_out="")
_ERROR = _Form(_error_text, unquote, optional=True)
_INT = _Form(str, _int, optional=False)
_TIME = _Form(_time_text, _time, optional=False)
_OPTIONAL_TIME = _Form(lambda at: None if at is None else _time_text(at), _time, optional=True)
_FLAG = _Form(lambda flag: "true" if flag else "false", lambda text: text == "true", optional=False)


class _Field(NamedTuple):
    name: str
    """The metadata name."""
    attribute: str
    """The record's attribute."""
    form: _Form


class _Schema(NamedTuple):
    marker: str | None
    """Metadata name that says the record is there (value `_SCHEMA`); None: none needed."""
    fields: tuple[_Field, ...]


def _decode(field: _Field, found: Mapping[str, str]) -> Any:
    """A field's value from lower-cased metadata.

    Raises:
        KeyError: a field that is always written is missing.
        ValueError: a number is not one.
    """
    value = found.get(field.name)
    if value is not None:
        return field.form.read(value)
    if not field.form.optional:
        raise KeyError(field.name)
    return field.form.left_out


_SCHEMAS: dict[type[Any], _Schema] = {
    StateSummary: _Schema(
        "summary",
        (
            _Field("cluster", "cluster_id", _TEXT),
            _Field("tagname", "tag_name", _TEXT),
            _Field("target", "target", _TEXT),
            _Field("version", "version", _INT),
            _Field("fingerprint", "fingerprint", _OPTIONAL_TEXT),  # "" after a failed first apply
            _Field("appliedat", "applied_at", _TIME),
            _Field("ips", "ips", _INT),
            _Field("tags", "tags", _INT),
            _Field("dirty", "dirty", _FLAG),
            _Field("lasterror", "last_error", _ERROR),
            _Field("lasterrorat", "last_error_at", _OPTIONAL_TIME),
            _Field("missingsince", "missing_since", _OPTIONAL_TIME),
        ),
    ),
    EnqueuedMark: _Schema(
        "mark",
        (
            _Field("cluster", "cluster_id", _TEXT),
            _Field("target", "target", _TEXT),
            _Field("version", "version", _INT),
            _Field("fingerprint", "fingerprint", _TEXT),
            _Field("enqueuedat", "enqueued_at", _TIME),
        ),
    ),
    HeldBack: _Schema(
        "held",
        (
            _Field("cluster", "cluster_id", _TEXT),
            _Field("fingerprint", "fingerprint", _TEXT),
            _Field("since", "since", _TIME),
            _Field("heldat", "held_at", _TIME),
            _Field("pairs", "pairs_to_remove", _INT),
            _Field("confirmations", "confirmations", _INT),
        ),
    ),
    LastWatcherEvent: _Schema(None, (_Field("at", "at", _TIME),)),
    CanaryRecord: _Schema(
        "canary",
        (
            _Field("target", "target", _TEXT),
            _Field("ip", "ip", _TEXT),
            _Field("tag", "tag", _TEXT),
            _Field("registeredat", "registered_at", _OPTIONAL_TIME),
            _Field("checkedat", "checked_at", _OPTIONAL_TIME),
            _Field("forgotat", "forgot_at", _OPTIONAL_TIME),
            _Field("error", "error", _ERROR),
            _Field("errorat", "error_at", _OPTIONAL_TIME),
        ),
    ),
    TableRecord: _Schema(
        "table",
        (
            _Field("target", "target", _TEXT),
            _Field("readat", "read_at", _TIME),
            _Field("ips", "ips", _INT),
            _Field("pairs", "pairs", _INT),
            _Field("stored", "stored", _FLAG),
        ),
    ),
}
