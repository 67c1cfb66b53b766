"""One read of a target's table shared across instances, with real processes: two
`panorama-updates` workers auditing the clusters of one target at once read it once, and a
worker killed (SIGKILL) in the middle of that read costs exactly one more read, every
cluster's tags ending exact, other owners' untouched (`pipeline.shared_tables`).

The workers are `tests/support/fault_worker.py` processes built from the environment the
`world` fixture sets, as in `test_fault_processes.py`.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack

import pytest

from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.fakes.panorama import Fault
from aksfw_local.functions_host import poison_messages
from tests.e2e.test_fault_processes import finished, wait_for, worker
from tests.support.flow import SUB, configure
from tests.support.queues import UPDATES

pytestmark = pytest.mark.subprocess  # `fault_worker` processes

SKEW_S = 0.5  # limits.sharedTableClockSkewSeconds here: the test waits it out after converging


def name(index: int) -> str:
    return "aks-prod1" if index == 0 else f"aks-{index:02d}"


def services(index: int) -> list[dict]:
    return [service("web", "shop", ips=[f"20.{index}.0.1"], labels={"app": "web"})]


def wanted(index: int) -> dict[str, set[str]]:
    return {f"20.{index}.0.1": {f"aks.{name(index)}.web", f"aks.{name(index)}.svc.app.web"}}


def counts(world) -> int:
    """Reads of Panorama's whole table so far (each begins with its count)."""
    return sum("<option>count" in (call.command or "") for call in world.panorama.calls)


@pytest.fixture
def clusters(world, monkeypatch, azurite, request):
    """`request.param` clusters on Panorama, converged, a foreign tag beside each and some
    drift for an audit to repair; their audit snapshots queued, nothing read yet."""
    count = request.param
    with ExitStack() as servers:
        world.kube.services = services(0)
        for index in range(1, count):
            kube = servers.enter_context(FakeKubeApi(token="kube-token"))
            kube.services = services(index)
            world.arm.add_cluster(SUB, "rg-prod", name(index), tags={"aksfw": "on"},
                                  kubeconfig=kube.kubeconfig())  # fmt: skip
        configure(monkeypatch, (world.arm, world.panorama, azurite.connection_string),
                  limits={"sharedTableClockSkewSeconds": SKEW_S})  # fmt: skip
        assert world.http("POST", "resync", b"{}").status_code == 202
        world.drain()
        time.sleep(2 * SKEW_S)  # the audit's read begins after every cluster's last write
        world.panorama.seed_many({f"20.{i}.0.1": ["corp.keep"] for i in range(count)})
        world.panorama.seed("20.0.0.1", ["aks.aks-prod1.stale"])  # drift to repair
        assert world.http("POST", "resync", b'{"audit": true}').status_code == 202
        world.resyncs.run_until_idle(timeout_s=30)  # one audit snapshot per cluster queued
        world.panorama.reset_calls()
        yield count


def exact(count: int) -> dict[str, set[str]]:
    return {ip: tags | {"corp.keep"} for i in range(count) for ip, tags in wanted(i).items()}


@pytest.mark.parametrize("clusters", [8], indirect=True)
def test_two_workers_auditing_one_target_at_once_read_its_table_once(world, clusters, tmp_path):
    world.panorama.slow_seconds = 3.0
    world.panorama.inject(Fault.SLOW)  # the first read's count: the other worker comes meanwhile
    with ExitStack() as stack:
        processes = {
            name: stack.enter_context(worker(tmp_path, name, "--batch-size", "2"))
            for name in ("a", "b")
        }
        results = {name: finished(process, tmp_path, name) for name, process in processes.items()}

    assert all(results.values()), results  # both took audits
    deliveries = [r for rs in results.values() for r in rs]
    assert len(deliveries) == clusters and all(r["ok"] for r in deliveries), results
    assert counts(world) == 1
    assert world.registered() == exact(clusters)
    assert world.updates.run_once() == 0
    assert poison_messages(world.connection_string, UPDATES) == []


@pytest.mark.parametrize("clusters", [2], indirect=True)
def test_a_worker_killed_in_the_middle_of_the_read_costs_one_more_read(world, clusters, tmp_path):
    world.panorama.slow_seconds = 60.0
    world.panorama.inject(Fault.SLOW)  # the first read hangs after its first request
    with worker(tmp_path, "killed", "--batch-size", "1", "--visibility-timeout", "3") as process:
        wait_for(lambda: counts(world) == 1, "the worker reads the table")
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    # Its read lock lapses (a lease of 15 s): the next applier that needs the table reads
    # it, once; the killed worker's audit comes back (its message's visibility timeout) and
    # uses that read.
    before = len(world.updates.results)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        world.updates.run_until_idle(timeout_s=60, settle_s=1)
        if sum(r.ok for r in world.updates.results[before:]) == clusters:
            break
        time.sleep(0.5)
    assert sum(r.ok for r in world.updates.results[before:]) == clusters, world.updates.results
    assert counts(world) == 2
    assert world.registered() == exact(clusters)
    assert poison_messages(world.connection_string, UPDATES) == []
    for index in range(clusters):
        state = world.applied(cluster_id(index))
        assert state is not None and not state.dirty
        assert {ip: set(tags) for ip, tags in state.tags.items()} == wanted(index)


def cluster_id(index: int) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/"
        f"Microsoft.ContainerService/managedClusters/{name(index)}"
    )
