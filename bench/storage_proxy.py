"""A counting reverse proxy in front of Azurite's blob service, for the scale benchmark:
the app's storage connection string points at it, so every blob request the app makes is
counted by kind (a download is a GET of a blob without `comp=`; listings, property reads
and writes are counted apart) before it is forwarded unchanged."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def request_kind(method: str, path: str) -> str:
    """`download`, `list`, `properties`, `write`, `delete` or `other`."""
    split = urlsplit(path)
    comp = parse_qs(split.query).get("comp", [""])[0]
    if method == "GET" and comp == "list":
        return "list"
    if method == "GET" and not comp and split.path.count("/") >= 3:
        return "download"
    if method == "HEAD" or (method == "GET" and comp in ("metadata", "properties")):
        return "properties"
    if method in ("PUT", "POST"):
        return "write"
    if method == "DELETE":
        return "delete"
    return "other"


class CountingProxy:
    """Forwards HTTP to `upstream_port` on 127.0.0.1 and counts requests by kind."""

    def __init__(self, upstream_port: int, latency_s: float = 0.0) -> None:
        """`latency_s`: seconds each request waits before it is forwarded (a storage
        account farther away than loopback)."""
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # An answer's headers and body are two writes: without this the body waits
            # for the client's delayed ACK (40 ms a request) whenever it has a body.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.counts[request_kind(self.command, self.path)] += 1
                if latency_s:
                    time.sleep(latency_s)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"127.0.0.1:{upstream_port}"
                response, data = self._upstream_answer(body, headers)
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _upstream_answer(
                self, body: bytes | None, headers: dict[str, str]
            ) -> tuple[http.client.HTTPResponse, bytes]:
                """One request upstream on this client connection's own upstream connection
                (kept open as the client keeps its own: a new connection per request slowed
                long runs down); one that upstream closed while idle is opened again."""
                for attempt in (1, 2):
                    upstream: http.client.HTTPConnection | None = getattr(self, "upstream", None)
                    if upstream is None:
                        upstream = http.client.HTTPConnection(
                            "127.0.0.1", upstream_port, timeout=60
                        )
                        self.upstream = upstream
                    try:
                        upstream.request(self.command, self.path, body=body, headers=headers)
                        response = upstream.getresponse()
                        return response, response.read()
                    except (http.client.RemoteDisconnected, ConnectionError):
                        upstream.close()
                        self.upstream = None
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")

            def finish(self) -> None:
                upstream = getattr(self, "upstream", None)
                if upstream is not None:
                    upstream.close()
                super().finish()

            def do_GET(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

            def do_PUT(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_DELETE(self) -> None:
                self._forward()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
