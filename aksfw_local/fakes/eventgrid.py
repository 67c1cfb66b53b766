"""A fake Event Grid custom topic (CloudEvents 1.0 input schema) that the real
``EventGridPublisherClient`` publishes to.

Serves HTTPS on 127.0.0.1 with a throw-away CA (``tls.py``; ``ca_file`` is the client's
``connection_verify``) and answers ``POST /api/events?api-version=...`` only:

* without ``Authorization: Bearer <token>`` (an Entra ID token; a topic key in
  ``aeg-sas-key`` is not accepted either): 401;
* with a content type other than ``application/cloudevents-batch+json``, a body that is
  not a non-empty JSON array of CloudEvents 1.0 events, or an event Event Grid would
  refuse (``specversion`` not ``"1.0"``, no ``id``/``source``/``type``, a ``time`` that is
  not RFC 3339, ``data`` with ``data_base64``, a badly named extension attribute, a
  ``data`` object with keys outside ``data_keys`` when that is set): 400 with Event Grid's
  ``{"error": {"code": "BadRequest", ...}}`` body, and nothing of the batch is kept;
* a batch over 1 MB: 413;
* otherwise 200 with an empty body, the events appended to ``events``.

Faults: ``inject`` (from ``AzureFake``: e.g. 500, or 429 with ``Retry-After``) for
authenticated requests, and ``drop(count)`` to close the next connections unanswered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

from .azure import AzureFake, error_response
from .server import HttpRequest, HttpResponse

TOPIC_PATH = "/api/events"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
MAX_BATCH_BYTES = 1024 * 1024
DEFAULT_TENANT_ID = "33333333-3333-3333-3333-333333333333"

_CONTEXT_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"}
)
_REQUIRED = ("id", "source", "type")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    413: "RequestEntityTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


class InvalidEvent(ValueError):
    """What Event Grid would refuse in a batch (the 400 answer's message)."""


class FakeEventGridTopic(AzureFake):
    """In-process HTTPS Event Grid topic (see the module docstring).

    ``url`` is the topic endpoint (only while running). ``events`` holds every accepted
    event as received; ``requests`` every request (``AzureFake``). ``data_keys``, when not
    None, is every key an event's ``data`` object may have.
    """

    error_codes = _ERROR_CODES
    tls_prefix = "fake-eventgrid-tls-"

    def __init__(
        self,
        token: str = "eventgrid-dev-token",
        tls_dir: Path | None = None,
        data_keys: Collection[str] | None = None,
    ) -> None:
        super().__init__(token, DEFAULT_TENANT_ID, tls_dir)
        self.data_keys = None if data_keys is None else frozenset(data_keys)
        self.events: list[dict[str, Any]] = []
        self._drops = 0

    def __repr__(self) -> str:
        return f"FakeEventGridTopic(events={len(self.events)})"

    @property
    def endpoint(self) -> str:
        """The topic endpoint as Azure shows it (``.../api/events``)."""
        return f"{self.url}{TOPIC_PATH}"

    def drop(self, count: int = 1) -> None:
        """Close the next ``count`` connections without answering (authenticated or not)."""
        with self._lock:
            self._drops += count

    def received(self) -> list[dict[str, Any]]:
        """A copy of the accepted events, oldest first."""
        with self._lock:
            return list(self.events)

    # ------------------------------------------------------------------ request handling

    def _handle(self, request: HttpRequest) -> HttpResponse:
        with self._lock:
            dropping = self._drops > 0
            self._drops -= int(dropping)
        if dropping:
            return HttpResponse(0, drop=True)
        return super()._handle(request)

    def _unauthorized(self, request: HttpRequest) -> HttpResponse:
        return error_response(
            401,
            "Unauthorized",
            "The request authorization token is not valid or is missing for this topic.",
        )

    def _dispatch(self, request: HttpRequest, path: str, query: dict[str, str]) -> HttpResponse:
        if path.rstrip("/").lower() != TOPIC_PATH:
            return error_response(404, "NotFound", f"The path '{path}' is not a topic path.")
        if request.method != "POST":
            return error_response(405, "MethodNotAllowed", f"{request.method} is not allowed.")
        if not query.get("api-version"):
            return error_response(400, "BadRequest", "The api-version query parameter is missing.")
        media_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type != BATCH_CONTENT_TYPE:
            return error_response(
                400,
                "BadRequest",
                f"Content type '{media_type}' does not match the topic's CloudEventSchemaV1_0 "
                f"input schema; expected '{BATCH_CONTENT_TYPE}'.",
            )
        if len(request.body) > MAX_BATCH_BYTES:
            return error_response(413, "RequestEntityTooLarge", "The batch exceeds 1 MB.")
        try:
            events = self._batch(request.body)
        except InvalidEvent as error:
            return error_response(400, "BadRequest", str(error))
        with self._lock:
            self.events.extend(events)
        return HttpResponse(200, b"", "application/json; charset=utf-8")

    def _batch(self, body: bytes) -> list[dict[str, Any]]:
        try:
            batch = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidEvent("The request body is not valid JSON.") from None
        if not isinstance(batch, list) or not batch:
            raise InvalidEvent("The request body must be a non-empty JSON array of events.")
        for index, event in enumerate(batch):
            self._check(index, event)
        return batch

    def _check(self, index: int, event: object) -> None:
        where = f"Event {index}"
        if not isinstance(event, dict):
            raise InvalidEvent(f"{where}: an event must be a JSON object.")
        if event.get("specversion") != "1.0":
            raise InvalidEvent(f"{where}: specversion must be '1.0'.")
        for name in _REQUIRED:
            value = event.get(name)
            if not isinstance(value, str) or not value:
                raise InvalidEvent(f"{where}: required attribute '{name}' is missing or empty.")
        for name in _CONTEXT_ATTRIBUTES - set(_REQUIRED):
            if name in event and event[name] is not None and not isinstance(event[name], str):
                raise InvalidEvent(f"{where}: attribute '{name}' must be a string.")
        time = event.get("time")
        if time is not None and not _is_rfc3339(time):
            raise InvalidEvent(f"{where}: time {time!r} is not an RFC 3339 timestamp.")
        if event.get("data") is not None and event.get("data_base64") is not None:
            raise InvalidEvent(f"{where}: only one of data and data_base64 may be present.")
        for name in set(event) - _CONTEXT_ATTRIBUTES - {"data", "data_base64"}:
            if not _EXTENSION_NAME.match(name):
                raise InvalidEvent(f"{where}: '{name}' is not a valid extension attribute name.")
        self._check_data(where, event)

    def _check_data(self, where: str, event: dict[str, Any]) -> None:
        if self.data_keys is None:
            return
        data = event.get("data")
        if "data_base64" in event or not isinstance(data, dict):
            raise InvalidEvent(f"{where}: data must be a JSON object.")
        unexpected = sorted(set(data) - self.data_keys)
        if unexpected:
            raise InvalidEvent(f"{where}: unexpected data {', '.join(unexpected)}.")


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    try:
        # The pattern checked the fraction; the parser checks the date (month 13, ...).
        datetime.fromisoformat(re.sub(r"\.\d+", "", value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
