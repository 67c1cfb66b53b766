"""Paths that only show over time or with an unusual inventory, through the whole app: the
delayed follow-up resync, the hourly audit, the expiry of an enqueued mark, and two
monitored clusters that would tag under one name (a settings error, not a message error).
"""

from __future__ import annotations

import json
import logging
import os
import time

import pytest
from azure.functions.timer import TimerRequest

from aksfw_core import functions
from aksfw_core.errors import ConfigError
from aksfw_core.limits import Limits
from aksfw_core.panorama.client import PanoramaClient, PanoramaSettings, api_key
from aksfw_core.rules.messages import ResyncRequest, decode, encode
from aksfw_core.rules.plan import TagPlan
from aksfw_local.fakes.kube_api import service
from aksfw_local.functions_host import enqueue, poison_messages
from tests.support.flow import CLUSTER, HANDLERS, SUB
from tests.support.panorama import API_KEY
from tests.support.queues import queue, waiting
from tests.support.resyncs import lists, visible_resyncs, with_follow_up

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}
WEB_TAGS = {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}}
FOLLOW_UP_S = 3


def run_timer() -> None:
    HANDLERS["resync_timer"](TimerRequest())


# --------------------------------------------------------------- follow-up with a delay


def test_the_follow_up_waits_its_delay_then_applies_what_changed_once_per_window(
    world, monkeypatch
):
    with_follow_up(monkeypatch, FOLLOW_UP_S)
    # The windows run on the app's clock, which stands still here however slow the machine;
    # only the queue's delay for the follow-up is real time.
    now = [time.time()]
    functions.application().engine.clock.source = lambda: now[0]
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    sent = time.monotonic()
    assert waiting(world, "cluster-resync") == 2  # the resync, and the follow-up ...
    (immediate,) = visible_resyncs(world)  # ... invisible for its delay
    assert not immediate.follow_up
    assert world.resyncs.run_once() == 1
    assert world.resyncs.run_once() == 0
    world.updates.run_until_idle(timeout_s=20)  # the immediate resync's snapshot
    assert world.registered() == WEB_TAGS

    # More events in the window, on this instance and on another: no second follow-up. The
    # cluster is idle (its list ended), so the first is listed at once; the list queued for
    # it covers the second.
    world.kube.requests.clear()
    world.event("lb-write.eventgrid.json")
    functions.application.cache_clear()  # another instance, on the same clock
    functions.application().engine.clock.source = lambda: now[0]
    world.event("lb-write.eventgrid.json")
    assert waiting(world, "cluster-resync") == 2  # the follow-up, and one list
    assert [request.follow_up for request in visible_resyncs(world)] == [False]
    assert world.resyncs.run_once() == 1
    assert lists(world) == 1
    world.updates.run_until_idle(timeout_s=20)

    # Kubernetes writes the Service after the events: only the follow-up can see it.
    world.kube.services = [service(**{**WEB, "labels": {"app": "web2"}})]
    handled = world.resyncs.run_until_idle(timeout_s=FOLLOW_UP_S + 15, settle_s=FOLLOW_UP_S + 1)
    assert handled == 1
    assert time.monotonic() - sent >= FOLLOW_UP_S - 1  # the queue's unit is a second
    delivered = world.resyncs.results[-1]
    request = decode(delivered.body)
    assert isinstance(request, ResyncRequest) and request.follow_up and delivered.ok
    world.updates.run_until_idle(timeout_s=20)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web2"}}

    # The window has passed: the next event is listed at once and gets its own follow-up.
    now[0] += FOLLOW_UP_S
    world.kube.requests.clear()
    world.event("lb-write.eventgrid.json")
    assert waiting(world, "cluster-resync") == 2
    assert [request.follow_up for request in visible_resyncs(world)] == [False]


# --------------------------------------------------------------------- the hourly audit


def remove_by_hand(world, ip: str, tag: str) -> None:
    with PanoramaClient(PanoramaSettings(url=world.panorama.url), api_key(API_KEY)) as manual:
        manual.apply(TagPlan(unregister={ip: frozenset({tag})}))


