"""Microsoft's Python Functions runtime, driven the way the Functions host drives it.

`RuntimeWorker` starts `proxy.py` in the runtime's Python 3.13 environment (`.venv-runtime`,
built by `make test`) and sends it the host's requests: worker init (which indexes
`function_app.py`), functions metadata, function load, invocation and the environment
reload that specialises a placeholder worker. The inputs are shaped as the host sends them
(`aksfw_local.runtime.inputs`); what the app did is then read from the local stack.

    with RuntimeWorker(os.environ) as worker:
        worker.start_app(REPO_ROOT)
        invocation = worker.invoke("status", inputs.http_request("GET", "status"))
        assert invocation.http_status == 200

The host itself (`func`) cannot be installed here, so its queue semantics (dequeue count,
poison queue) stay with `QueueTriggerHost`, whose handler `queue_handler()` makes a call
through the runtime.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import queue
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import azure.functions as func

from aksfw_local.functions_host import Handler
from aksfw_local.runtime import inputs

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_VENV = REPO_ROOT / ".venv-runtime"
RUNTIME_PYTHON = RUNTIME_VENV / "bin" / "python"
PROXY = Path(__file__).resolve().parent / "proxy.py"

START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
"""Bounds one request: an invocation that reads Panorama through retries stays well below."""


class WorkerError(RuntimeError):
    """The worker process is missing, did not answer in time, or died."""


class InvocationFailed(RuntimeError):
    """The runtime answered an invocation with a failure status: the function raised, or its
    inputs or its return value could not be converted. The host retries queue messages then."""


@dataclass(frozen=True)
class Reply:
    """The runtime's answer to one request: the response message (protobuf JSON, field names
    as in the protocol) and what was logged meanwhile."""

    response: dict[str, Any]
    logs: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        return bool(self.response.get("result", {}).get("status") == "Success")

    @property
    def error(self) -> str:
        """The exception the runtime reported, or empty."""
        return str(self.response.get("result", {}).get("exception", {}).get("message", ""))

    def events(self, name: str) -> list[dict[str, Any]]:
        """The app's structured log events called `name` (`aksfw_core.logs`), in order."""
        found = []
        for record in self.logs:
            try:
                event = json.loads(record["message"])
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                found.append(event)
        return found


