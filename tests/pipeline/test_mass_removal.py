"""A resync that would remove most of a cluster's tags is held back until a second,
independent list a little later agrees, through the whole app (Azurite, the simulator,
the fake Kubernetes API): the deliveries and the queues' contents, not only the end state.
"""

from __future__ import annotations

import base64
import json
import os
import time

from azure.functions.timer import TimerRequest

from aksfw_core import functions
from aksfw_core.limits import Limits
from aksfw_core.rules.messages import ResyncRequest, Snapshot, decode
from aksfw_local.fakes.kube_api import service
from tests.support.flow import DONE, HANDLERS, configure
from tests.support.queues import queue, waiting
from tests.support.resyncs import visible_resyncs

SIX = [
    service(f"web{i}", "shop", ips=[f"20.0.0.{i}"], labels={"app": f"web{i}"}) for i in range(6)
]  # 12 IP-tag pairs
DELAY_S = 1


def registered_ips(world) -> set[str]:
    return set(world.registered())


def with_confirm_delay(monkeypatch) -> None:
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"] = {"massRemovalConfirmDelaySeconds": DELAY_S}
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


def populated(world, monkeypatch) -> None:
    with_confirm_delay(monkeypatch)
    world.kube.services = list(SIX)
    resync(world)
    world.drain()
    assert len(world.registered()) == 6


def resync(world) -> None:
    assert world.http("POST", "resync", b"{}").status_code == 202


def queued_updates(world) -> list[Snapshot]:
    with queue(world, "panorama-updates") as client:
        peeked = client.peek_messages(max_messages=32)
    return [decode(base64.b64decode(message.content)) for message in peeked]  # type: ignore[misc]


def held_back(world) -> dict | None:
    (cluster,) = json.loads(world.http("GET", "status").get_body())["clusters"]
    return cluster.get("heldBack")


def run_confirmation(world) -> ResyncRequest:
    """Wait for the delayed confirmation and run it (alone)."""
    deadline = time.monotonic() + DELAY_S + 15
    while world.resyncs.run_once() == 0:
        assert time.monotonic() < deadline, "no confirmation arrived"
        time.sleep(0.2)
    request = decode(world.resyncs.results[-1].body)
    assert isinstance(request, ResyncRequest) and request.confirm
    return request


def hold_a_list(world, deliveries, services, pairs_to_remove, registered=6) -> None:
    """A resync listing `services` is held back: nothing is queued for Panorama."""
    world.kube.services = list(services)
    deliveries.clear()
    resync(world)
    assert world.resyncs.run_until_idle(timeout_s=20) == 1
    assert [(d.queue, d.outcome, d.panorama_writes) for d in deliveries] == [
        ("cluster-resync", DONE, 0)
    ]
    assert waiting(world, "panorama-updates") == 0  # nothing queued for Panorama
    assert waiting(world, "cluster-resync") == 1  # the confirmation, delayed:
    assert visible_resyncs(world) == []
    assert len(world.registered()) == registered
    assert held_back(world)["pairsToRemove"] == pairs_to_remove


def hold_an_empty_list(world, deliveries) -> None:
    hold_a_list(world, deliveries, [], 12)


def test_an_empty_list_is_held_and_a_confirming_list_removes_everything(
    world, monkeypatch, deliveries, caplog
):
    populated(world, monkeypatch)
    hold_an_empty_list(world, deliveries)
    assert '"event": "resync.held_back"' in caplog.text

    # A timer resync while held sees the same drop: it queues neither the removal nor a
    # second confirmation.
    deliveries.clear()
    HANDLERS["resync_timer"](TimerRequest())
    assert world.resyncs.run_once() == 1
    assert [d.outcome for d in deliveries] == [DONE]
    assert waiting(world, "panorama-updates") == 0
    assert waiting(world, "cluster-resync") == 1

    # The confirmation lists again, finds the same (nothing): the removal is real.
    deliveries.clear()
    run_confirmation(world)
    (tombless,) = queued_updates(world)
    assert isinstance(tombless, Snapshot) and not tombless.tombstone and tombless.tags == {}
    world.drain()
    assert world.registered() == {}
    assert [d.queue for d in deliveries] == ["cluster-resync", "panorama-updates"]
    assert held_back(world) is None
    assert '"event": "resync.mass_removal_confirmed"' in caplog.text


