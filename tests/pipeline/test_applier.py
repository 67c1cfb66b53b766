"""The applier against the Panorama simulator and Azurite state: ordering, aliases,
tombstones, two appliers racing on one (cluster, target), and what a snapshot may touch
(cluster, tag name, target, version) whatever the message says."""

from __future__ import annotations

import time

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_core.config import PanoramaTargets
from aksfw_core.limits import Limits
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.applier import Applier
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount, StorageNames
from aksfw_core.rules.messages import PANORAMA_TARGET, MalformedMessage, fingerprint
from tests.support.applier import CLUSTER, GROUP, Monitored, monitored, snapshot
from tests.support.panorama import API_KEY, settings_for

OTHER = f"{GROUP}/providers/Microsoft.ContainerService/managedClusters/aks2"
EAST, WEST = "007000000001", "007000000002"  # dg-east and dg-west in the simulator


DEFAULT_TARGETS = PanoramaTargets()  # Panorama itself, as the configuration defaults to


def make_applier(storage, simulator, clusters, targets=DEFAULT_TARGETS, resolver_clock=None):
    def client(target=PANORAMA_TARGET):
        serial = None if target == PANORAMA_TARGET else target
        return PanoramaClient(settings_for(simulator, target=serial), api_key(API_KEY))

    options = {"clock": resolver_clock} if resolver_clock else {}
    return Applier(
        storage, client, clusters=clusters, targets=TargetResolver(targets, client, **options)
    )


def future_ns(seconds):
    return time.time_ns() + int(seconds * 1e9)


@pytest.fixture
def app_storage(storage):
    names = StorageNames(storage.name("resync"), storage.name("updates"), storage.name("state"))
    return StateStore(
        StorageAccount(
            QueueServiceClient.from_connection_string(storage.connection_string),
            BlobServiceClient.from_connection_string(storage.connection_string),
            names,
        )
    )


@pytest.fixture
def inventory():
    return Monitored(monitored(CLUSTER, "aks1"), monitored(OTHER, "aks2"))


@pytest.fixture
def applier(app_storage, panorama, inventory):
    return make_applier(app_storage, panorama, inventory)


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


def test_an_alias_change_removes_the_old_names_tags(applier, panorama, inventory):
    applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}))
    inventory.set(monitored(CLUSTER, "prod1"))
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


# ---------------------------------------------------------------- what a snapshot may touch


def test_a_snapshot_under_a_tag_name_the_inventory_does_not_give_is_refused(
    applier, app_storage, panorama
):
    panorama.seed("1.1.1.2", ["aks.aks2.web", "corp.keep"])
    before = panorama.registered()
    panorama.reset_calls()
    forged = snapshot(1, {"1.1.1.9": {"aks.aks2.evil"}}, tag_name="aks2")  # aks2 is OTHER's
    with pytest.raises(MalformedMessage, match=r"aks1.*'aks2'.*'panorama'"):
        applier.apply(forged)
    assert panorama.calls == []  # not even a read
    assert panorama.registered() == before
    assert app_storage.load_applied(CLUSTER, "panorama") == (None, None)


def test_a_snapshot_for_a_cluster_neither_monitored_nor_applied_is_refused(
    applier, app_storage, panorama, inventory
):
    inventory.set()
    with pytest.raises(MalformedMessage, match="not monitored"):
        applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}))
    assert panorama.calls == []
    assert app_storage.load_applied(CLUSTER, "panorama") == (None, None)


def test_a_cluster_no_longer_monitored_keeps_the_tag_name_of_its_applied_state(
    applier, panorama, inventory
):
    applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}))
    inventory.set()
    assert applier.apply(snapshot(2, {"1.1.1.2": {"aks.aks1.api"}})).outcome == "applied"
    panorama.reset_calls()
    with pytest.raises(MalformedMessage, match="applied state"):
        applier.apply(snapshot(3, {"1.1.1.2": {"aks.other.x"}}, tag_name="other"))
    assert panorama.calls == []
    assert panorama.registered() == {"1.1.1.2": {"aks.aks1.api"}}


def test_a_tombstone_without_applied_state_calls_no_panorama(applier, app_storage, panorama):
    panorama.seed("1.1.1.2", ["aks.aks1.web"])  # not aksfw's record: it is not removed
    panorama.reset_calls()
    assert applier.apply(snapshot(1, {}, tombstone=True)).outcome == "nothing-applied"
    assert panorama.calls == []
    assert panorama.registered() == {"1.1.1.2": {"aks.aks1.web"}}
    assert app_storage.load_applied(CLUSTER, "panorama") == (None, None)


