"""State work grows with change, not with size: the timer, the status endpoint, a cluster
tombstone and an unchanged resync read summaries from listings and download no applied
state; a large snapshot for many firewalls is stored once and shared by their messages.

The app's blob requests are counted by the benchmark's counting proxy in front of
Azurite's blob service (the app is pointed at it through `AzureWebJobsStorage`)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_core import functions
from aksfw_core.app.tombstones import Tombstones
from aksfw_core.limits import Limits
from aksfw_core.pipeline.state import AppliedState, applied_blob
from aksfw_core.pipeline.state_codec import applied_body
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.messages import fingerprint
from aksfw_local.azurite import connection_string
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import PanoramaSimulator
from bench.storage_proxy import CountingProxy
from tests.support.flow import CLUSTER, HANDLERS, SUB, configure
from tests.support.panorama import API_KEY

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}
TARGETS = ("panorama", "007000000001", "007000000002")


@pytest.fixture
def blob_requests(world, azurite, monkeypatch) -> Iterator[Counter[str]]:
    """The app's blob requests by kind (`download`, `list`, `properties`, `write`, ...)."""
    with CountingProxy(azurite.blob_port) as proxy:
        proxied = connection_string(proxy.port, azurite.queue_port, azurite.table_port)
        monkeypatch.setenv("AzureWebJobsStorage", proxied)
        functions.application.cache_clear()
        yield proxy.counts


def store(world) -> StateStore:
    """The state store, reached directly (not counted)."""
    return StateStore(StorageAccount.from_environ({"AzureWebJobsStorage": world.connection_string}))


def cluster_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-old/providers/Microsoft.ContainerService/managedClusters/{name}"


def seed(world, clusters: int, targets=TARGETS, ips: int = 50) -> list[str]:
    """Applied states of `clusters` clusters that are no longer monitored, on `targets`."""
    states = store(world)
    ids = []
    for c in range(clusters):
        name = f"aks-old{c}"
        tags = {f"10.{c}.{i}.1": frozenset({f"aks.{name}.svc{i}"}) for i in range(ips)}
        for target in targets:
            error = "Retryable: Panorama unreachable" if target == TARGETS[1] else None
            states.save_applied(
                AppliedState(cluster_id(name), name, target, 1_000 + c, fingerprint(tags), tags,
                             applied_at=time.time(), dirty=bool(error), last_error=error,
                             last_error_at=time.time() if error else None),
                None,
            )  # fmt: skip
        ids.append(cluster_id(name))
    return ids


def queued_updates(world) -> list[dict]:
    queue = QueueServiceClient.from_connection_string(world.connection_string).get_queue_client(
        "panorama-updates"
    )
    return [json.loads(base64.b64decode(m.content)) for m in queue.peek_messages(max_messages=32)]


def status(world) -> dict:
    return json.loads(world.http("GET", "status").get_body())


def test_status_timer_and_a_tombstone_download_no_applied_state(world, blob_requests):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    gone = seed(world, clusters=20)  # 60 (cluster, target) states of unmonitored clusters
    blob_requests.clear()

    shown = status(world)
    assert blob_requests["download"] == 0
    assert blob_requests["list"] == 2  # applied summaries, and the targets' canaries
    clusters = {c["id"]: c for c in shown["clusters"]}
    assert len(clusters) == 21
    (prod,) = clusters[CLUSTER]["targets"]
    assert (prod["target"], prod["ips"], prod["tags"], prod["lastError"]) == (
        "panorama",
        1,
        2,
        None,
    )
    old = clusters[gone[3]]
    assert not old["monitored"]
    assert {t["target"]: (t["ips"], t["tags"], t["lastError"]) for t in old["targets"]} == {
        "panorama": (50, 50, None),
        "007000000001": (50, 50, "Retryable: Panorama unreachable"),
        "007000000002": (50, 50, None),
    }

    blob_requests.clear()
    HANDLERS["resync_timer"](TimerRequest())
    assert blob_requests["download"] == 0
    assert blob_requests["list"] == 3  # applied summaries, payloads to clean, canaries
    assert all(t["missingSince"] for t in status(world)["clusters"][1]["targets"])

    blob_requests.clear()
    Tombstones(functions.application().engine).cluster(gone[0], "cluster deleted")
    assert blob_requests["download"] == 0
    assert blob_requests["list"] == 1
    tombstones = [m for m in queued_updates(world) if m.get("tombstone")]
    assert sorted(m["target"] for m in tombstones) == sorted(TARGETS)
    assert {m["cluster"] for m in tombstones} == {gone[0]}


