"""The Azure Functions adapter: turns trigger inputs into calls on one `App` per process
and its results into HTTP responses. `function_app.py` holds only the decorators.

Queue messages that can never succeed (malformed, refused credentials, bad settings) are
logged and put on `<queue>-poison` at once instead of being retried five times; transient
failures raise, so the host makes the message visible again and retries it, and so do
settings that cannot work whatever the message (`ConfigError`: no message is at fault).

Each trigger runs in a span (`aksfw.telemetry`): a queue message's own trace context is
its parent, and the host's invocation context (`context.trace_context`) is the parent of
the rest.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

import azure.functions as func
from opentelemetry.trace import SpanKind

from aksfw_core import telemetry
from aksfw_core.app import App
from aksfw_core.app.triggers import UnknownCluster
from aksfw_core.app.uninstall_gate import Uninstalling
from aksfw_core.azure.events import MalformedEvent
from aksfw_core.config import ResyncConfig, load_settings
from aksfw_core.errors import AksfwError, ConfigError, InputError, NonRetryable, Retryable
from aksfw_core.jsondoc import load_json
from aksfw_core.logs import log_event
from aksfw_core.rules.messages import (
    TraceContext,
    plausible_origin,
    read_origin_time,
    read_trace_context,
)

log = logging.getLogger(__name__)

NO_CONTEXT = cast(func.Context, None)
"""The default of `function_app`'s `context` parameters, for callers outside the host
(the local stack, tests): the worker accepts only the bare `func.Context` annotation, and
the host always passes one."""


@functools.lru_cache(maxsize=1)
def application() -> App:
    """The engine of this process, built from the app settings on first use; telemetry is
    exported from then on if `APPLICATIONINSIGHTS_CONNECTION_STRING` is set."""
    telemetry.configure(os.environ)
    return App.from_environ(os.environ)


def timer_schedule() -> str:
    """The resync timer's NCRONTAB schedule, read when the host indexes the functions.

    A missing or invalid configuration falls back to the default here; the same error is
    raised, naming the field, by every trigger until it is fixed.
    """
    try:
        return load_settings(os.environ).resync.schedule
    except InputError as error:
        log_event(log, "config.invalid", logging.ERROR, error=str(error))
        return ResyncConfig().schedule


def on_event(
    event: func.EventGridEvent | func.CloudEvent, context: func.Context | None = None
) -> None:
    """Event Grid trigger. The worker hands an Event Grid schema delivery over as an
    `EventGridEvent` and a CloudEvents one (the watcher's topic) as a `CloudEvent`."""
    document, when = _event_document(event)
    app = application()
    # The lag runs from the event's time; the local stack's events may have none.
    event_time = when.timestamp() if when else None
    limits = app.engine.settings.limits
    origin_time = plausible_origin(
        read_origin_time(event_time),
        app.engine.clock(),
        limits.event_max_age_s,
        limits.max_version_skew_s,
    )
    try:
        with app.engine.telemetry.activity("aksfw.event", "event", invocation=_invocation(context)):
            app.triggers.on_event(document, origin_time)
    except MalformedEvent as error:
        log_event(log, "event.malformed", logging.ERROR, event_id=event.id, error=str(error))


def _event_document(
    event: func.EventGridEvent | func.CloudEvent,
) -> tuple[dict[str, Any], datetime | None]:
    """The event as the JSON document of its schema (`events.read_event` checks it), and
    its time."""
    if isinstance(event, func.CloudEvent):
        document: dict[str, Any] = {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "data": event.get_json(),
        }
        if event.subject is not None:
            document["subject"] = event.subject
        if event.time is not None:
            document["time"] = event.time.isoformat()
        return document, event.time
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }, event.event_time


def on_timer(timer: func.TimerRequest, context: func.Context | None = None) -> None:
    if timer.past_due:
        log_event(log, "timer.past_due", logging.WARNING)
    app = application()
    invocation = _invocation(context)
    with app.engine.telemetry.activity(
        "aksfw.timer", "timer", invocation=invocation, kind=SpanKind.INTERNAL
    ):
        app.triggers.on_timer()


def on_resync_message(message: func.QueueMessage, context: func.Context | None = None) -> None:
    app = application()  # invalid settings raise here: the host retries, nothing is poisoned
    queue = app.engine.queues.names.resync_queue
    _consume(message, app, queue, app.triggers.on_resync_message, _invocation(context))


