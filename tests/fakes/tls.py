"""TLS material and the loopback HTTP server plumbing shared by the test fakes.

``make_tls_material`` writes a throw-away certificate authority and a server
certificate (valid for ``localhost`` and ``127.0.0.1``) as PEM files, so a fake can
serve HTTPS that real clients verify against ``ca_file``.

``LoopbackHTTPServer`` runs a ``ThreadingHTTPServer`` on 127.0.0.1 in a background
thread and hands every request to an *app*: a plain function from ``HttpRequest`` to
``HttpResponse``.  TLS handshakes happen in the per-connection thread (a stalled
client cannot block the accept loop) and ``stop()`` joins every thread it started.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files of a test CA and a server certificate signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_pem: bytes


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def make_tls_material(directory: Path) -> TlsMaterial:
    """Create a self-signed CA and a ``localhost``/``127.0.0.1`` server cert in ``directory``.

    Keys are EC P-256; both certificates are valid for one day (backdated by five
    minutes to tolerate clock skew).
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aksfw test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address(LOOPBACK)),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    material = TlsMaterial(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
        ca_pem=ca_pem,
    )
    material.ca_file.write_bytes(ca_pem)
    material.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        material.key_file,
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return material


def server_context(material: TlsMaterial) -> ssl.SSLContext:
    """An ``SSLContext`` for a server presenting ``material``'s certificate (TLS 1.2+)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=material.cert_file, keyfile=material.key_file)
    return context


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
    """The app's answer; ``drop=True`` closes the connection without answering."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    drop: bool = False


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
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class _AppServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that joins its connection threads on close and speaks TLS."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 64

    def __init__(self, port: int, app: App, ssl_context: ssl.SSLContext | None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.errors: list[BaseException] = []
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
    """Serves ``app`` on 127.0.0.1 (HTTP, or HTTPS with ``ssl_context``) in a thread."""

    def __init__(self, app: App, ssl_context: ssl.SSLContext | None = None, port: int = 0) -> None:
        self._app = app
        self._ssl_context = ssl_context
        self._requested_port = port
        self._server: _AppServer | None = None
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = []

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
        if self._server is not None:
            return self._server.errors
        return self._errors

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        server = _AppServer(self._requested_port, self._app, self._ssl_context)
        server.errors = self._errors
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
        server.shutdown()
        server.server_close()  # closes the socket and joins connection threads
        if thread is not None:
            thread.join()
