"""The Azure Functions adapter: turns trigger inputs into calls on one `Aksfw` per process
and its results into HTTP responses. `function_app.py` holds only the decorators.

Queue messages that can never succeed (malformed, refused credentials, bad settings) are
logged and put on `<queue>-poison` at once instead of being retried five times; transient
failures raise, so the host makes the message visible again and retries it, and so do
settings that cannot work whatever the message (`ConfigError`: no message is at fault).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import azure.functions as func

from aksfw_core.app import Aksfw, UnknownCluster
from aksfw_core.azure.events import MalformedEvent
from aksfw_core.config import ResyncConfig, load_settings
from aksfw_core.errors import AksfwError, ConfigError, InputError, NonRetryable, Retryable
from aksfw_core.jsondoc import load_json
from aksfw_core.logs import log_event

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def application() -> Aksfw:
    """The engine of this process, built from the app settings on first use."""
    return Aksfw.from_environ(os.environ)


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


def on_event(event: func.EventGridEvent) -> None:
    """Event Grid trigger (both schemas reach the worker as this type)."""
    document = {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }
    try:
        application().on_event(document)
    except MalformedEvent as error:
        log_event(log, "event.malformed", logging.ERROR, event_id=event.id, error=str(error))


def on_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log_event(log, "timer.past_due", logging.WARNING)
    application().on_timer()


def on_resync_message(message: func.QueueMessage) -> None:
    app = application()  # invalid settings raise here: the host retries, nothing is poisoned
    _consume(message, app, app.queues.names.resync_queue, app.on_resync_message)


def on_update_message(message: func.QueueMessage) -> None:
    app = application()
    _consume(message, app, app.queues.names.updates_queue, app.on_update_message)


def _consume(
    message: func.QueueMessage, app: Aksfw, queue: str, handle: Callable[[bytes], object]
) -> None:
    body = message.get_body()
    fields = {"queue": queue, "message_id": message.id, "dequeue_count": message.dequeue_count}
    try:
        handle(body)
    except (Retryable, ConfigError) as error:
        # Bad settings are not the message's fault: the host retries it until they are fixed.
        log_event(log, "message.retry", logging.WARNING, **fields, error=str(error))
        raise
    except (InputError, NonRetryable) as error:
        error_text = f"{type(error).__name__}: {error}"
        log_event(log, "message.poisoned", logging.ERROR, **fields, error=error_text)
        app.queues.poison(queue, body.decode("utf-8", "replace"))


def http_resync(request: func.HttpRequest) -> func.HttpResponse:
    """POST /api/resync with `{}` (all clusters) or `{"cluster": "<id or name>"}`."""
    try:
        app = application()
    except AksfwError as error:
        return _json({"error": f"{type(error).__name__}: {error}"}, 503)
    body, most = request.get_body(), app.settings.limits.max_http_body_bytes
    if len(body) > most:
        return _json({"error": f"body larger than {most} bytes (limits.maxHttpBodyBytes)"}, 413)
    try:
        cluster, audit = _resync_body(body)
    except InputError as error:
        return _json({"error": str(error)}, 400)
    try:
        queued = app.request_resync(cluster, audit)
    except UnknownCluster as error:
        return _json({"error": str(error)}, 404)
    except AksfwError as error:
        return _json({"error": f"{type(error).__name__}: {error}"}, 503)
    return _json({"queued": queued}, 202)


def http_status(request: func.HttpRequest) -> func.HttpResponse:
    """GET /api/status: per cluster and target, and the queue depths."""
    try:
        return _json(application().status(), 200)
    except AksfwError as error:
        return _json({"error": f"{type(error).__name__}: {error}"}, 503)


def _resync_body(body: bytes) -> tuple[str | None, bool]:
    if not body.strip():
        return None, False
    try:
        document = load_json(body, "body")
    except InputError as error:
        raise InputError(f'{error}: send {{}} or {{"cluster": "<id or name>"}}') from None
    if not isinstance(document, dict):
        raise InputError("body must be a JSON object")
    unknown = sorted(set(document) - {"cluster", "audit"})
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}")
    cluster = document.get("cluster")
    if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
        raise InputError("cluster must be a non-empty string")
    audit = document.get("audit", False)
    if not isinstance(audit, bool):
        raise InputError("audit must be true or false")
    return (cluster.strip() if cluster else None), audit


def _json(document: Any, status: int) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(document), status_code=status, mimetype="application/json")
