"""Event storms cost Resource Manager nothing beyond the inventory's own reads, whatever
their kind: writes, AKS events and deletes of clusters aksfw never monitored alike."""

from __future__ import annotations

import json

from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import EVENTS
from tests.support.flow import SUB


def deleted(name: str) -> dict:
    document = json.loads((EVENTS / "cluster-delete.eventgrid.json").read_text())
    subject = document["subject"].replace("aks-prod1", name)
    document.update(subject=subject, id=f"delete-{name}")
    document["data"]["resourceUri"] = subject
    return document


def test_deletes_of_twenty_clusters_never_monitored_read_resource_manager_not_once(world):
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"])]
    world.event("lb-write.eventgrid.json")  # the inventory is read once here
    reads = len(world.arm.requests)
    for n in range(20):
        world.event(deleted(f"someone-elses-{n}"))
    assert len(world.arm.requests) == reads


def test_a_monitored_cluster_deleted_leaves_the_inventory_at_once_without_a_read(world):
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"])]
    world.event("lb-write.eventgrid.json")
    world.drain()
    world.arm.remove_cluster(SUB, "rg-prod", "aks-prod1")
    reads = len(world.arm.requests)
    world.event("cluster-delete.eventgrid.json")
    assert len(world.arm.requests) == reads
    world.drain()
    assert world.registered() == {}
    status = json.loads(world.http("GET", "status").get_body())
    assert status["clusters"] == []
