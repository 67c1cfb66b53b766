"""What the Azure fakes (``arm.py``, ``keyvault.py``) share.

``AzureFake`` is an HTTPS ``TlsFakeServer`` with ``Authorization: Bearer <token>``
authentication, a request log (``requests``, one ``AzureRequest`` each) and queued
HTTP errors (``inject``), answered with the ``{"error": {"code", "message"}}`` bodies
and ``x-ms-request-id`` headers of Azure services.  Faults are consumed by
authenticated requests only, as Azure checks the token before throttling.  A fake
implements ``_unauthorized`` (its 401 answer) and ``_dispatch`` (everything else).
"""

from __future__ import annotations

import json
import threading
import uuid
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from .server import HttpRequest, HttpResponse, TlsFakeServer, bearer_matches

_JSON = "application/json; charset=utf-8"


class AzureRequest(NamedTuple):
    """One request as a fake received it (``path`` without the query string)."""

    method: str
    path: str
    query: dict[str, str]
    authorized: bool


def error_body(code: str, message: str) -> dict[str, Any]:
    """The ``{"error": {"code", "message"}}`` body ARM and Key Vault answer errors with."""
    return {"error": {"code": code, "message": message}}


def json_response(
    status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """A JSON response with ARM-style request-id headers added."""
    request_id = str(uuid.uuid4())
    all_headers = {"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id}
    all_headers.update(headers or {})
    return HttpResponse(status, json.dumps(payload).encode(), _JSON, all_headers)


def error_response(status: int, code: str, message: str) -> HttpResponse:
    """``json_response`` with an ``error_body``."""
    return json_response(status, error_body(code, message))


def split_request(request: HttpRequest) -> tuple[str, dict[str, str]]:
    """The unquoted path and the query (first value of each parameter) of a request."""
    split = urlsplit(request.path)
    query = {
        name: values[0] for name, values in parse_qs(split.query, keep_blank_values=True).items()
    }
    return unquote(split.path), query


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: int | None
    path_contains: str | None
    code: str | None
    message: str | None


class AzureFake(TlsFakeServer):
    """Bearer auth, request log and queued faults of an Azure fake (module docstring).

    Tests may change ``token`` and ``tenant_id`` at any time. ``error_codes`` maps an
    HTTP status to the error code an injected fault answers with by default.
    """

    error_codes: ClassVar[Mapping[int, str]] = {}

    def __init__(self, token: str, tenant_id: str, tls_dir: Path | None) -> None:
        super().__init__(tls_dir)
        self.token = token
        self.tenant_id = tenant_id
        self.requests: list[AzureRequest] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def inject(
        self,
        status: int,
        count: int = 1,
        retry_after: int | None = None,
        path_contains: str | None = None,
        *,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``count`` authenticated requests (whose path contains
        ``path_contains``, case-insensitively, if given) with ``status`` and an error
        body (``code`` defaults by status); ``Retry-After`` is sent when given.
        Requests without a valid token (challenge round-trips) never consume a fault."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(_Fault(status, count, retry_after, path_contains, code, message))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[tuple[int, int]]:
        """``(status, remaining count)`` of the queued faults."""
        with self._lock:
            return [(fault.status, fault.remaining) for fault in self._faults]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _handle(self, request: HttpRequest) -> HttpResponse:
        path, query = split_request(request)
        authorized = bearer_matches(request.headers.get("Authorization", ""), self.token)
        with self._lock:
            self.requests.append(AzureRequest(request.method, path, query, authorized))
        if not authorized:
            return self._unauthorized(request)
        fault = self._take_fault(path)
        if fault is not None:
            return fault
        return self._dispatch(request, path, query)

    def _take_fault(self, path: str) -> HttpResponse | None:
        """The error response for a request to ``path``, or None if no fault matches."""
        with self._lock:
            for fault in self._faults:
                if fault.path_contains is None or fault.path_contains.lower() in path.lower():
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    break
            else:
                return None
        code = fault.code or self.error_codes.get(fault.status, "InjectedFault")
        message = fault.message or f"Injected failure (HTTP {fault.status})."
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        return json_response(fault.status, error_body(code, message), headers)

    @abstractmethod
    def _unauthorized(self, request: HttpRequest) -> HttpResponse:
        """The 401 answer to a request without a valid bearer token."""

    @abstractmethod
    def _dispatch(self, request: HttpRequest, path: str, query: dict[str, str]) -> HttpResponse:
        """Answer an authenticated request that no fault took (``path`` unquoted)."""
