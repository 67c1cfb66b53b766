"""A configured selector that selects no Service is logged once per resync, through the
whole app."""

from __future__ import annotations

import json
import logging
import os

from aksfw_core import functions
from aksfw_local.fakes.kube_api import service
from tests.support.flow import CLUSTER


def test_an_unmatched_selector_is_logged_once_per_resync_with_cluster_and_name(
    world, monkeypatch, caplog
):
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["clusters"] = [
        {"id": CLUSTER, "selectors": [{"name": "pay", "match": "app=web", "namespace": "pay"}]}
    ]
    config["panorama"]["targets"] = {"panorama": True, "serials": ["007000000001"]}
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"], labels={"app": "web"})]
    caplog.set_level(logging.INFO)
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    events = [
        json.loads(record.getMessage())
        for record in caplog.records
        if '"event": "selector.unmatched"' in record.getMessage()
    ]
    assert len(events) == 1  # once for the resync, not once per target
    (event,) = events
    assert (event["cluster"], event["selector"]) == (CLUSTER, "pay")
    assert event["detail"].endswith("there is no LoadBalancer Service in namespace pay")


def test_a_label_configured_as_a_selector_is_kept_and_logged_with_the_fix(
    world, monkeypatch, caplog
):
    # name `tier`, match `frontend`: valid (a label `frontend` exists), so never refused;
    # the Service carrying the label `tier=frontend` is the evidence of the mistake.
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["clusters"] = [{"id": CLUSTER, "selectors": [{"name": "tier", "match": "frontend"}]}]
    config["panorama"]["targets"] = {"panorama": True, "serials": ["007000000001"]}
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"], labels={"tier": "frontend"})]
    caplog.set_level(logging.INFO)
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    (event,) = [
        json.loads(record.getMessage())
        for record in caplog.records
        if '"event": "selector.unmatched"' in record.getMessage()
    ]
    assert (event["cluster"], event["selector"]) == (CLUSTER, "tier")
    assert event["detail"].endswith(
        "1 of them carries the label tier=frontend: did you mean the expression "
        "tier=frontend (--selector frontend=tier=frontend)?"
    )
