"""A clock that runs ahead or behind cannot stop anyone's work or fake a lag: claims and
pauses written by it are not believed past their window, and an event's own time is
believed only within Event Grid's retry period (`coordination.believable_until`,
`messages.plausible_origin`)."""

from __future__ import annotations

import json
import time

import pytest

from aksfw_core.limits import Limits
from aksfw_core.pipeline.coordination import Coordination, believable_until
from aksfw_core.rules.messages import plausible_origin
from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import EVENTS
from tests.support.resyncs import visible_resyncs

TEN_DAYS_S = 10 * 86_400.0
SKEW_S = Limits().max_version_skew_s


@pytest.mark.parametrize(
    ("until", "now", "longest", "believed"),
    [
        (1005.0, 1000.0, 5.0, 1005.0),
        (1000.0 + 5 + SKEW_S, 1000.0, 5.0 + SKEW_S, 1000.0 + 5 + SKEW_S),
        (1000.0 + 5 + SKEW_S + 1, 1000.0, 5.0 + SKEW_S, 0.0),
        (1000.0 + TEN_DAYS_S, 1000.0, 5.0 + SKEW_S, 0.0),
    ],
)
def test_a_claim_from_a_clock_far_ahead_is_not_believed(until, now, longest, believed):
    assert believable_until(until, now, longest) == believed


def test_an_instance_ten_days_ahead_cannot_take_a_window_from_the_others(account):
    now = time.time()
    ahead = Coordination(account, clock=lambda: now + TEN_DAYS_S)
    right = Coordination(account, clock=lambda: now)
    assert ahead.claim("resync/c1", 5.0)
    assert right.claim("resync/c1", 5.0)  # its 10-day window is not believed
    assert not Coordination(account, clock=lambda: now).claim("resync/c1", 5.0)  # ours is


def test_a_pause_from_a_clock_far_ahead_is_not_believed(account):
    now = time.time()
    Coordination(account, clock=lambda: now + TEN_DAYS_S).take_until("pause", now + TEN_DAYS_S)
    reader = Coordination(account, clock=lambda: now)
    assert reader.taken_until("pause", 3600.0) is None
    Coordination(account, clock=lambda: now).take_until("pause", now + 3600.0)
    assert Coordination(account, clock=lambda: now).taken_until("pause", 3600.0) == now + 3600.0


@pytest.mark.parametrize(
    ("when", "origin"),
    [
        (1000.0, 1000.0),  # now
        (1000.0 - 86_400, 1000.0 - 86_400),  # the oldest Event Grid may still deliver
        (1000.0 - 86_401, 1000.0),
        (1000.0 + SKEW_S, 1000.0 + SKEW_S),
        (1000.0 + SKEW_S + 1, 1000.0),
        (None, 1000.0),
    ],
)
def test_an_event_time_is_believed_only_within_the_retry_period(when, origin):
    assert plausible_origin(when, 1000.0, 86_400, SKEW_S) == origin


def test_a_watcher_event_dated_2001_is_timed_from_its_arrival(world):
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"])]
    document = json.loads((EVENTS / "cluster-write.cloudevent.json").read_text())
    document["time"] = "2001-09-09T01:46:40Z"
    world.event(document)
    (request,) = visible_resyncs(world)
    assert request.origin_time is not None and abs(request.origin_time - time.time()) < 60
