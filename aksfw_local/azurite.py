"""Azurite, the Azure Storage emulator from npm, as a subprocess for the tests.

`Azurite` starts `node_modules/.bin/azurite` (installed by `make test`, or `npm ci`) on
127.0.0.1 with free ports, waits until the blob and queue services answer a real SDK call,
and stops it again. Data lives in memory only (`--inMemoryPersistence`): `restart()` keeps
the ports but starts with empty storage.

    with Azurite() as azurite:
        QueueClient.from_connection_string(azurite.connection_string, "jobs")
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# The development storage account that Azurite (and the Storage Emulator before it) always
# has. The key is public, published in Azurite's documentation: it protects nothing.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
HOST = "127.0.0.1"

FLAGS = (
    "--silent",
    "--inMemoryPersistence",
    "--disableTelemetry",
    "--skipApiVersionCheck",
    "--loose",
)


class AzuriteError(RuntimeError):
    """Azurite is missing, did not start in time, or exited."""


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free on 127.0.0.1 now (all bound at once, so distinct)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    def endpoint(port: int) -> str:
        return f"http://{HOST}:{port}/{ACCOUNT_NAME}"

    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint(blob_port)};QueueEndpoint={endpoint(queue_port)};"
        f"TableEndpoint={endpoint(table_port)};"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: Azurite gets SIGTERM if the test process dies without stopping it."""
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _read_all(handle: IO[bytes]) -> bytes:
    """What Azurite wrote so far, read without moving the offset that it shares with us."""
    chunks = []
    offset = 0
    while chunk := os.pread(handle.fileno(), 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class Azurite:
    """One Azurite process: blob, queue and table services on 127.0.0.1.

    Ports are chosen on the first `start()` (unless given) and kept by `restart()`.
    `startup_timeout_s` bounds each start; `stop()` waits at most `stop_timeout_s` before
    it kills the process.
    """

    def __init__(
        self,
        *,
        blob_port: int | None = None,
        queue_port: int | None = None,
        table_port: int | None = None,
        startup_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
        executable: Path | None = None,
    ) -> None:
        self._ports: tuple[int, int, int] | None = None
        if blob_port is not None and queue_port is not None and table_port is not None:
            self._ports = (blob_port, queue_port, table_port)
        elif (blob_port, queue_port, table_port) != (None, None, None):
            raise ValueError("give all three ports or none")
        self._ports_given = self._ports is not None
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.executable = executable or AZURITE_BIN
        self._process: subprocess.Popen[bytes] | None = None
        self._stdout: IO[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # -- addresses -----------------------------------------------------------------------

    def _require_ports(self) -> tuple[int, int, int]:
        if self._ports is None:
            raise AzuriteError("Azurite has no ports yet: call start() first")
        return self._ports

    @property
    def blob_port(self) -> int:
        return self._require_ports()[0]

    @property
    def queue_port(self) -> int:
        return self._require_ports()[1]

    @property
    def table_port(self) -> int:
        return self._require_ports()[2]

    @property
    def connection_string(self) -> str:
        return connection_string(*self._require_ports())

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> Azurite:
        """Start Azurite and wait until it serves; a no-op if it is already running."""
        if self.running:
            return self
        self.stop()  # it may have exited on its own: release what that run held
        if not (self.executable.is_file() and os.access(self.executable, os.X_OK)):
            raise AzuriteError(
                f"Azurite is not installed: {self.executable} is missing. "
                f"Run `make test`, or `npm ci` in {REPO_ROOT}, to install it from package.json."
            )
        # Free ports can be taken between choosing them and Azurite binding them: when
        # the ports were chosen here, try again on fresh ones (never on restart).
        attempts = 1 if self._ports is not None else 3
        for attempt in range(attempts):
            if self._ports is None or (attempt > 0 and not self._ports_given):
                blob, queue, table = free_ports(3)
                self._ports = (blob, queue, table)
            try:
                self._launch_and_wait()
            except AzuriteError as error:
                if attempt + 1 < attempts and "EADDRINUSE" in str(error):
                    continue
                raise
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch_and_wait(self) -> None:
        blob, queue, table = self._require_ports()
        command = [
            str(self.executable),
            *FLAGS,
            *("--blobHost", HOST, "--blobPort", str(blob)),
            *("--queueHost", HOST, "--queuePort", str(queue)),
            *("--tableHost", HOST, "--tablePort", str(table)),
        ]
        # Output goes to files, not pipes: a pipe nobody reads could fill and stall Azurite.
        self._stdout = tempfile.TemporaryFile(prefix="azurite-out-")  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile(prefix="azurite-err-")  # noqa: SIM115
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            cwd=tempfile.gettempdir(),  # nothing is written with in-memory persistence
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AzuriteError(
                    f"Azurite exited with code {process.returncode} while starting "
                    f"(ports blob={self.blob_port} queue={self.queue_port} "
                    f"table={self.table_port}).\n{self._output()}"
                )
            # The ports answering is not enough: another server could hold them. Azurite
            # prints where it listens, even with --silent (which only mutes access logs).
            if (
                self._says_listening()
                and _port_open(self.blob_port)
                and _port_open(self.queue_port)
            ):
                try:
                    self._probe()
                    return
                except Exception as error:  # not ready yet: try again
                    last_error = error
            time.sleep(0.05)
        raise AzuriteError(
            f"Azurite did not serve blob and queue within {self.startup_timeout_s:.0f} s "
            f"(last error: {last_error!r}).\n{self._output()}"
        )

    def _says_listening(self) -> bool:
        if self._stdout is None:
            return False
        text = _read_all(self._stdout).decode("utf-8", "replace")
        return all(
            f"{service} service is successfully listening at http://{HOST}:{port}" in text
            for service, port in (("Blob", self.blob_port), ("Queue", self.queue_port))
        )

    def _probe(self) -> None:
        """One real SDK call to each service, without the SDK's own retries."""
        options: dict[str, Any] = {"retry_total": 0, "connection_timeout": 2, "read_timeout": 5}
        with QueueServiceClient.from_connection_string(self.connection_string, **options) as q:
            q.get_service_properties()
        with BlobServiceClient.from_connection_string(self.connection_string, **options) as b:
            b.get_service_properties()

    def _output(self) -> str:
        parts = []
        for name, handle in (("stderr", self._stderr), ("stdout", self._stdout)):
            if handle is None or handle.closed:
                continue
            text = _read_all(handle)[-4000:].decode("utf-8", "replace").strip()
            parts.append(f"--- Azurite {name} ---\n{text or '(empty)'}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Terminate Azurite, wait up to `stop_timeout_s`, then kill it. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self.stop_timeout_s)
        for handle in (self._stdout, self._stderr):
            if handle is not None:
                handle.close()
        self._stdout = self._stderr = None

    def restart(self) -> Azurite:
        """Stop and start again on the same ports. In-memory data does not survive it."""
        self.stop()
        return self.start()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Azurite {state} ports={self._ports} pid={self.pid}>"
