"""Through the whole app: a Service list stopped by its own bounds (its deadline, what it
may keep) never removes a tag. The resync fails before any tag is computed; the next
resync that lists within the bounds brings the change."""

from __future__ import annotations

import contextlib
import json
import os

import pytest

from aksfw_core import functions
from aksfw_core.errors import AksfwError
from tests.support.faults import AFTER, FOREIGN, RETRIED_THEN_POISONED, converge, merged, owned_tags
from tests.support.flow import DONE, POISONED
from tests.support.queues import RESYNCS


def set_limits(monkeypatch: pytest.MonkeyPatch, **limits: object) -> None:
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"] = {**config.get("limits", {}), **limits}
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


def change_while_bounded(world) -> None:
    world.kube.services = list(AFTER)
    with contextlib.suppress(AksfwError):  # Event Grid would redeliver; the timer heals too
        world.event("lb-write.eventgrid.json")
    world.drain()


def recover(world, deliveries) -> None:
    deliveries.clear()
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert world.registered() == merged(FOREIGN, owned_tags(AFTER))
    assert (deliveries[0].queue, deliveries[0].outcome) == (RESYNCS, DONE)


def test_a_list_past_its_deadline_keeps_the_tags_and_is_tried_again(world, deliveries, monkeypatch):
    converge(world)
    before = world.registered()
    deliveries.clear()
    set_limits(monkeypatch, kubeListDeadlineSeconds=0.5)
    world.kube.delay_s = 1.0  # every page: inside its own deadline, past the list's
    change_while_bounded(world)
    assert world.registered() == before  # nothing removed, nothing added
    assert [d.outcome for d in deliveries if d.queue == RESYNCS] == list(RETRIED_THEN_POISONED)
    for delivery in deliveries:
        assert delivery.panorama_writes == 0, delivery
        assert delivery.retries == 0 and delivery.kube_requests == 1, delivery  # time spent
        assert "limits.kubeListDeadlineSeconds" in (delivery.error or ""), delivery

    world.kube.delay_s = 0.0
    recover(world, deliveries)


def test_a_list_past_what_it_may_keep_keeps_the_tags_and_is_poisoned_at_once(
    world, deliveries, monkeypatch, caplog
):
    converge(world)
    before = world.registered()
    deliveries.clear()
    set_limits(monkeypatch, kubeMaxServices=1)
    change_while_bounded(world)
    assert world.registered() == before
    assert [(d.queue, d.outcome) for d in deliveries] == [(RESYNCS, POISONED)]
    poisoned = [r.getMessage() for r in caplog.records if "message.poisoned" in r.getMessage()]
    assert len(poisoned) == 1 and "(limits.kubeMaxServices)" in poisoned[0], poisoned
    assert deliveries[0].retries == 0 and deliveries[0].panorama_writes == 0

    set_limits(monkeypatch, kubeMaxServices=50_000)
    recover(world, deliveries)