def on_update_message(message: func.QueueMessage, context: func.Context | None = None) -> None:
    app = application()
    queue = app.engine.queues.names.updates_queue
    _consume(message, app, queue, app.triggers.on_update_message, _invocation(context))


def _invocation(context: func.Context | None) -> TraceContext | None:
    """The host's trace context for this invocation, if it gave a valid one."""
    trace_context = getattr(context, "trace_context", None)
    return read_trace_context(
        getattr(trace_context, "trace_parent", None), getattr(trace_context, "trace_state", None)
    )


def _consume(
    message: func.QueueMessage,
    app: App,
    queue: str,
    handle: Callable[[bytes, TraceContext | None], object],
    invocation: TraceContext | None,
) -> None:
    body = message.get_body()
    fields = {"queue": queue, "message_id": message.id, "dequeue_count": message.dequeue_count}
    try:
        handle(body, invocation)
    except (Retryable, ConfigError) as error:
        # Bad settings are not the message's fault: the host retries it until they are fixed.
        log_event(log, "message.retry", logging.WARNING, **fields, error=str(error))
        raise
    except (InputError, NonRetryable) as error:
        error_text = f"{type(error).__name__}: {error}"
        log_event(log, "message.poisoned", logging.ERROR, **fields, error=error_text)
        app.engine.queues.poison(queue, body.decode("utf-8", "replace"))
        app.engine.telemetry.poisoned(queue, type(error).__name__)


def http_resync(
    request: func.HttpRequest, context: func.Context | None = None
) -> func.HttpResponse:
    """POST /api/resync with `{}` (all clusters) or `{"cluster": "<id or name>"}`."""
    accepted = _accepted(request)
    if isinstance(accepted, func.HttpResponse):
        return accepted
    app, body = accepted
    try:
        cluster, audit = _resync_body(body)
    except InputError as error:
        return _json({"error": str(error)}, 400)
    try:
        with _http_activity(app, context):
            queued = app.triggers.request_resync(cluster, audit)
    except UnknownCluster as error:
        return _json({"error": str(error)}, 404)
    except Uninstalling as error:
        return _json({"error": str(error)}, 409)
    except AksfwError as error:
        return _json({"error": str(error)}, 503)
    return _json({"queued": queued}, 202)


def http_status(
    request: func.HttpRequest, context: func.Context | None = None
) -> func.HttpResponse:
    """GET /api/status: per cluster and target, and the queue depths."""
    try:
        app = application()
        with _http_activity(app, context):
            return _json(app.operations.status().as_json(), 200)
    except AksfwError as error:
        return _json({"error": str(error)}, 503)


def _accepted(request: func.HttpRequest) -> tuple[App, bytes] | func.HttpResponse:
    """The engine and the request's body, or the answer that refuses the request: 503 when
    the engine cannot start (bad settings), 413 when the body is too large."""
    try:
        app = application()
    except AksfwError as error:
        return _json({"error": str(error)}, 503)
    body, most = request.get_body(), app.engine.settings.limits.max_http_body_bytes
    if len(body) > most:
        return _json({"error": f"body larger than {most} bytes (limits.maxHttpBodyBytes)"}, 413)
    return app, body


def _refused(error: AksfwError) -> func.HttpResponse:
    """400 for a request that is wrong; 503 for anything else, bad settings included
    (`ConfigError` is no fault of the request)."""
    wrong_request = isinstance(error, InputError) and not isinstance(error, ConfigError)
    return _json({"error": str(error)}, 400 if wrong_request else 503)


def _http_activity(app: App, context: func.Context | None) -> AbstractContextManager[object]:
    return app.engine.telemetry.activity(
        "aksfw.http", "http", invocation=_invocation(context), kind=SpanKind.INTERNAL
    )


def _body_fields(body: bytes, fields: set[str], usage: str) -> dict[str, Any]:
    """An HTTP trigger's JSON object body (an empty body is `{}`), holding only `fields`.

    Raises:
        InputError: not JSON (with `usage`), not an object, or an unknown field.
    """
    if not body.strip():
        return {}
    try:
        document = load_json(body, "body")
    except InputError as error:
        raise InputError(f"{error}: {usage}") from None
    if not isinstance(document, dict):
        raise InputError("body must be a JSON object")
    unknown = sorted(set(document) - fields)
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}")
    return document


def _resync_body(body: bytes) -> tuple[str | None, bool]:
    document = _body_fields(body, {"cluster", "audit"}, 'send {} or {"cluster": "<id or name>"}')
    cluster = document.get("cluster")
    if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
        raise InputError("cluster must be a non-empty string")
    audit = document.get("audit", False)
    if not isinstance(audit, bool):
        raise InputError("audit must be true or false")
    return (cluster.strip() if cluster else None), audit


