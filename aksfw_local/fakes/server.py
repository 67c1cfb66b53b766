"""The loopback HTTP server and the lifecycle shared by every test fake.

``LoopbackHTTPServer`` runs a ``ThreadingHTTPServer`` on 127.0.0.1 in a background
thread and hands every request to an *app*: a plain function from ``HttpRequest`` to
``HttpResponse``.  TLS handshakes happen in the per-connection thread (a stalled
client cannot block the accept loop) and ``stop()`` joins every thread it started.

``FakeServer`` is the base of the fakes: it serves the fake's ``_handle`` while
started (``start``/``stop`` or ``with``) and provides ``url``, ``port``, ``errors``,
``ca_file`` and ``ca_pem``.  It speaks plain HTTP unless given a ``tls_dir``;
``TlsFakeServer`` always speaks HTTPS, with a throw-away CA in a temporary directory
(removed on ``stop``) when no ``tls_dir`` is given.
"""

from __future__ import annotations

import argparse
import errno
import hmac
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from .tls import LOOPBACK, TlsMaterial, make_tls_material, server_context

# --------------------------------------------------------------------------- HTTP plumbing


@dataclass(frozen=True)
class HttpRequest:
    """One request as the fake's app sees it (``path`` includes the query string)."""

    method: str
    path: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    """The app's answer; ``drop=True`` closes the connection without answering.

    ``pace_s`` sends the whole answer, status line and headers included, one byte every
    ``pace_s`` seconds (a drip-feeding server); ``endless=True`` announces a huge body and
    sends ``body`` over and over without end. Either stops when the client goes away, the
    server stops, or after ``TRICKLE_LIMIT_S``.
    """

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    drop: bool = False
    pace_s: float = 0.0
    endless: bool = False


TRICKLE_LIMIT_S = 30.0


App = Callable[[HttpRequest], HttpResponse]


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, calls the server's app, writes its response."""

    server: _AppServer
    timeout = 10.0  # socket timeout: a silent client cannot pin a thread for ever
    server_version = "fake"
    sys_version = ""

    def setup(self) -> None:
        sock = self.request
        if isinstance(sock, ssl.SSLSocket):
            sock.settimeout(self.timeout)
            sock.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence BaseHTTPRequestHandler's per-request logging to stderr."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self.rfile.readline(65537)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Bad request body framing")
            return
        request = HttpRequest(method=self.command, path=self.path, headers=self.headers, body=body)
        try:
            response = self.server.app(request)
        except Exception as exc:  # a bug in the fake: record it, answer 500
            self.server.errors.append(exc)
            response = HttpResponse(500, b"fake server error: " + repr(exc).encode())
        if response.drop:
            self.close_connection = True
            return
        if response.pace_s or response.endless:
            self._trickle(response)
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _trickle(self, response: HttpResponse) -> None:
        """Send a drip-fed or endless answer (see ``HttpResponse``)."""
        self.close_connection = True
        length = 10**12 if response.endless else len(response.body)
        head = (
            f"HTTP/1.1 {response.status} Fake\r\nContent-Type: {response.content_type}\r\n"
            f"Content-Length: {length}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
            + "\r\n"
        ).encode()
        stop, started = self.server.stopping, time.monotonic()
        try:
            if response.pace_s:
                for byte in head + response.body:
                    if stop.wait(response.pace_s) or time.monotonic() - started > TRICKLE_LIMIT_S:
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            else:
                self.wfile.write(head)
            while response.endless and not stop.is_set():
                if time.monotonic() - started > TRICKLE_LIMIT_S:
                    return
                self.wfile.write(response.body or b" " * 65536)
                if response.pace_s and stop.wait(response.pace_s):
                    return
        except OSError:
            return  # the client went away: the point of the exercise


