"""The hourly audit, and the repair of a target that forgot, through the whole local stack:
20 clusters (each with an API server of its own) on 3 targets (Panorama and two
firewalls), the timer and both queue
functions, the Panorama simulator's call log. Each firewall's table is read once per cycle
whatever the number of clusters on it, and every cluster's tags end exact, other owners'
untouched (`pipeline.shared_tables`)."""

from __future__ import annotations

import json
import math
import time
from contextlib import ExitStack

import pytest
from azure.functions.timer import TimerRequest

from aksfw_core import functions
from aksfw_core.panorama.canary import is_canary_tag
from aksfw_core.panorama.registered_read import PAGE_SIZE
from aksfw_core.rules.messages import Snapshot
from aksfw_local.fakes.kube_api import FakeKubeApi, service
from tests.support.flow import CLUSTER, HANDLERS, SUB, configure

SERIALS = ["007000000001", "007000000002"]  # the simulator's firewalls
TARGETS: list[str | None] = [None, *SERIALS]  # None: Panorama itself
CLUSTERS = 20
AUDIT_S = 600  # limits.auditIntervalSeconds here: the canaries (3,600 s) stay within theirs
FOREIGN = {f"10.9.{i // 256}.{i % 256}": {"corp.other"} for i in range(600)}  # a second page


def name(index: int) -> str:
    return "aks-prod1" if index == 0 else f"aks-{index:02d}"


def services(index: int) -> list[dict]:
    return [
        service("web", "shop", ips=[f"20.{index}.0.1"], labels={"app": "web"}),
        service("api", "shop", ips=[f"20.{index}.1.1"], labels={"app": "api"}),
    ]


def wanted(index: int) -> dict[str, set[str]]:
    cluster = name(index)
    return {
        f"20.{index}.0.1": {f"aks.{cluster}.web", f"aks.{cluster}.svc.app.web"},
        f"20.{index}.1.1": {f"aks.{cluster}.api", f"aks.{cluster}.svc.app.api"},
    }


def expected() -> dict[str, set[str]]:
    """What every firewall holds: each cluster's tags, a foreign tag on each cluster's
    first address, and other owners' addresses."""
    table = {ip: set(tags) for ip, tags in FOREIGN.items()}
    for index in range(CLUSTERS):
        for ip, tags in wanted(index).items():
            table[ip] = set(tags)
        table[f"20.{index}.0.1"].add("corp.keep")
    return table


def held(world, target: str | None) -> dict[str, set[str]]:
    """A target's registrations, its canary left out."""
    kept = {
        ip: {tag for tag in tags if not is_canary_tag(tag)}
        for ip, tags in world.panorama.registered(target).items()
    }
    return {ip: tags for ip, tags in kept.items() if tags}


def reads(world, kind: str = "") -> dict[str | None, int]:
    """Registered-ip requests of table reads by target (`kind` "count": the reads themselves,
    one count each); canary checks left out."""
    found: dict[str | None, int] = {}
    for call in world.panorama.calls:
        command = call.command or ""
        table = call.type == "op" and "<registered-ip>" in command and "100::" not in command
        if table and kind in command:
            found[call.target] = found.get(call.target, 0) + 1
    return found


def run_timer() -> None:
    HANDLERS["resync_timer"](TimerRequest())