def _json(document: Any, status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(document), status_code=status, mimetype="application/json")


# ---------------------------------------------------------------------- operator verbs


def http_replay(
    request: func.HttpRequest, context: func.Context | None = None
) -> func.HttpResponse:
    """POST /api/replay with `{}` (both queues) or `{"queue": "panorama-updates",
    "dryRun": true, "max": 50}`: move the poisoned messages that could succeed now back
    to their queue; report the ones that would fail again (`Operations.replay_poisoned`)."""
    accepted = _accepted(request)
    if isinstance(accepted, func.HttpResponse):
        return accepted
    app, body = accepted
    try:
        queue, dry_run, limit = _replay_body(body)
        with _http_activity(app, context):
            report = app.operations.replay_poisoned(queue, dry_run=dry_run, most=limit)
    except AksfwError as error:
        return _refused(error)
    return _json(report.as_json(), 200)


def _replay_body(body: bytes) -> tuple[str | None, bool, int | None]:
    document = _body_fields(
        body,
        {"queue", "dryRun", "max"},
        'send {} or {"queue": "<name>", "dryRun": true, "max": <n>}',
    )
    queue = document.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue.strip()):
        raise InputError("queue must be a non-empty string")
    dry_run = document.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InputError("dryRun must be true or false")
    limit = document.get("max")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise InputError("max must be a whole number")
    return (queue.strip() if queue else None), dry_run, limit


def http_uninstall(
    request: func.HttpRequest, context: func.Context | None = None
) -> func.HttpResponse:
    """POST /api/uninstall with `{"dryRun": true}` (say what would go) or
    `{"dryRun": false}`: queue a tombstone for every (cluster, target) aksfw applied
    tags to, and pause resyncs meanwhile (`Operations.uninstall`). 202 with what was
    queued, 200 for a dry run; the field is required, so an empty body removes nothing.
    `{"cancel": true}` ends the pause instead (`Operations.cancel_uninstall`): 200 with
    what was cancelled. Who asked is recorded as `caller` tells."""
    accepted = _accepted(request)
    if isinstance(accepted, func.HttpResponse):
        return accepted
    app, body = accepted
    by = caller(request)
    try:
        action = _uninstall_body(body)
        with _http_activity(app, context):
            if action == "cancel":
                return _json(app.operations.cancel_uninstall(by=by).as_json(), 200)
            report = app.operations.uninstall(dry_run=action == "dry-run", by=by)
    except AksfwError as error:
        return _refused(error)
    return _json(report.as_json(), 200 if action == "dry-run" else 202)


def caller(request: func.HttpRequest) -> str:
    """Who made an operator request, as far as the request tells (never its key):
    `principal <name>` from `x-ms-client-principal-name` (App Service authentication
    sets it), else `function key from <address>` from the last `x-forwarded-for` entry
    (the one the platform's front end added), else `function key`. Without App Service
    authentication a caller can set these headers itself: a record, not a proof."""
    headers = request.headers
    principal = (headers.get("x-ms-client-principal-name") or "").strip()
    if principal:
        return f"principal {principal}"
    forwarded = (headers.get("x-forwarded-for") or "").split(",")[-1].strip()
    if forwarded:
        return f"function key from {forwarded}"
    return "function key"


def _uninstall_body(body: bytes) -> str:
    """ "cancel", "dry-run" or "uninstall".

    Raises:
        InputError: not exactly one of `dryRun` and `cancel: true`."""
    usage = (
        'send {"dryRun": true} to see what would go, {"dryRun": false} to remove it, '
        '{"cancel": true} to end the pause'
    )
    document = _body_fields(body, {"dryRun", "cancel"}, usage)
    if "cancel" in document:
        if not isinstance(document["cancel"], bool):
            raise InputError("cancel must be true or false")
        if "dryRun" in document:
            raise InputError("cancel and dryRun do not go together: send one")
        if not document["cancel"]:
            raise InputError(f"cancel must be true to cancel: {usage}")
        return "cancel"
    if "dryRun" not in document:
        raise InputError(f"dryRun is required: {usage}")
    dry_run = document["dryRun"]
    if not isinstance(dry_run, bool):
        raise InputError("dryRun must be true or false")
    return "dry-run" if dry_run else "uninstall"
