"""Faults that need real processes, through the whole app: a `panorama-updates` worker
killed with SIGKILL between writing Panorama and saving the applied state, and two
workers given two snapshots of one (cluster, target) at the same time.

The workers are `tests/support/fault_worker.py` processes built from the environment the
`world` fixture sets; they stop right before saving state until this test lets them go.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from aksfw_local.fakes.kube_api import service
from aksfw_local.functions_host import poison_messages
from tests.support import REPO_ROOT
from tests.support.faults import AFTER, FOREIGN, converge, merged, owned_tags, tags_of
from tests.support.flow import DONE
from tests.support.queues import UPDATES

pytestmark = pytest.mark.subprocess  # `fault_worker` processes

WORKER_TIMEOUT_S = 30.0
WAIT_S = 20.0

MIDDLE = [
    service("web", "shop", ips=["20.0.0.1"], labels={"app": "web3"}),
    service("api", "shop", ips=["20.0.0.2"], labels={"app": "api"}),
    service("mid", "shop", ips=["20.0.0.4"], labels={"tier": "mid"}),
]


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.02)


@contextmanager
def worker(tmp_path: Path, name: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A `fault_worker` process; killed and reaped on the way out, whatever happened."""
    log = tmp_path / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fault_worker", "--timeout", str(WORKER_TIMEOUT_S),
             "--results", str(tmp_path / f"{name}.json"), *args],
            cwd=REPO_ROOT, env=dict(os.environ), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def finished(process: subprocess.Popen[bytes], tmp_path: Path, name: str) -> list[dict]:
    """Wait for a worker to exit cleanly; what became of each of its deliveries."""
    try:
        code = process.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        code = None
    assert code == 0, (tmp_path / f"{name}.log").read_text()
    return json.loads((tmp_path / f"{name}.json").read_text())


def held(hold: Path, process: subprocess.Popen[bytes]) -> int:
    """Wait until the worker stops before saving state; the version it is about to save."""
    marker = hold / f"{process.pid}.held"
    wait_for(lambda: marker.exists() or process.poll() is not None, "worker holds")
    assert marker.exists(), f"worker exited with {process.returncode} before saving state"
    return int(json.loads(marker.read_text())["version"])


def test_worker_killed_between_register_and_state_save_converges_on_redelivery(
    world, deliveries, tmp_path
):
    converge(world)
    converged = world.applied()
    world.kube.services = list(AFTER)
    world.event("lb-write.eventgrid.json")
    world.resyncs.run_until_idle(timeout_s=20)  # queues the snapshot
    deliveries.clear()
    wanted = merged(FOREIGN, owned_tags(AFTER))
    hold = tmp_path / "hold"
    hold.mkdir()

    with worker(tmp_path, "killed", "--hold", str(hold), "--visibility-timeout", "2") as process:
        version = held(hold, process)
        assert world.registered() == wanted  # registered on Panorama...
        assert world.applied() == converged  # ...but the state is not saved yet
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    # A fresh worker gets the message back once its visibility timeout (2 s) has passed.
    deadline = time.monotonic() + WAIT_S
    while not deliveries and time.monotonic() < deadline:
        world.updates.run_once()
        time.sleep(0.1)
    assert [(d.dequeue_count, d.outcome) for d in deliveries] == [(2, DONE)], deliveries
    assert deliveries[0].panorama_writes == 1  # the same changes again, harmlessly
    assert world.registered() == wanted
    state = world.applied()
    assert state is not None and state.version == version
    assert tags_of(state) == owned_tags(AFTER)
    assert not state.dirty and state.last_error is None
    assert world.updates.run_once() == 0  # nothing left over
    assert poison_messages(world.connection_string, UPDATES) == []


def test_two_workers_with_two_queued_snapshots_of_one_target_write_panorama_once(world, tmp_path):
    converge(world)
    world.kube.services = list(MIDDLE)
    world.event("lb-write.eventgrid.json")
    world.resyncs.run_until_idle(timeout_s=20)  # the older snapshot
    world.kube.services = list(AFTER)
    world.event("lb-write.eventgrid.json")
    world.resyncs.run_until_idle(timeout_s=20)  # the newer one
    world.panorama.reset_calls()

    with ExitStack() as stack:
        # Started together; whichever takes the older snapshot finds the newer one queued
        # and skips it, and the apply lock keeps them from working on the target at once.
        processes = {
            name: stack.enter_context(worker(tmp_path, name, "--batch-size", "1"))
            for name in ("a", "b")
        }
        results = {name: finished(process, tmp_path, name) for name, process in processes.items()}

    deliveries = sorted((r["dequeue_count"], r["ok"]) for rs in results.values() for r in rs)
    assert deliveries == [(1, True), (1, True)], results  # no retry, no race to settle
    assert len(world.panorama.write_calls()) == 1  # the older one never reached Panorama
    assert world.registered() == merged(FOREIGN, owned_tags(AFTER))
    state = world.applied()
    assert state is not None and tags_of(state) == owned_tags(AFTER) and not state.dirty
    assert world.updates.run_once() == 0  # nothing left over
    assert poison_messages(world.connection_string, UPDATES) == []