def test_a_confirming_list_that_finds_the_services_again_removes_nothing(
    world, monkeypatch, deliveries
):
    populated(world, monkeypatch)
    hold_an_empty_list(world, deliveries)
    world.kube.services = list(SIX)  # the cluster answers properly again
    writes = len(world.panorama.write_calls())
    run_confirmation(world)
    assert waiting(world, "panorama-updates") == 0
    assert waiting(world, "cluster-resync") == 0  # no further confirmation
    assert len(world.registered()) == 6 and len(world.panorama.write_calls()) == writes
    assert held_back(world) is None


def test_lists_that_keep_disagreeing_are_confirmed_a_bounded_number_of_times(
    world, monkeypatch, deliveries
):
    populated(world, monkeypatch)
    hold_an_empty_list(world, deliveries)
    for round_ in range(
        1, Limits().mass_removal_max_confirmations + 1
    ):  # a different mass removal each time
        world.kube.services = [SIX[round_ % 6]]
        run_confirmation(world)
        assert waiting(world, "panorama-updates") == 0
        expected = 1 if round_ < Limits().mass_removal_max_confirmations else 0
        assert waiting(world, "cluster-resync") == expected
    assert len(world.registered()) == 6
    assert held_back(world) is not None  # held until a resync after the window


def test_a_removal_below_the_threshold_is_applied_at_once(world, monkeypatch, deliveries):
    populated(world, monkeypatch)
    world.kube.services = SIX[:5]  # 2 of 12 pairs go
    deliveries.clear()
    resync(world)
    world.drain()
    assert [(d.queue, d.outcome) for d in deliveries] == [
        ("cluster-resync", DONE),
        ("panorama-updates", DONE),
    ]
    assert registered_ips(world) == {f"20.0.0.{i}" for i in range(5)}
    assert waiting(world, "cluster-resync") == 0 and held_back(world) is None


def test_a_cluster_deletion_is_not_held_back(world, monkeypatch, deliveries):
    populated(world, monkeypatch)
    deliveries.clear()
    started = time.monotonic()
    world.event("cluster-delete.eventgrid.json")
    (tombstone,) = queued_updates(world)
    assert isinstance(tombstone, Snapshot) and tombstone.tombstone
    world.drain()
    assert world.registered() == {}
    assert [d.queue for d in deliveries] == ["panorama-updates"]
    assert waiting(world, "cluster-resync") == 0
    assert time.monotonic() - started < DELAY_S + 10


OTHER_SIX = [
    service(f"api{i}", "other", ips=[f"20.9.0.{i}"], labels={"app": f"api{i}"}) for i in range(6)
]  # 12 other IP-tag pairs: what a credential for another cluster lists


def test_a_list_that_replaces_every_pair_with_as_many_others_is_held(
    world, monkeypatch, deliveries, caplog
):
    populated(world, monkeypatch)
    hold_a_list(world, deliveries, OTHER_SIX, 12)
    assert registered_ips(world) == {f"20.0.0.{i}" for i in range(6)}
    assert '"pairs_applied": 12' in caplog.text

    # The confirming list finds the same Services: the replacement is applied.
    run_confirmation(world)
    world.drain()
    assert registered_ips(world) == {f"20.9.0.{i}" for i in range(6)}
    assert held_back(world) is None
    assert '"event": "resync.mass_removal_confirmed"' in caplog.text


def test_an_emptied_small_cluster_is_held_though_its_node_subnet_stays_wanted(
    world, monkeypatch, deliveries
):
    configure(monkeypatch, (world.arm, world.panorama, world.connection_string), nodeSubnets=True)
    with_confirm_delay(monkeypatch)
    world.kube.services = [SIX[0]]
    resync(world)
    world.drain()
    node_subnet = {"10.224.0.0/16": {"aks.aks-prod1.node_subnet"}}
    assert world.registered() == {
        "20.0.0.0": {"aks.aks-prod1.web0", "aks.aks-prod1.svc.app.web0"},
        **node_subnet,
    }
    hold_a_list(world, deliveries, [], 2, registered=2)  # both Service pairs, not the subnet
    run_confirmation(world)
    world.drain()
    assert world.registered() == node_subnet
    assert held_back(world) is None
