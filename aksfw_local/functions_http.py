"""The Functions host's HTTP triggers, played on loopback: the app's HTTP functions served
at `/api/<route>` with their methods and authorisation level as `function_app.py`
declares them, so the command line can be tried against a real server.

A function-level route needs the key in the `x-functions-key` header (or `?code=`, which
the host accepts too, so tests can see the command line never uses it); without the
right key the answer is HTTP 401 with an empty body, as the host gives. Every request is
recorded in `requests` (path and headers) for tests to look at.

    with FunctionsHttpHost(key="k") as host:
        urllib3.request("GET", f"{host.url}/api/status", headers={"x-functions-key": "k"})
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from aksfw_local.fakes.server import FakeServer, HttpRequest, HttpResponse
from aksfw_local.stack import app_functions


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP function as `function_app.py` declares it."""

    methods: frozenset[str]
    keyed: bool
    """Function or admin level: a key is needed."""
    handler: Any


def http_routes() -> dict[str, HttpRoute]:
    """The app's HTTP functions by route."""
    routes = {}
    for function in app_functions():
        trigger = function.get_trigger()
        if type(trigger).__name__ != "HttpTrigger":
            continue
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in trigger.methods or ())
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower()
        routes[trigger.route] = HttpRoute(
            methods, level != "anonymous", function.get_user_function()
        )
    return routes


class FunctionsHttpHost(FakeServer):
    """Serves the app's HTTP functions on 127.0.0.1 (HTTPS with `tls_dir`)."""

    def __init__(self, key: str, tls_dir: Path | None = None) -> None:
        super().__init__(tls_dir)
        self.key = key
        self.routes = http_routes()
        self.requests: list[HttpRequest] = []
        self._lock = threading.Lock()

    def _handle(self, request: HttpRequest) -> HttpResponse:
        with self._lock:
            self.requests.append(request)
        split = urlsplit(request.path)
        route = self.routes.get(split.path.removeprefix("/api/"))
        if route is None:
            return HttpResponse(404)
        if route.keyed and not self._authorised(request, split.query):
            return HttpResponse(401)
        if request.method not in route.methods:
            return HttpResponse(405)
        response: func.HttpResponse = route.handler(
            func.HttpRequest(
                request.method,
                f"http://localhost{request.path}",
                headers=dict(request.headers.items()),
                body=request.body,
            )
        )
        return HttpResponse(
            response.status_code,
            response.get_body(),
            content_type=response.mimetype or "text/plain",
        )

    def _authorised(self, request: HttpRequest, query: str) -> bool:
        given = request.headers.get("x-functions-key") or next(
            iter(parse_qs(query).get("code", [])), ""
        )
        return hmac.compare_digest(given.encode(), self.key.encode())