def test_a_tombstone_under_another_clusters_tag_name_is_refused(applier, panorama):
    applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}))
    applier.apply(snapshot(1, {"1.1.1.3": {"aks.aks2.web"}}, tag_name="aks2", cluster=OTHER))
    panorama.reset_calls()
    with pytest.raises(MalformedMessage, match=r"tombstone refused.*'aks1'"):
        applier.apply(snapshot(2, {}, tag_name="aks2", tombstone=True))
    assert panorama.calls == []
    assert panorama.registered() == {"1.1.1.2": {"aks.aks1.web"}, "1.1.1.3": {"aks.aks2.web"}}


def test_a_tombstone_queued_before_an_alias_change_removes_the_old_names_tags(
    applier, app_storage, panorama, inventory
):
    applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}))
    inventory.set(monitored(CLUSTER, "prod1"), monitored(OTHER, "aks2"))
    assert applier.apply(snapshot(2, {}, tombstone=True)).outcome == "tombstoned"
    assert panorama.registered() == {}
    assert app_storage.load_applied(CLUSTER, "panorama") == (None, None)


def test_a_snapshot_for_an_unconfigured_serial_is_refused(app_storage, panorama, inventory):
    applier = make_applier(app_storage, panorama, inventory, PanoramaTargets(serials=(EAST,)))
    assert applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}, target=EAST)).outcome == (
        "applied"
    )
    panorama.reset_calls()
    with pytest.raises(MalformedMessage, match=rf"target '{WEST}'.*no such target"):
        applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}, target=WEST))
    assert panorama.calls == []  # no device group configured: Panorama is not even asked
    assert panorama.registered(target=EAST) == {"1.1.1.2": {"aks.aks1.web"}}
    assert panorama.registered(target=WEST) == {}


def test_panorama_is_a_target_only_when_configured(app_storage, panorama, inventory):
    applier = make_applier(app_storage, panorama, inventory, PanoramaTargets(panorama=False))
    with pytest.raises(MalformedMessage, match="no such target"):
        applier.apply(snapshot(1, {"1.1.1.2": {"aks.aks1.web"}}))
    assert panorama.calls == []


def test_a_device_group_firewall_is_a_target_only_while_connected(app_storage, panorama, inventory):
    now = [1000.0]
    targets = PanoramaTargets(panorama=False, device_groups=("dg-east",))
    applier = make_applier(app_storage, panorama, inventory, targets, lambda: now[0])
    panorama.disconnect(EAST)
    wanted = {"1.1.1.2": {"aks.aks1.web"}}
    for target in (WEST, EAST):  # WEST is in another device group; EAST is disconnected
        with pytest.raises(MalformedMessage, match="no such target"):
            applier.apply(snapshot(1, wanted, target=target))
    assert panorama.write_calls() == []
    devicegroup_reads = [c for c in panorama.calls if c.type == "op"]
    assert len(devicegroup_reads) == 1  # cached: a second unknown serial so soon asks nothing
    panorama.connect(EAST)
    now[0] += 6  # past the early-refresh interval: a newly connected firewall is found
    assert applier.apply(snapshot(1, wanted, target=EAST)).outcome == "applied"
    assert panorama.registered(target=EAST) == wanted


def test_a_snapshot_versioned_in_the_future_is_refused(applier, app_storage, panorama):
    with pytest.raises(MalformedMessage, match="ahead of this clock"):
        applier.apply(
            snapshot(future_ns(Limits().max_version_skew_s + 60), {"1.1.1.2": {"aks.aks1.x"}})
        )
    assert panorama.calls == []
    assert app_storage.load_applied(CLUSTER, "panorama") == (None, None)
    # A little skew between the resyncer's clock and this one is fine:
    ahead = snapshot(future_ns(Limits().max_version_skew_s / 2), {"1.1.1.2": {"aks.aks1.x"}})
    assert applier.apply(ahead).outcome == "applied"


@pytest.mark.parametrize("audit", [False, True])
def test_a_state_saved_with_a_future_version_is_repaired_by_the_next_snapshot(
    applier, app_storage, panorama, audit
):
    locked = {"1.1.1.2": frozenset({"aks.aks1.old"})}
    app_storage.save_applied(
        AppliedState(CLUSTER, "aks1", "panorama", future_ns(86_400), fingerprint(locked), locked),
        None,
    )
    panorama.seed("1.1.1.2", ["aks.aks1.old"])
    panorama.seed("1.1.1.5", ["aks.aks1.drift"])  # only Panorama knows: it is compared with
    version = time.time_ns()
    outcome = applier.apply(snapshot(version, {"1.1.1.3": {"aks.aks1.new"}}, audit=audit))
    assert outcome.outcome == "applied"
    assert panorama.registered() == {"1.1.1.3": {"aks.aks1.new"}}
    state, _ = app_storage.load_applied(CLUSTER, "panorama")
    assert state.version == version  # the future version is gone, not kept by max()
    assert applier.apply(snapshot(version - 1, {})).outcome == "skipped-older"
    assert applier.apply(snapshot(version + 1, {})).outcome == "applied"
    assert panorama.registered() == {}
