"""The Functions host's side of Microsoft's Python runtime, for tests: a worker process that
runs `azure-functions-runtime` under Python 3.13 the way the host's proxy worker does.

Since Python 3.13 the worker is split: a proxy inside the host speaks gRPC with the host and
hands each request to the runtime library, which indexes `function_app.py`, loads the
functions and converts every input and output. This file plays the proxy. Instead of a gRPC
stream it reads one request per line on stdin and writes one answer per line on stdout, both
as the protocol's `StreamingMessage` in protobuf's JSON form:

    in:  {"message": {"requestId": "1", "workerInitRequest": {...}}}
    out: {"message": {"requestId": "1", "workerInitResponse": {...}}, "logs": [...]}

`logs` holds what was logged while the request ran (the host receives those as RpcLog).
The first line out says who is here: {"ready": true, "python": ..., "azureFunctions": ...}.

Run it with the runtime's virtual environment (`make test` builds `.venv-runtime`), by path,
so that nothing of this repository is importable until the host names the app's directory:

    .venv-runtime/bin/python aksfw_local/runtime/proxy.py

It imports only the standard library, protobuf, grpc_tools (to compile the protocol) and
the runtime; `aksfw_local.runtime.worker` starts and drives it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

PROTOCOL = Path(__file__).resolve().parent / "worker_protocol.proto"

# The requests the proxy hands to the runtime (a function of the runtime's own name each)
# and the field of the answer each response goes in.
RESPONSES = {
    "worker_init_request": "worker_init_response",
    "function_environment_reload_request": "function_environment_reload_response",
    "functions_metadata_request": "function_metadata_response",
    "function_load_request": "function_load_response",
    "invocation_request": "invocation_response",
}


def compile_protocol(out_dir: Path) -> ModuleType:
    """The protocol's message classes, compiled from `PROTOCOL` with grpc_tools' protoc."""
    import grpc_tools  # noqa: PLC0415 - only the proxy needs it
    from grpc_tools import protoc  # noqa: PLC0415

    well_known = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    status = protoc.main(
        [
            "protoc",
            f"-I{PROTOCOL.parent}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            str(PROTOCOL),
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc could not compile {PROTOCOL} (exit {status})")
    sys.path.insert(0, str(out_dir))
    return __import__(PROTOCOL.stem + "_pb2")


class Request:
    """What the proxy hands the runtime: the host's message and, at init and reload, the
    protocol's classes and the host's address (the runtime's `request.properties`)."""

    def __init__(self, name: str, message: Any, properties: dict[str, Any] | None) -> None:
        self.name = name
        self.request = message
        self.properties = properties


class Collector(logging.Handler):
    """Keeps the records of one request for the answer, as the host would receive them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(
            {"level": record.levelname, "logger": record.name, "message": self.format(record)}
        )

    def take(self) -> list[dict[str, str]]:
        records, self.records = self.records, []
        return records


class Proxy:
    def __init__(self, protos: ModuleType, runtime: ModuleType, out: Any) -> None:
        self.protos = protos
        self.runtime = runtime
        self.out = out
        self.logs = Collector()
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        root.addHandler(self.logs)

    def _prepare(self, kind: str, message: Any) -> dict[str, Any] | None:
        """What the host's proxy does before it hands a request over."""
        if kind == "worker_init_request":
            directory = message.worker_init_request.function_app_directory
            if directory:
                # The proxy puts the app's directory first, as the host's worker does.
                sys.path.insert(0, directory)
                os.chdir(directory)
            self.runtime.start_threadpool_executor()
        elif kind == "function_environment_reload_request":
            self.runtime.start_threadpool_executor()
        if kind in ("worker_init_request", "function_environment_reload_request"):
            return {"protos": self.protos, "host": "127.0.0.1"}
        return None

    async def handle(self, line: str) -> dict[str, Any]:
        from google.protobuf import json_format  # noqa: PLC0415

        message = json_format.ParseDict(json.loads(line)["message"], self.protos.StreamingMessage())
        kind = message.WhichOneof("content")
        if kind not in RESPONSES:
            raise ValueError(f"the proxy does not forward {kind!r}")
        properties = self._prepare(kind, message)
        handler = getattr(self.runtime, kind)
        response = await handler(Request(kind, message, properties))
        answer = self.protos.StreamingMessage(request_id=message.request_id)
        getattr(answer, RESPONSES[kind]).CopyFrom(response)
        return {
            "message": json_format.MessageToDict(answer, preserving_proto_field_name=True),
            "logs": self.logs.take(),
        }

    def send(self, document: dict[str, Any]) -> None:
        self.out.write(json.dumps(document) + "\n")
        self.out.flush()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            try:
                self.send(await self.handle(line))
            except Exception as error:  # the proxy's own failure: say so, keep serving
                self.send({"error": f"{type(error).__name__}: {error}", "logs": self.logs.take()})


def main() -> None:
    # The protocol owns the real stdout; anything the app prints goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    with tempfile.TemporaryDirectory(prefix="aksfw-protocol-") as scratch:
        protos = compile_protocol(Path(scratch))
        import azure.functions  # noqa: PLC0415
        import azure_functions_runtime  # noqa: PLC0415

        proxy = Proxy(protos, azure_functions_runtime, out)
        proxy.send(
            {
                "ready": True,
                "python": platform.python_version(),
                "azureFunctions": azure.functions.__version__,
                "runtime": importlib.metadata.version("azure-functions-runtime"),
            }
        )
        try:
            asyncio.run(proxy.serve())
        finally:
            azure_functions_runtime.stop_threadpool_executor()


if __name__ == "__main__":
    main()
