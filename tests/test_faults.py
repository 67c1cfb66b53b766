"""The fault suite: for each fault, a change made while it lasts ends, after recovery, in
exactly the wanted tags, and nothing outside aksfw's tags changes.

Each case runs the whole app (Event Grid function, queue functions over Azurite, the
Resource Manager, Kubernetes and Panorama fakes): converge, break something, change the
cluster's Services, send the event, let the queues run out, repair, ask for a resync.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from aksfw_core import functions
from aksfw_core.errors import AksfwError
from aksfw_core.services import parse_service_items
from aksfw_core.storage import Storage
from aksfw_core.tags import compute_tags
from tests.fakes.kube_api import service
from tests.fakes.panorama import Fault
from tests.flow import World

FOREIGN = {
    "20.0.0.1": {"corp.keep"},
    "20.0.0.2": {"corp.dmz", "aks.other-cluster.api"},
    "20.9.9.9": {"manual"},
}
BEFORE = [
    service("web", "shop", ips=["20.0.0.1"], labels={"app": "web"}),
    service("api", "shop", ips=["20.0.0.2"], labels={"app": "api"}),
]
AFTER = [
    service("web", "shop", ips=["20.0.0.1"], labels={"app": "web2"}),
    service("new", "shop", ips=["20.0.0.3"], labels={"tier": "edge"}),
]
AFTER_LARGE = AFTER + [
    service(f"s{i}", "bulk", ips=[f"20.1.{i // 250}.{i % 250 + 1}"]) for i in range(520)
]


@dataclass(frozen=True)
class Case:
    """A fault: how to cause it, how to repair it, and the Services changed meanwhile."""

    inject: Callable[[World, pytest.MonkeyPatch, object], None]
    repair: Callable[[World], None] = lambda world: None
    after: tuple[dict, ...] = tuple(AFTER)
    heals_alone: bool = False
    """Retries alone carry the change through (no repair needed); else it waits for one."""


def panorama_faults(fault: Fault, count: int = 1000) -> Case:
    return Case(
        inject=lambda world, mp, azurite: world.panorama.inject(fault, count),
        repair=lambda world: world.panorama.clear_faults(),
    )


def fresh_app(world: World) -> None:
    functions.application.cache_clear()  # a new instance: inventory and credentials read again


def crash_once_before_saving_state(
    world: World, monkeypatch: pytest.MonkeyPatch, azurite: object
) -> None:
    original = Storage.save_applied
    crashed = []

    def save_applied(self, state, etag):
        if not crashed:
            crashed.append(state)
            raise RuntimeError("worker killed after registering, before saving state")
        return original(self, state, etag)

    monkeypatch.setattr(Storage, "save_applied", save_applied)


def slow_panorama(world: World, monkeypatch: pytest.MonkeyPatch, azurite: object) -> None:
    world.panorama.slow_seconds = 1.3
    world.panorama.inject(Fault.SLOW, 3)  # three timeouts (read timeout 1 s), then answers


def rotate_kube_token(world: World, monkeypatch: pytest.MonkeyPatch, azurite: object) -> None:
    world.kube.token = "rotated-elsewhere"


def restore_kube_token(world: World) -> None:
    world.kube.token = "kube-token"


CASES = {
    "panorama connection refused": Case(
        inject=lambda world, mp, azurite: world.panorama.stop(),
        repair=lambda world: world.panorama.start(),
    ),
    "panorama timeouts": Case(inject=slow_panorama, heals_alone=True),
    "panorama 5xx": panorama_faults(Fault.HTTP_500),
    "panorama 429": panorama_faults(Fault.HTTP_429),
    "panorama code 22": panorama_faults(Fault.SESSION_TIMEOUT),
    "panorama 403 mid-run": panorama_faults(Fault.FORBIDDEN, count=1),
    "panorama truncated response": panorama_faults(Fault.TRUNCATED),
    "panorama non-XML response": panorama_faults(Fault.NOT_XML),
    "panorama dropped connection": panorama_faults(Fault.DROP),
    "panorama per-entry failures": Case(
        inject=lambda world, mp, azurite: world.panorama.reject_ips.add("20.0.0.3"),
        repair=lambda world: world.panorama.reject_ips.clear(),
    ),
    "kubernetes 401": Case(inject=rotate_kube_token, repair=restore_kube_token),
    "kubernetes 500": Case(
        inject=lambda world, mp, azurite: world.kube.inject(500, count=10_000),
        repair=lambda world: world.kube.clear_faults(),
    ),
    "kubernetes list fails on its second page": Case(
        inject=lambda world, mp, azurite: world.kube.inject(500, count=10_000, on_page=1),
        repair=lambda world: world.kube.clear_faults(),
        after=tuple(AFTER_LARGE),
    ),
    "resource manager 429": Case(
        inject=lambda world, mp, azurite: (fresh_app(world), world.arm.inject(429, retry_after=1)),
        heals_alone=True,
    ),
    "resource manager 500": Case(
        inject=lambda world, mp, azurite: (fresh_app(world), world.arm.inject(500, count=2)),
        heals_alone=True,
    ),
    "azurite restarted mid-run": Case(
        inject=lambda world, mp, azurite: azurite.restart(), heals_alone=True
    ),
    "consumer killed between register and state save": Case(
        inject=crash_once_before_saving_state, heals_alone=True
    ),
}


def owned_tags(services: list[dict]) -> dict[str, set[str]]:
    wanted = compute_tags("aks-prod1", parse_service_items(services).services)
    return {ip: set(tags) for ip, tags in wanted.tags.items()}


def merged(*maps: dict[str, set[str]]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for mapping in maps:
        for ip, tags in mapping.items():
            result.setdefault(ip, set()).update(tags)
    return result


@pytest.fixture
def slow_reads(monkeypatch, world):
    """Panorama answers must come within 1 s, so the SLOW fault is a timeout."""
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["panorama"]["readTimeoutSeconds"] = 1
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_fault_then_recovery_ends_in_the_wanted_state(
    world, slow_reads, monkeypatch, azurite, case
):
    for ip, tags in FOREIGN.items():
        world.panorama.seed(ip, tags)
    world.kube.services = list(BEFORE)
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))

    case.inject(world, monkeypatch, azurite)
    world.kube.services = list(case.after)
    with contextlib.suppress(AksfwError):  # Event Grid would redeliver; the timer heals too
        world.event("lb-write.eventgrid.json")
    world.drain()
    wanted = merged(FOREIGN, owned_tags(list(case.after)))
    assert (world.registered() == wanted) is case.heals_alone
    assert all(world.registered().get(ip, set()) >= tags for ip, tags in FOREIGN.items())

    case.repair(world)
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert world.registered() == wanted
