"""What resyncs cost and when they come, through the whole app: the Kubernetes lists they
made, the follow-up delay, and the resync requests waiting in `cluster-resync`."""

from __future__ import annotations

import base64
import json
import os

from aksfw_core import functions
from aksfw_core.rules.messages import ResyncRequest, decode
from tests.support.queues import RESYNCS, queue


def lists(world) -> int:
    return sum(1 for r in world.kube.requests if r.path == "/api/v1/services")


def with_follow_up(monkeypatch, seconds: int) -> None:
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["resync"] = {"followUpDelaySeconds": seconds}
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


def with_limits(monkeypatch, **limits: float) -> None:
    """The app's `limits` (document keys, e.g. `resyncBurstLists=1`) for the rest of the test."""
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"] = {**config.get("limits", {}), **limits}
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


def visible_resyncs(world) -> list[ResyncRequest]:
    """The resync requests visible in `cluster-resync`, left in place."""
    with queue(world, RESYNCS) as client:
        peeked = client.peek_messages(max_messages=32)
    requests = [decode(base64.b64decode(message.content)) for message in peeked]
    assert all(isinstance(request, ResyncRequest) for request in requests)
    return requests  # type: ignore[return-value]