def test_the_timer_audits_once_per_audit_interval_and_the_audit_repairs_drift(world):
    interval = Limits().audit_interval_s
    world.kube.services = [service(**WEB)]
    now = [time.time()]
    functions.application().engine.clock.source = lambda: now[0]

    run_timer()  # no audit yet: the first run audits
    assert [(r.cluster_id, r.audit) for r in visible_resyncs(world)] == [(CLUSTER, True)]
    world.drain()
    assert world.registered() == WEB_TAGS

    remove_by_hand(world, "20.0.0.1", "aks.aks-prod1.web")  # drift the state does not know
    now[0] += interval - 1
    run_timer()
    assert [(r.cluster_id, r.audit) for r in visible_resyncs(world)] == [(CLUSTER, False)]
    world.panorama.reset_calls()
    world.drain()
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.svc.app.web"}}  # not seen
    assert world.panorama.calls == []  # the state says all is there: nothing queued

    now[0] += 1  # an hour after the last audit
    run_timer()
    assert [(r.cluster_id, r.audit) for r in visible_resyncs(world)] == [(CLUSTER, True)]
    world.drain()
    assert world.registered() == WEB_TAGS

    run_timer()  # the audit is marked: the next run within the hour is ordinary again
    assert [r.audit for r in visible_resyncs(world)] == [False]


# ------------------------------------------------------------- enqueued-mark expiry


def test_a_lost_snapshot_is_queued_again_once_its_enqueued_mark_expires(world, monkeypatch):
    ttl = Limits().enqueued_mark_ttl_s
    world.kube.services = [service(**WEB)]
    now = [time.time()]
    functions.application().engine.clock.source = lambda: now[0]

    def resync() -> None:
        assert world.http("POST", "resync", b"{}").status_code == 202
        assert world.resyncs.run_until_idle(timeout_s=20) == 1

    resync()
    assert waiting(world, "panorama-updates") == 1
    with queue(world, "panorama-updates") as updates:
        updates.clear_messages()  # the snapshot is lost (say, deleted by hand)

    resync()  # the same snapshot was queued a moment ago: nothing is queued
    now[0] += ttl - 1
    resync()
    assert waiting(world, "panorama-updates") == 0
    assert world.registered() == {}

    now[0] += 2  # the mark has expired: the lost snapshot heals
    resync()
    assert waiting(world, "panorama-updates") == 1
    world.updates.run_until_idle(timeout_s=20)
    assert world.registered() == WEB_TAGS
    assert [r.ok for r in world.updates.results] == [True]


# ------------------------------------------------ two monitored clusters, one tag name

DR_CLUSTER = CLUSTER.replace("rg-prod", "rg-dr")


def test_two_clusters_with_one_tag_name_are_a_settings_error_that_poisons_nothing(
    world, monkeypatch, caplog
):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert world.registered() == WEB_TAGS
    writes = len(world.panorama.write_calls())

    # A second cluster called aks-prod1, in another resource group, gets the discovery tag.
    world.arm.add_cluster(SUB, "rg-dr", "aks-prod1", tags={"aksfw": "on"},
                          node_resource_group="MC_rg-dr_aks-prod1_northeurope",
                          kubeconfig=world.kube.kubeconfig())  # fmt: skip
    functions.application.cache_clear()  # a fresh instance: it reads the inventory now
    caplog.set_level(logging.INFO)

    with pytest.raises(ConfigError, match="give one an alias"):
        run_timer()  # the host logs the failure and runs it again on schedule
    with pytest.raises(ConfigError, match="give one an alias"):
        world.event("lb-write.eventgrid.json")  # Event Grid delivers it again later
    assert caplog.text.count('"event": "config.invalid"') >= 2
    assert "alias" in json.loads(world.http("GET", "status").get_body())["inventoryError"]
    assert world.http("POST", "resync", b"{}").status_code == 503
    assert waiting(world, "panorama-updates") == 0  # nothing tombstoned, nothing queued

    # A resync queued before (or by the timer): retried by the host, not poisoned.
    body = encode(ResyncRequest(CLUSTER, "timer"))
    enqueue(world.connection_string, "cluster-resync", body)
    assert world.resyncs.run_once() == 1
    failed = world.resyncs.results[-1]
    assert not failed.ok and "ConfigError" in (failed.error or "")
    assert not failed.poisoned
    assert poison_messages(world.connection_string, "cluster-resync") == []
    assert waiting(world, "cluster-resync") == 1
    assert '"event": "message.poisoned"' not in caplog.text
    assert world.registered() == WEB_TAGS
    assert len(world.panorama.write_calls()) == writes

    # The settings are fixed (an alias): the same message now succeeds.
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["clusters"] = [{"id": DR_CLUSTER, "alias": "aks-dr1"}]
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()
    world.drain()
    assert world.resyncs.results[-1].ok
    assert poison_messages(world.connection_string, "cluster-resync") == []
    run_timer()
    world.drain()
    assert world.registered() == {
        "20.0.0.1": WEB_TAGS["20.0.0.1"] | {"aks.aks-dr1.web", "aks.aks-dr1.svc.app.web"}
    }
