"""The fault suites' world (tests/e2e/test_faults.py and the suites built on it): a cluster
converged with foreign tags beside aksfw's, the Services changed while a fault lasts, and
the tags either should leave in Panorama."""

from __future__ import annotations

from aksfw_core.pipeline.state import AppliedState
from aksfw_core.rules.services import parse_service_items
from aksfw_core.rules.tags import compute_tags
from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import LocalStack
from tests.support.flow import POISONED, RETRIED

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

RETRIED_THEN_POISONED = (RETRIED,) * 4 + (POISONED,)
"""Returned to the queue on each failure, poisoned by the host on delivery 5
(host.json maxDequeueCount)."""


def owned_tags(services: list[dict]) -> dict[str, set[str]]:
    wanted = compute_tags("aks-prod1", parse_service_items(services).services)
    return {ip: set(tags) for ip, tags in wanted.tags.items()}


def merged(*maps: dict[str, set[str]]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for mapping in maps:
        for ip, tags in mapping.items():
            result.setdefault(ip, set()).update(tags)
    return result


def converge(world: LocalStack) -> None:
    for ip, tags in FOREIGN.items():
        world.panorama.seed(ip, tags)
    world.kube.services = list(BEFORE)
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))


def tags_of(state: AppliedState) -> dict[str, set[str]]:
    return {ip: set(tags) for ip, tags in state.tags.items()}
