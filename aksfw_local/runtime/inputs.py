"""Trigger inputs shaped as the Functions host sends them to a Python worker.

Each function returns a `Call`: the trigger's `TypedData` and the trigger metadata, in
protobuf's JSON form with the protocol's field names (`worker_protocol.proto`).

- HTTP: an `RpcHttp` whose body is raw bytes (the worker asks for `RawHttpBodyBytes` and
  `RpcHttpBodyOnly`), no trigger metadata (`RpcHttpTriggerMetadataRemoved`);
- Event Grid: the one event of a delivery as JSON, in whichever schema the subscription
  delivers (Event Grid or CloudEvents 1.0);
- Storage queues: the decoded message text as a string, with the message's `Id`,
  `DequeueCount`, `InsertionTime`, `ExpirationTime`, `NextVisibleTime` and `PopReceipt`;
- timer: the timer's status as JSON (`Schedule`, `ScheduleStatus`, `IsPastDue`).

Every trigger also gets the `sys` metadata the host adds (method name, time, a random id).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import azure.functions as func

HOST_VERSION = "4.1044.0"
"""A Functions host 4.x version, as worker init reports it."""
LOCAL_URL = "http://localhost:7071"


@dataclass(frozen=True)
class Call:
    """One invocation's trigger input: the binding's name, its data and the metadata."""

    name: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_context: dict[str, Any] = field(default_factory=dict)


def _json(value: Any) -> dict[str, str]:
    return {"json": json.dumps(value)}


def _time(moment: datetime) -> str:
    """A time as the host writes it: ISO 8601, UTC, seven fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def _sys(method: str) -> dict[str, str]:
    return _json({"MethodName": method, "UtcNow": _time(datetime.now(UTC)),
                  "RandGuid": str(uuid.uuid4())})  # fmt: skip


def http_request(
    method: str,
    route: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    name: str = "request",
) -> Call:
    """An HTTP request to `/api/<route>`; `name` is the trigger's binding name."""
    headers = {"host": "localhost:7071", **(headers or {})}
    if body:
        headers.setdefault("content-type", "application/json")
        headers["content-length"] = str(len(body))
    query = query or {}
    url = f"{LOCAL_URL}/api/{route}" + (f"?{urlencode(query)}" if query else "")
    http = {
        "method": method,
        "url": url,
        "headers": headers,
        "nullable_headers": {key: {"value": value} for key, value in headers.items()},
        "query": query,
        "nullable_query": {key: {"value": value} for key, value in query.items()},
        "body": {"bytes": base64.b64encode(body).decode("ascii")},
    }
    return Call(name, {"http": http})


def event_grid(document: dict[str, Any], *, name: str = "event") -> Call:
    """One Event Grid delivery of `document` (either schema)."""
    return Call(name, _json(document), {"sys": _sys("resource_event")})


def queue_message(message: func.QueueMessage, *, name: str = "message") -> Call:
    """A Storage queue message as the host's queue trigger delivers it."""
    metadata: dict[str, Any] = {
        "Id": {"string": str(message.id)},
        "DequeueCount": _json(message.dequeue_count),
        "PopReceipt": {"string": str(message.pop_receipt)},
        "sys": _sys(name),
    }
    times = {
        "InsertionTime": message.insertion_time,
        "ExpirationTime": message.expiration_time,
        "NextVisibleTime": message.time_next_visible,
    }
    for key, moment in times.items():
        if moment is not None:
            metadata[key] = _json(_time(moment))
    return Call(name, {"string": message.get_body().decode("utf-8")}, metadata)


def timer(*, past_due: bool = False, name: str = "timer") -> Call:
    """A timer firing (`past_due`: later than its schedule said)."""
    now = datetime.now(UTC)
    status = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {
            "Last": _time(now - timedelta(minutes=5)),
            "Next": _time(now + timedelta(minutes=5)),
            "LastUpdated": _time(now - timedelta(minutes=5)),
        },
        "IsPastDue": past_due,
    }
    return Call(name, _json(status), {"sys": _sys("resync_timer")})


def trace_parent(trace_id: str, span_id: str) -> dict[str, Any]:
    """The host's trace context of an invocation (W3C `traceparent`)."""
    return {"trace_parent": f"00-{trace_id}-{span_id}-01", "trace_state": "", "attributes": {}}