@dataclass(frozen=True)
class IndexedFunction:
    """One function as the runtime reports it to the host."""

    name: str
    function_id: str
    bindings: list[dict[str, Any]]
    """The raw bindings (the JSON the host reads), in declaration order."""
    binding_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The typed `BindingInfo` per binding name (type, direction)."""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invocation(Reply):
    @property
    def http_status(self) -> int:
        return int(self._http()["status_code"])

    @property
    def http_headers(self) -> dict[str, str]:
        return dict(self._http().get("headers", {}))

    def http_json(self) -> Any:
        return json.loads(self.http_body)

    @property
    def http_body(self) -> bytes:
        body = self._http().get("body", {})
        if "bytes" in body:
            return base64.b64decode(body["bytes"])
        return str(body.get("string", body.get("json", ""))).encode("utf-8")

    def _http(self) -> dict[str, Any]:
        http = self.response.get("return_value", {}).get("http")
        if http is None:
            raise AssertionError(f"no HTTP return value: {self.response!r}")
        return dict(http)


class RuntimeWorker:
    """One worker process of the runtime; `env` is the process environment it starts with
    (the app settings, as the host passes them). `python_path` goes before the runtime's own
    packages (the floor test puts another azure-functions there)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        python: Path = RUNTIME_PYTHON,
        python_path: Path | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.env = dict(env)
        self.python = python
        self.python_path = python_path
        self.request_timeout_s = request_timeout_s
        self.versions: dict[str, Any] = {}
        self.functions: dict[str, IndexedFunction] = {}
        self.invocations: list[tuple[str, Invocation]] = []
        """Every invocation so far: the function's name and the runtime's answer."""
        self._ids = itertools.count(1)
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: IO[str] | None = None

    # -- the process ---------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start the worker; returns who answered (python, azureFunctions, runtime)."""
        if not self.python.exists():
            raise WorkerError(
                f"{self.python} is missing: `make test` builds the runtime's Python 3.13 "
                "environment (.venv-runtime)"
            )
        env = {key: value for key, value in self.env.items() if key != "PYTHONPATH"}
        if self.python_path is not None:
            env["PYTHONPATH"] = str(self.python_path)
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        # Started outside the repository: only the directory the host names is importable.
        self._process = subprocess.Popen(
            [str(self.python), str(PROXY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=tempfile.gettempdir(),
        )
        threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True).start()
        self.versions = self._next(START_TIMEOUT_S)
        if not self.versions.get("ready"):
            raise WorkerError(f"the worker did not start: {self.versions!r}{self._stderr_tail()}")
        return self.versions

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise WorkerError(
                f"no answer from the worker in {timeout_s:.0f} s{self._stderr_tail()}"
            ) from None
        if line is None:
            raise WorkerError(f"the worker exited{self._stderr_tail()}")
        document: dict[str, Any] = json.loads(line)
        return document

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        tail = self._stderr.read()[-3000:]
        return f"; its stderr ends:\n{tail}" if tail else ""

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # type: ignore[union-attr]
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            process.stdout.close()  # type: ignore[union-attr]
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> RuntimeWorker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the host's requests -------------------------------------------------------------

    def request(self, kind: str, body: dict[str, Any]) -> Reply:
        """Send one `StreamingMessage` holding `kind` (e.g. `worker_init_request`); returns
        the response it holds."""
        if self._process is None or self._process.stdin is None:
            raise WorkerError("the worker is not running")
        request_id = str(next(self._ids))
        line = json.dumps({"message": {"request_id": request_id, kind: body}})
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except OSError as error:
            raise WorkerError(f"the worker is gone ({error}){self._stderr_tail()}") from None
        answer = self._next(self.request_timeout_s)
        if "error" in answer:
            raise WorkerError(f"the proxy failed on {kind}: {answer['error']}")
        message = answer["message"]
        (response_kind,) = (key for key in message if key != "request_id")
        return Reply(message[response_kind], answer.get("logs", []))

    def init(self, app_directory: Path | str) -> Reply:
        """Worker init: the runtime indexes `function_app.py` in `app_directory`."""
        return self.request(
            "worker_init_request",
            {
                "host_version": inputs.HOST_VERSION,
                "capabilities": {},
                "worker_directory": str(RUNTIME_VENV),
                "function_app_directory": str(app_directory),
            },
        )

    def reload(self, env: Mapping[str, str], app_directory: Path | str) -> Reply:
        """Environment reload: a placeholder worker becomes the app's (Flex Consumption's
        specialisation): the settings are replaced and the app's directory indexed."""
        return self.request(
            "function_environment_reload_request",
            {"environment_variables": dict(env), "function_app_directory": str(app_directory)},
        )

    def index(self) -> dict[str, IndexedFunction]:
        """Functions metadata: what the runtime indexed, by function name."""
        reply = self.request("functions_metadata_request", {"function_app_directory": ""})
        if not reply.ok:
            raise WorkerError(f"functions metadata failed: {reply.error}")
        self.functions = {}
        for entry in reply.response.get("function_metadata_results", []):
            self.functions[entry["name"]] = IndexedFunction(
                name=entry["name"],
                function_id=entry["function_id"],
                bindings=[json.loads(raw) for raw in entry.get("raw_bindings", [])],
                binding_info=dict(entry.get("bindings", {})),
                metadata=entry,
            )
        return self.functions

    def load(self, name: str) -> Reply:
        """Function load, with the metadata the runtime gave for it."""
        function = self.functions[name]
        return self.request(
            "function_load_request",
            {"function_id": function.function_id, "metadata": function.metadata},
        )

    def start_app(self, app_directory: Path | str = REPO_ROOT) -> dict[str, IndexedFunction]:
        """Init, metadata and every function loaded, as the host starts a worker; raises
        `WorkerError` if any step fails."""
        reply = self.init(app_directory)
        if not reply.ok:
            raise WorkerError(f"worker init failed: {reply.error}")
        functions = self.index()
        for name in functions:
            loaded = self.load(name)
            if not loaded.ok:
                raise WorkerError(f"loading {name} failed: {loaded.error}")
        return functions

    def invoke(self, name: str, call: inputs.Call) -> Invocation:
        """Invoke function `name` with the trigger input and metadata of `call`."""
        function = self.functions[name]
        reply = self.request(
            "invocation_request",
            {
                "invocation_id": str(uuid.uuid4()),
                "function_id": function.function_id,
                "input_data": [{"name": call.name, "data": call.data}],
                "trigger_metadata": call.metadata,
                "trace_context": call.trace_context,
            },
        )
        invocation = Invocation(reply.response, reply.logs)
        self.invocations.append((name, invocation))
        return invocation

    def queue_handler(self, name: str) -> Handler:
        """A `QueueTriggerHost` handler that invokes queue function `name` through the
        runtime and raises `InvocationFailed` when the runtime reports a failure (so the
        host retries or poisons the message)."""

        def handle(message: func.QueueMessage) -> None:
            invocation = self.invoke(name, inputs.queue_message(message))
            if not invocation.ok:
                raise InvocationFailed(invocation.error)

        return handle


@contextlib.contextmanager
def running_app(
    env: Mapping[str, str], app_directory: Path | str = REPO_ROOT, **options: Any
) -> Iterator[RuntimeWorker]:
    """A worker started with `env` and the app in `app_directory` indexed and loaded."""
    with RuntimeWorker(env, **options) as worker:
        worker.start_app(app_directory)
        yield worker
