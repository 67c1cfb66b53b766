"""Storm protection that costs nothing without a storm, through the whole app and Azurite:
an idle cluster's change is listed at once however many came before, a change during a
list causes exactly one more list right after it, past the burst that list waits for the
budget's next slot; and the timer's fan-out sends every cluster's resync exactly once."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter

from azure.functions.timer import TimerRequest

from aksfw_core.rules.messages import ResyncRequest, decode
from aksfw_local.fakes.kube_api import service
from tests.support.flow import HANDLERS, SUB
from tests.support.queues import RESYNCS, queue, waiting
from tests.support.resyncs import lists, visible_resyncs, with_limits

EVENT = "lb-write.eventgrid.json"


def web(label: str) -> dict:
    return service("web", "shop", ips=["20.0.0.1"], labels={"version": label})


def tags(label: str) -> dict[str, set[str]]:
    return {"20.0.0.1": {"aks.aks-prod1.web", f"aks.aks-prod1.svc.version.{label}"}}


def test_an_idle_clusters_changes_are_each_listed_at_once_past_the_burst(world):
    world.kube.requests.clear()
    for change in range(6):  # twice the burst: an idle cluster never waits for a token
        world.kube.services = [web(f"v{change}")]
        world.event(EVENT)
        assert [r.follow_up for r in visible_resyncs(world)] == [False]  # visible now
        world.drain()
        assert world.registered() == tags(f"v{change}")
    assert lists(world) == 6


def list_in_flight(world, events: int) -> None:
    """Start a list that takes a second in another thread, change the Services and send
    `events` events while it runs (after it read them), and wait for it to end."""
    world.kube.services = [web("before")]
    world.event(EVENT)
    world.kube.requests.clear()
    world.kube.delay_s = 1.0
    consumer = threading.Thread(target=world.resyncs.run_once)
    consumer.start()
    deadline = time.monotonic() + 10
    while lists(world) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lists(world) == 1  # the list is in flight: it has read the Services
    world.kube.services = [web("during")]
    for _ in range(events):
        world.event(EVENT)
    consumer.join(timeout=20)
    world.kube.delay_s = 0.0


def test_changes_during_a_list_cause_exactly_one_more_list_right_after_it(world):
    list_in_flight(world, events=5)
    # The one more list was queued as the first ended, visible at once (within the
    # budget), so the same pass of the queue trigger ran it: five changes, two lists.
    assert [r.ok for r in world.resyncs.results] == [True, True]
    assert lists(world) == 2
    assert waiting(world) == 0
    world.drain()
    assert lists(world) == 2
    assert world.registered() == tags("during")


def test_past_the_burst_the_list_after_one_in_flight_waits_for_the_next_slot(world, monkeypatch):
    with_limits(monkeypatch, resyncBurstLists=1, resyncRefillSeconds=4)
    list_in_flight(world, events=3)  # its list took the only token
    assert waiting(world) == 1  # one more list ...
    assert visible_resyncs(world) == []  # ... queued for the bucket's next token
    ended = time.monotonic()
    handled = world.resyncs.run_until_idle(timeout_s=15, settle_s=5)
    assert handled == 1 and time.monotonic() - ended >= 1  # about 3 s: 4 s less the list
    assert lists(world) == 2
    world.updates.run_until_idle(timeout_s=20)
    assert world.registered() == tags("during")


def test_the_timers_fan_out_sends_every_clusters_resync_exactly_once(world, monkeypatch):
    with_limits(monkeypatch, timerMaxConcurrentMessages=4)
    kubeconfig = world.kube.kubeconfig()
    for index in range(40):
        world.arm.add_cluster(
            SUB, "rg-fleet", f"aks-{index:02d}", tags={"aksfw": "on"}, kubeconfig=kubeconfig
        )
    HANDLERS["resync_timer"](TimerRequest())
    seen: Counter[str] = Counter()
    with queue(world, RESYNCS) as client:
        while batch := list(client.receive_messages(max_messages=32, visibility_timeout=60)):
            for message in batch:
                seen[decode_cluster(message.content)] += 1
    assert len(seen) == 41 and set(seen.values()) == {1}


def decode_cluster(content: str) -> str:
    request = decode(base64.b64decode(content))
    assert isinstance(request, ResyncRequest)
    return request.cluster_id
