"""A `panorama-updates` worker in a process of its own, for the fault suite's process tests.

It builds the app from the environment as a Functions worker would (AKSFW_CONFIG,
AKSFW_ARM_ENDPOINT, AKSFW_DEV_TOKEN, PANORAMA_API_KEY, AzureWebJobsStorage,
REQUESTS_CA_BUNDLE) and consumes the queue with `QueueTriggerHost` and the app's
`panorama_updates` function until the queue is idle, then writes what became of each
delivery to `--results` (JSON) and exits 0.

With `--hold DIR` it stops right before each save of applied state (after Panorama has
been written): it writes `DIR/<pid>.held` holding the version it is about to save and
waits for `DIR/<pid>.go`, so the parent can kill it there (SIGKILL) or release it.

    python -m tests.support.fault_worker --results out.json --hold DIR --visibility-timeout 2

Every wait is bounded by `--timeout` (exit 3 when it runs out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import function_app
from aksfw_core.pipeline.state_store import StateStore
from aksfw_local.functions_host import QueueTriggerHost, load_queue_settings

UPDATES = "panorama-updates"
POLL_S = 0.02


def hold_before_saving(directory: Path, deadline: float) -> None:
    """Make every `StateStore.save_applied` of this process wait for the parent's go."""
    original = StateStore.save_applied
    held = directory / f"{os.getpid()}.held"
    go = directory / f"{os.getpid()}.go"

    def save_applied(self: StateStore, state: object, etag: str | None) -> None:
        version = getattr(state, "version", None)
        partial = held.with_suffix(".tmp")
        partial.write_text(json.dumps({"version": version}))
        partial.rename(held)  # whole or absent: the parent never reads half a file
        while not go.exists():
            if time.monotonic() > deadline:
                print("fault_worker: no go before the deadline", file=sys.stderr)
                os._exit(3)
            time.sleep(POLL_S)
        original(self, state, etag)  # type: ignore[arg-type]

    StateStore.save_applied = save_applied  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--hold", type=Path)
    parser.add_argument("--visibility-timeout", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    if args.hold is not None:
        hold_before_saving(args.hold, deadline)
    handlers = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
    handler = handlers["panorama_updates"].get_user_function()
    settings = load_queue_settings()
    settings = type(settings)(**{**asdict(settings), "batch_size": args.batch_size})
    with QueueTriggerHost(
        os.environ["AzureWebJobsStorage"],  # noqa: SIM112 - the Functions setting, as named
        UPDATES,
        handler,
        visibility_timeout_s=args.visibility_timeout,
        settings=settings,
    ) as host:
        try:
            host.run_until_idle(timeout_s=max(0.1, deadline - time.monotonic()))
        except TimeoutError as error:
            print(f"fault_worker: {error}", file=sys.stderr)
            return 3
        finally:
            results = [
                {"dequeue_count": r.dequeue_count, "ok": r.ok, "poisoned": r.poisoned,
                 "error": r.error}
                for r in host.results
            ]  # fmt: skip
            args.results.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