class _AppServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that joins its connection threads on close and speaks TLS."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 64

    def __init__(
        self,
        port: int,
        app: App,
        ssl_context: ssl.SSLContext | None,
        errors: list[BaseException],
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.errors = errors
        self.stopping = threading.Event()
        """Set on stop: answers still trickling out end."""
        super().__init__((LOOPBACK, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "localhost"
        self.server_port = self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.ssl_context is None:
            return sock, address
        try:
            wrapped = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError:
            sock.close()
            raise
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore network-level failures (resets, TLS errors, timeouts); keep the rest."""
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            self.errors.append(exc)


class LoopbackHTTPServer:
    """Serves ``app`` on 127.0.0.1 (HTTP, or HTTPS with ``ssl_context``) in a thread.

    Unexpected exceptions are appended to ``errors`` (a new list unless one is given).
    """

    def __init__(
        self,
        app: App,
        ssl_context: ssl.SSLContext | None = None,
        port: int = 0,
        errors: list[BaseException] | None = None,
    ) -> None:
        self._app = app
        self._ssl_context = ssl_context
        self._requested_port = port
        self._server: _AppServer | None = None
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = [] if errors is None else errors

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while handling requests (fake bugs)."""
        return self._errors

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        server = _AppServer(self._requested_port, self._app, self._ssl_context, self._errors)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-http-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server, self._thread = None, None
        server.stopping.set()
        server.shutdown()
        server.server_close()  # closes the socket and joins connection threads
        if thread is not None:
            thread.join()


def listen_port(text: str) -> int:
    """A fake's ``--port`` (argparse ``type``): 0 (a free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: 0 (a free one) to 65535")
    return port


def listen_failure(port: int, error: OSError) -> str:
    """Why a fake run as a process could not listen on 127.0.0.1:``port``, as one line for
    a person, by ``errno``: the port in use (most often the same fake, still running from
    an earlier paste of a README block), a privileged port, or the system's own reason."""
    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} is in use (a simulator still running from before? Stop it, e.g. "
            "`kill %1`, or choose another --port)"
        )
    if error.errno == errno.EACCES:
        return f"port {port} needs privileges: choose --port 1024 or above (0: a free one)"
    return f"cannot listen on {LOOPBACK}:{port}: {error.strerror or error}"


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization`` header value is exactly ``Bearer <token>``."""
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


# --------------------------------------------------------------------------- fake lifecycle


class FakeServer(ABC):
    """Serves ``_handle`` on 127.0.0.1 while started.

    Plain HTTP, or HTTPS when ``tls_dir`` is given (the CA and server certificate are
    written there at construction). ``errors`` collects the unexpected exceptions of
    every run and is kept after ``stop``.
    """

    #: Without ``tls_dir``, serve HTTPS with a CA made in a temporary directory
    #: (prefix ``tls_prefix``) on ``start`` and removed on ``stop``, not plain HTTP.
    temp_tls: ClassVar[bool] = False
    tls_prefix: ClassVar[str] = "fake-tls-"

    def __init__(self, tls_dir: Path | None = None, port: int = 0) -> None:
        self._tls = make_tls_material(tls_dir) if tls_dir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._port = port
        self._server: LoopbackHTTPServer | None = None
        self._errors: list[BaseException] = []

    @abstractmethod
    def _handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request (called in the connection's thread)."""

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("already started")
        if self._tls is None and self.temp_tls:
            self._tmp = tempfile.TemporaryDirectory(prefix=self.tls_prefix)
            self._tls = make_tls_material(Path(self._tmp.name))
        context = server_context(self._tls) if self._tls is not None else None
        server = LoopbackHTTPServer(self._handle, context, self._port, self._errors)
        server.start()
        self._server = server
        self._port = server.port  # a restart after stop() comes back on the same port
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._tls = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> LoopbackHTTPServer:
        if self._server is None:
            raise RuntimeError("server is not running")
        return self._server

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, or ``https://...`` with TLS (only while running)."""
        return self._running().url

    @property
    def port(self) -> int:
        return self._running().port

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions inside the fake; tests may assert it is empty."""
        return self._errors

    @property
    def ca_file(self) -> Path | None:
        """PEM file of the CA that signed the server certificate (None without TLS)."""
        return self._tls.ca_file if self._tls is not None else None

    @property
    def ca_pem(self) -> bytes | None:
        """That CA certificate as PEM bytes (None without TLS)."""
        return self._tls.ca_pem if self._tls is not None else None


class TlsFakeServer(FakeServer):
    """A ``FakeServer`` that always speaks HTTPS (``temp_tls``).

    Without ``tls_dir``, ``ca_file`` and ``ca_pem`` are only available while running.
    """

    temp_tls = True

    def _material(self) -> TlsMaterial:
        if self._tls is None:
            raise RuntimeError("server is not running")
        return self._tls

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the server certificate (``connection_verify``)."""
        return self._material().ca_file

    @property
    def ca_pem(self) -> bytes:
        return self._material().ca_pem
