"""Watcher events in the app: a flood for one cluster costs one resync and one follow-up,
a claimed cluster the inventory does not know changes nothing, and `status` shows when
each cluster's last watcher event arrived."""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from aksfw_core import functions
from aksfw_core.azure.events import WATCHER_CHANGE, WATCHER_SUBJECT
from aksfw_core.pipeline.storage import StorageNames
from aksfw_local.fakes.kube_api import service
from tests.support.flow import CLUSTER, SUB
from tests.support.queues import waiting
from tests.support.resyncs import lists, with_follow_up

OTHER = CLUSTER.replace("aks-prod1", "aks-forged")


def watcher_event(source: str, number: int = 0) -> dict[str, object]:
    """A watcher CloudEvent as the Functions worker hands it on (source → topic)."""
    return {"id": f"w{number}", "topic": source, "subject": WATCHER_SUBJECT,
            "eventType": WATCHER_CHANGE, "data": {"schemaVersion": 1}, "dataVersion": ""}  # fmt: skip


def status(world) -> dict[str, object]:
    return json.loads(world.http("GET", "status").get_body())


def watcher_notes(world) -> list[str]:
    container = ContainerClient.from_connection_string(
        world.connection_string, StorageNames().state_container
    )
    with container, suppress(ResourceNotFoundError):
        return [
            blob.name
            for blob in container.list_blobs(name_starts_with="applied/")
            if blob.name.endswith(".watcher")
        ]
    return []


def test_a_flood_of_watcher_events_costs_one_resync_and_one_follow_up(world, monkeypatch):
    with_follow_up(monkeypatch, 30)
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"], labels={"app": "web"})]
    world.kube.requests.clear()
    for number in range(200):
        if number == 100:  # another instance: nothing shared but storage
            functions.application.cache_clear()
        world.event(watcher_event(CLUSTER.upper() if number % 2 else CLUSTER, number))
    assert waiting(world) == 2  # one resync now, one delayed follow-up
    assert lists(world) == 0  # the event function only queues
    assert len(watcher_notes(world)) == 1  # one note for the window, not one per event
    world.drain()
    assert lists(world) == 1
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}}


def test_a_watcher_event_for_a_cluster_the_inventory_does_not_know_changes_nothing(world):
    arm_reads = len(world.arm.requests)
    world.event(watcher_event(OTHER))
    with suppress(ResourceNotFoundError):  # nothing was ever queued
        assert waiting(world) == 0
    assert watcher_notes(world) == []
    world.event(watcher_event(OTHER, 1))
    # At most the first inventory read: no early refresh for a cluster a watcher names.
    assert len(world.arm.requests) - arm_reads <= 2
    reads_after_first = len(world.arm.requests)
    for number in range(2, 20):
        world.event(watcher_event(OTHER, number))
    assert len(world.arm.requests) == reads_after_first


def test_status_shows_when_the_last_watcher_event_arrived(world):
    (before,) = status(world)["clusters"]
    assert before["lastWatcherEvent"] is None
    world.event(watcher_event(CLUSTER))
    (after,) = status(world)["clusters"]
    assert after["id"].casefold() == CLUSTER.casefold()
    seen = datetime.fromisoformat(after["lastWatcherEvent"])
    assert abs(seen.timestamp() - datetime.now().timestamp()) < 60
    functions.application.cache_clear()  # another instance reads it from storage too
    (elsewhere,) = status(world)["clusters"]
    assert elsewhere["lastWatcherEvent"] == after["lastWatcherEvent"]


def test_other_events_leave_the_watcher_time_alone(world):
    world.event("lb-write.eventgrid.json")
    (cluster,) = status(world)["clusters"]
    assert cluster["lastWatcherEvent"] is None
    assert SUB in cluster["id"]