@pytest.fixture
def fleet(world, monkeypatch, azurite):
    """20 clusters on 3 targets, converged; a foreign tag beside each cluster's and other
    owners' addresses on every target; the app's clock is the test's (`fleet.clock`)."""
    with ExitStack() as servers:
        world.kube.services = services(0)
        for index in range(1, CLUSTERS):
            kube = servers.enter_context(FakeKubeApi(token="kube-token"))
            kube.services = services(index)
            world.arm.add_cluster(SUB, "rg-prod", name(index), tags={"aksfw": "on"},
                                  kubeconfig=kube.kubeconfig())  # fmt: skip
        configure(monkeypatch, (world.arm, world.panorama, azurite.connection_string),
                  panorama={"host": world.panorama.url,
                            "targets": {"panorama": True, "serials": SERIALS}},
                  limits={"auditIntervalSeconds": AUDIT_S})  # fmt: skip
        now = [time.time()]
        functions.application().engine.clock.source = lambda: now[0]
        world.clock = now
        run_timer()
        world.drain()
        for target in TARGETS:
            world.panorama.seed_many(FOREIGN, target=target)
            world.panorama.seed_many(
                {f"20.{i}.0.1": ["corp.keep"] for i in range(CLUSTERS)}, target=target
            )
            assert held(world, target) == expected()
        yield world


def test_one_audit_cycle_reads_each_firewall_once_and_leaves_every_cluster_exact(fleet):
    world = fleet
    for fw, target in enumerate(TARGETS):  # drift for the audit to repair
        canary = {ip: tags for ip, tags in world.panorama.registered(target).items()
                  if ip not in held(world, target)}  # fmt: skip
        drifted = expected()
        lost = f"20.{fw}.0.1"
        drifted[lost] -= wanted(fw)[lost]  # a cluster's registration lost
        drifted[f"20.{fw + 5}.1.1"].add(f"aks.{name(fw + 5)}.stale")  # one it no longer wants
        world.panorama.clear(target)
        world.panorama.seed_many({**drifted, **canary}, target=target)
    world.panorama.reset_calls()
    world.clock[0] += AUDIT_S  # the next audit hour

    run_timer()
    world.drain()

    assert reads(world, "<option>count") == dict.fromkeys(TARGETS, 1)  # one read each
    ips = len(world.panorama.registered(SERIALS[0]))
    pages = math.ceil((ips + 1) / PAGE_SIZE)
    assert sum(reads(world).values()) <= len(TARGETS) * (pages + 1)
    repairs = [c for c in world.panorama.write_calls() if "aksfw.canary." not in c.command]
    assert len(repairs) == 2 * len(TARGETS)  # the two drifted clusters' on each, no other
    for target in TARGETS:
        assert held(world, target) == expected()


def test_a_firewall_that_forgot_is_repaired_for_all_its_clusters_from_one_read(fleet):
    world = fleet
    world.panorama.reset_calls()
    world.clock[0] += 300  # the next timer run, not an audit
    world.panorama.clear(SERIALS[1])

    run_timer()
    world.drain()

    assert reads(world, "<option>count") == {SERIALS[1]: 1}  # the others are not read
    ours = {ip: tags for index in range(CLUSTERS) for ip, tags in wanted(index).items()}
    assert held(world, SERIALS[1]) == ours  # the clear took the others' tags for good
    for target in (None, SERIALS[0]):
        assert held(world, target) == expected()


def test_a_table_read_before_the_target_forgot_serves_no_repair(fleet):
    world = fleet
    engine = functions.application().engine
    world.clock[0] += 300
    body = json.dumps({"cluster": name(1), "audit": True}).encode()
    assert world.http("POST", "resync", body).status_code == 202
    world.drain()  # aks-01's audit: every target's table read now, and stored
    world.panorama.clear(SERIALS[1])  # then that firewall forgets
    world.clock[0] += 10
    run_timer()  # the canary notices: the table is invalidated, the states marked dirty
    # A snapshot that asks for no particular read (an event's) comes first: the stored
    # table, 10 s old, would say nothing is missing, and the repair would be lost.
    tags = {ip: frozenset(found) for ip, found in wanted(0).items()}
    event = Snapshot(CLUSTER, name(0), SERIALS[1], engine.version(), tags)
    world.panorama.reset_calls()
    assert engine.applier.apply(event).outcome == "applied"
    assert reads(world, "<option>count") == {SERIALS[1]: 1}
    world.drain()
    ours = {ip: tags for index in range(CLUSTERS) for ip, tags in wanted(index).items()}
    assert held(world, SERIALS[1]) == ours
