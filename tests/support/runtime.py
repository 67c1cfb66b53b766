"""What the tests through Microsoft's real Python runtime share: a Service and the tags it
gets, the event samples, and running the queue triggers until idle with every invocation
through the runtime checked."""

from __future__ import annotations

import json

from aksfw_local.stack import EVENTS

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}
WEB_TAGS = {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}


def settle(world, worker):
    """Run both queue triggers until idle; every invocation so far must have succeeded (a
    function whose result the runtime refuses fails there even if its work was done)."""
    world.drain()
    failed = [(name, call.error) for name, call in worker.invocations if not call.ok]
    assert failed == []


def sample(name):
    return json.loads((EVENTS / name).read_text())
