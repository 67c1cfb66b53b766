"""The applier against the Panorama simulator and Azurite state: ordering, aliases,
tombstones, and two appliers racing on one (cluster, target)."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_core.applier import Applier
from aksfw_core.messages import MalformedMessage, Snapshot
from aksfw_core.panorama.client import ApiKey, PanoramaClient
from aksfw_core.storage import Storage, StorageNames
from tests.conftest import API_KEY, settings_for

CLUSTER = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"


def snapshot(version, tags, tag_name="aks1", **flags):
    return Snapshot(
        CLUSTER,
        tag_name,
        "panorama",
        version,
        {ip: frozenset(t) for ip, t in tags.items()},
        **flags,
    )


@pytest.fixture
def app_storage(storage):
    names = StorageNames(storage.name("resync"), storage.name("updates"), storage.name("state"))
    return Storage(
        QueueServiceClient.from_connection_string(storage.connection_string),
        BlobServiceClient.from_connection_string(storage.connection_string),
        names,
    )


@pytest.fixture
def applier(app_storage, panorama):
    return Applier(
        app_storage, lambda target: PanoramaClient(settings_for(panorama), ApiKey(API_KEY))
    )


def test_first_apply_compares_with_panorama_and_later_ones_with_the_state(applier, panorama):
    panorama.seed("1.1.1.1", ["aks.aks1.stale", "corp.keep"])
    assert applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}})).outcome == "applied"
    assert panorama.registered() == {"1.1.1.1": {"corp.keep"}, "1.1.1.2": {"aks.aks1.web"}}
    panorama.reset_calls()
    applier.apply(snapshot(2, {"1.1.1.2": {"aks.aks1.api"}}))
    assert [c.type for c in panorama.calls] == ["user-id"]  # no read: the state is the base


def test_older_and_duplicate_snapshots_are_skipped(applier, panorama):
    applier.apply(snapshot(5, {"1.1.1.2": {"aks.aks1.new"}}))
    panorama.reset_calls()
    assert applier.apply(snapshot(5, {"1.1.1.2": {"aks.aks1.new"}})).outcome == "duplicate"
    assert applier.apply(snapshot(4, {"1.1.1.2": {"aks.aks1.old"}})).outcome == "skipped-older"
    assert panorama.calls == []
    assert panorama.registered() == {"1.1.1.2": {"aks.aks1.new"}}


def test_an_alias_change_removes_the_old_names_tags(applier, panorama):
    applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}))
    applier.apply(snapshot(2, {"1.1.1.2": {"aks.prod1.web"}}, tag_name="prod1", audit=True))
    assert panorama.registered() == {"1.1.1.2": {"aks.prod1.web"}}


def test_tombstone_removes_every_tag_and_forgets_the_state(applier, app_storage, panorama):
    panorama.seed("1.1.1.2", ["corp.keep"])
    applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}, "1.1.1.3": {"aks.aks1.api"}}))
    assert applier.apply(snapshot(2, {}, tombstone=True)).outcome == "tombstoned"
    assert panorama.registered() == {"1.1.1.2": {"corp.keep"}}
    assert app_storage.load_applied(CLUSTER, "panorama") == (None, None)


def test_a_newer_snapshot_applied_during_an_older_ones_write_wins(applier, panorama, monkeypatch):
    applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.v1"}}))
    original = PanoramaClient.apply
    raced = []

    def apply_then_race(self, plan):
        result = original(self, plan)
        if not raced:  # while the older snapshot is being written, a newer one completes
            raced.append(None)
            raced[0] = applier.apply(snapshot(3, {"1.1.1.2": {"aks.aks1.v3"}}))
        return result

    monkeypatch.setattr(PanoramaClient, "apply", apply_then_race)
    outcome = applier.apply(snapshot(2, {"1.1.1.2": {"aks.aks1.v2"}, "1.1.1.9": {"aks.aks1.x"}}))
    assert raced[0].outcome == "applied"
    assert outcome.outcome == "superseded"
    assert panorama.registered() == {"1.1.1.2": {"aks.aks1.v3"}}


@pytest.mark.parametrize(
    "tag", ["aks.aks1.x\r", "aks.aks1.a b", "aks.aks1." + "x" * 120, "corp.other"]
)
def test_a_snapshot_with_a_tag_the_cluster_could_not_own_is_refused(applier, panorama, tag):
    with pytest.raises(MalformedMessage):
        applier.apply(snapshot(1, {"1.1.1.2": {tag}}))
    assert panorama.write_calls() == []