def test_the_grace_period_lives_in_the_summary_and_ends_in_tombstones(world, blob_requests):
    (gone,) = seed(world, clusters=1, targets=("panorama",))
    body_before = store(world).load_applied(gone, "panorama")
    app = functions.application()
    now = [time.time()]
    app.engine.clock.source = lambda: now[0]
    HANDLERS["resync_timer"](TimerRequest())
    state, _ = store(world).load_applied(gone, "panorama")
    assert state.missing_since == now[0]  # noted in the metadata only:
    assert state.tags == body_before[0].tags and blob_requests["download"] == 0
    now[0] += Limits().unmonitored_grace_s - 1
    HANDLERS["resync_timer"](TimerRequest())
    assert queued_updates(world) == []
    now[0] += 2
    HANDLERS["resync_timer"](TimerRequest())
    (tombstone,) = queued_updates(world)
    assert (tombstone["cluster"], tombstone["tombstone"]) == (gone, True)
    world.drain()
    assert store(world).load_applied(gone, "panorama") == (None, None)
    assert [c["id"] for c in status(world)["clusters"]] == [CLUSTER]


def test_an_unchanged_resync_reads_one_listing_and_no_state(world, blob_requests):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    blob_requests.clear()
    world.event("lb-write.eventgrid.json")
    world.resyncs.run_until_idle(timeout_s=20)
    assert blob_requests["download"] == 0
    assert blob_requests["list"] == 1  # the cluster's summaries: the target has the tags
    assert queued_updates(world) == []


def test_a_state_saved_before_summaries_is_read_once_then_listed(world, blob_requests):
    tags = {"10.9.9.9": frozenset({"aks.aks-old.web"})}
    old = AppliedState(cluster_id("aks-old"), "aks-old", "panorama", 5, fingerprint(tags), tags)
    container = BlobServiceClient.from_connection_string(
        world.connection_string
    ).get_container_client("aksfw-state")
    store(world).summaries()  # creates the container
    # As before summaries existed: the body alone, no metadata.
    container.upload_blob(applied_blob(old.cluster_id, "panorama"), applied_body(old))
    blob_requests.clear()
    shown = status(world)["clusters"]
    (listed,) = [c for c in shown if c["id"] == old.cluster_id]
    assert [(t["target"], t["ips"], t["tags"]) for t in listed["targets"]] == [("panorama", 1, 1)]
    assert blob_requests["download"] == 1
    blob_requests.clear()
    assert status(world)["clusters"] == shown
    assert blob_requests["download"] == 0


def test_a_large_snapshot_for_thirty_firewalls_is_stored_once_and_applied_on_each(
    world, monkeypatch, azurite
):
    serials = [f"0070000001{i:02d}" for i in range(30)]
    with PanoramaSimulator(api_key=API_KEY, firewalls=dict.fromkeys(serials, "dg-aks")) as sim:
        configure(monkeypatch, (world.arm, sim, azurite.connection_string),
                  panorama={"host": sim.url, "targets": {"deviceGroups": ["dg-aks"]}})  # fmt: skip
        services = [
            service(f"s{secrets.token_hex(28)}", "shop", ips=[f"10.1.{i >> 8}.{i & 255}"])
            for i in range(1500)
        ]
        world.kube.services = services
        world.event("lb-write.eventgrid.json")
        world.resyncs.run_until_idle(timeout_s=20)  # the resync queues the 30 snapshots
        messages = queued_updates(world)
        blobs = BlobServiceClient.from_connection_string(
            world.connection_string
        ).get_container_client("aksfw-state")
        (payload,) = [b.name for b in blobs.list_blobs(name_starts_with="payloads/")]
        assert {(m["v"], m["kind"], m["blob"]) for m in messages} == {(2, "blob", payload)}
        assert sorted(m["target"] for m in messages) == serials
        world.drain()
        for serial in serials:
            assert len(sim.registered(target=serial)) == 1500, serial
        (cluster,) = status(world)["clusters"]
        assert sorted(t["target"] for t in cluster["targets"]) == serials
        assert {(t["ips"], t["lastError"]) for t in cluster["targets"]} == {(1500, None)}
        assert [b.name for b in blobs.list_blobs(name_starts_with="payloads/")] == [payload]
