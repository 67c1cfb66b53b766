"""Bursts across instances: events coalesce into a bounded number of Kubernetes lists and
one follow-up per window, applies for one (cluster, target) take turns, a snapshot with a
newer one queued is skipped, and no process sends Panorama more requests at once than its
limit allows."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aksfw_core import functions
from aksfw_core.config import PanoramaTargets
from aksfw_core.errors import Retryable
from aksfw_core.limits import Limits
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.applier import Applier
from aksfw_core.pipeline.coordination import Coordination
from aksfw_core.pipeline.state import EnqueuedMark
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.rules.messages import Snapshot
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import Fault
from tests.support.applier import CLUSTER, Monitored, monitored, snapshot
from tests.support.panorama import API_KEY, settings_for
from tests.support.queues import waiting
from tests.support.resyncs import lists, with_follow_up


def test_a_burst_of_events_costs_one_list_and_one_follow_up_across_instances(world, monkeypatch):
    with_follow_up(monkeypatch, 30)
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"], labels={"app": "web"})]
    world.kube.requests.clear()
    world.event("lb-write.eventgrid.json")  # a quiet cluster: a resync queued at once
    assert waiting(world) == 2  # and its delayed follow-up
    assert lists(world) == 0  # the event function only queues: Event Grid waits 30 s at most
    for index in range(40):
        if index == 20:  # another instance: nothing shared but storage
            functions.application.cache_clear()
        world.event("lb-write.eventgrid.json")
    assert waiting(world) == 2  # the burst only counts towards the follow-up
    world.drain()
    assert lists(world) == 1
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}}
    assert waiting(world) == 1  # one delayed follow-up for all 41 events


def test_without_a_follow_up_events_coalesce_into_the_list_queued_and_lose_nothing(world):
    # followUpDelaySeconds 0 (the world's setting): no follow-up reads the cluster after a
    # burst, and none is needed: the list queued for the first event begins after the
    # others arrived, so it sees what they were for.
    world.kube.requests.clear()
    for _ in range(3):
        world.event("lb-write.eventgrid.json")
    assert waiting(world) == 1
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"], labels={"app": "late"})]
    world.drain()
    assert lists(world) == 1
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.late"}}


def test_a_claim_is_won_once_per_window(account):
    now = [1000.0]
    first = Coordination(account, clock=lambda: now[0])
    second = Coordination(account, clock=lambda: now[0])  # another instance
    assert first.claim("follow-up/x", 60)
    assert not second.claim("follow-up/x", 60)
    assert not first.claim("follow-up/x", 60)
    assert second.claim("follow-up/y", 60)  # another name: its own window
    now[0] += 61
    assert second.claim("follow-up/x", 60)
    assert not first.claim("follow-up/x", 60)


def test_concurrent_claims_have_one_winner(account):
    coordination = Coordination(account)
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(lambda _: coordination.claim("resync/z", 30), range(16)))
    assert won.count(True) == 1


def test_an_apply_lock_is_held_by_one_applier_at_a_time(account):
    coordination = Coordination(account)
    inside, most, lock = [0], [0], threading.Lock()

    def hold(_: int) -> None:
        with coordination.apply_lock(CLUSTER, "panorama", wait_s=20):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(hold, range(8)))
    assert most[0] == 1


def test_an_apply_lock_held_too_long_sends_the_message_back(account):
    coordination = Coordination(account, sleep=lambda s: time.sleep(0.01))
    with (
        coordination.apply_lock(CLUSTER, "panorama", wait_s=5),
        pytest.raises(Retryable, match="stayed locked"),
        coordination.apply_lock(CLUSTER, "panorama", wait_s=0.2),
    ):
        pass  # pragma: no cover - never entered


def burst_applier(account, panorama):
    def client(target: str = "panorama") -> PanoramaClient:
        return PanoramaClient(settings_for(panorama), api_key(API_KEY))

    coordination = Coordination(account)
    return Applier(
        StateStore(account),
        client,
        clusters=Monitored(monitored(CLUSTER, "aks1")),
        targets=TargetResolver(PanoramaTargets(), client),
        lock=lambda cluster_id, target: coordination.apply_lock(cluster_id, target, 20),
    )


def test_concurrent_snapshots_for_one_target_take_turns_without_conflicts(account, panorama):
    applier = burst_applier(account, panorama)
    applier.apply(snapshot(1, {"1.1.1.1": {"aks.aks1.v0"}}))
    panorama.reset_calls()
    panorama.slow_seconds = 0.2
    panorama.inject(Fault.SLOW, 4)  # applies overlap unless they take turns
    versions = range(2, 8)
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(
            pool.map(
                lambda v: applier.apply(snapshot(v, {"1.1.1.1": {f"aks.aks1.v{v}"}})).outcome,
                versions,
            )
        )
    assert "superseded" not in outcomes  # no race had to be settled
    assert set(outcomes) <= {"applied", "skipped-older"}
    assert panorama.registered() == {"1.1.1.1": {"aks.aks1.v7"}}
    assert [c.type for c in panorama.calls].count("op") == 0  # no re-read of Panorama


def test_a_snapshot_with_a_newer_one_queued_is_skipped(account, panorama):
    store = StateStore(account)
    applier = burst_applier(account, panorama)
    store.save_enqueued(EnqueuedMark(CLUSTER, "panorama", 20, "f" * 64, time.time()))
    outcome = applier.apply(snapshot(10, {"1.1.1.1": {"aks.aks1.old"}}))
    assert outcome.outcome == "superseded-in-queue"
    assert panorama.calls == []
    newest = Snapshot(CLUSTER, "aks1", "panorama", 20, {"1.1.1.1": frozenset({"aks.aks1.new"})})
    assert applier.apply(newest).outcome == "applied"


def test_one_process_sends_panorama_at_most_its_limit_at_once(panorama):
    panorama.slow_seconds = 0.15
    panorama.inject(Fault.SLOW, 12)
    limits = Limits(panorama_max_concurrent_requests=2, panorama_read_timeout_s=5)

    def read(_: int) -> None:
        with PanoramaClient(settings_for(panorama, limits=limits), api_key(API_KEY)) as client:
            client.registered()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(read, range(6)))
    assert panorama.max_in_flight == 2
