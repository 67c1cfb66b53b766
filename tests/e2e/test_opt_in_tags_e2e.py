"""Namespace and annotation tags end to end, through the local stack: the fake Kubernetes API
holds annotated Services, an event reaches the Event Grid function, the queues carry the
snapshot to the Panorama simulator. An annotation in a namespace the configuration did not
open changes nothing on Panorama; `aksfw.io/ignore` unregisters a Service's tags; an
annotation change, which Azure never announces, arrives through the watcher."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from aksfw_core.azure.publisher import ChangePublisher
from aksfw_local.fakes.eventgrid import FakeEventGridTopic
from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import deliver_event
from tests.support.eventgrid import LIMITS, Credential
from tests.support.flow import CLUSTER, DONE, configure
from tests.support.queues import RESYNCS, UPDATES
from tests.support.watcher import caught_up, wait_until, watching

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"tier": "frontend"}}
DB = {"name": "db", "namespace": "dev", "ips": ["20.0.0.2"]}


def sync(world) -> None:
    world.event("lb-write.eventgrid.json")
    world.drain()


def annotate(annotations: dict[str, str]) -> Any:
    def change(obj: dict[str, Any]) -> None:
        obj["metadata"]["annotations"] = annotations

    return change


@pytest.fixture
def options(world, monkeypatch):
    """Set the world's configuration (on the test's monkeypatch, undone after it)."""

    def set_options(**document: object) -> None:
        configure(monkeypatch, (world.arm, world.panorama, world.connection_string), **document)

    return set_options


@pytest.mark.parametrize(
    "document",
    [{"namespaceTags": True}, {"clusters": [{"id": CLUSTER, "namespaceTags": True}]}],
    ids=["top-level", "per-cluster"],
)
def test_namespace_tags_reach_panorama(world, options, document):
    options(**document)
    world.kube.services = [service(**WEB), service(**DB)]
    sync(world)
    assert world.registered() == {
        "20.0.0.1": {
            "aks.aks-prod1.web",
            "aks.aks-prod1.svc.tier.frontend",
            "aks.aks-prod1.ns.shop",
        },
        "20.0.0.2": {"aks.aks-prod1.db", "aks.aks-prod1.ns.dev"},
    }


@pytest.mark.parametrize(
    "document",
    [
        {"annotationTags": {"namespaces": ["shop"]}},
        {"annotationTags": {"namespaces": ["*"]}},
        {"clusters": [{"id": CLUSTER, "annotationTags": {"namespaces": ["shop"]}}]},
    ],
    ids=["top-level", "every-namespace", "per-cluster"],
)
def test_an_annotation_in_an_open_namespace_reaches_panorama(world, options, document):
    options(**document)
    world.kube.services = [service(**WEB, annotations={"aksfw.io/tags": "pci, tier1"})]
    sync(world)
    assert world.registered() == {
        "20.0.0.1": {
            "aks.aks-prod1.web",
            "aks.aks-prod1.svc.tier.frontend",
            "aks.aks-prod1.tag.pci",
            "aks.aks-prod1.tag.tier1",
        }
    }


@pytest.mark.parametrize(
    "document",
    [{}, {"annotationTags": {"namespaces": ["shop"]}}],
    ids=["annotation-tags-off", "only-shop-open"],
)
def test_an_annotation_in_a_namespace_not_opened_changes_nothing_on_panorama(
    world, options, deliveries, caplog, document
):
    options(**document)
    world.kube.services = [service(**WEB), service(**DB)]
    sync(world)
    before = world.registered()
    assert before["20.0.0.2"] == {"aks.aks-prod1.db"}
    writes_before = len(world.panorama.write_calls())
    deliveries.clear()

    world.kube.update_service("db", annotate({"aksfw.io/tags": "pci"}), namespace="dev")
    with caplog.at_level(logging.WARNING):
        sync(world)
    assert world.registered() == before
    assert len(world.panorama.write_calls()) == writes_before
    assert [d.queue for d in deliveries] == [RESYNCS]  # the same snapshot: nothing queued
    refused = [r.getMessage() for r in caplog.records if "annotation-not-allowed" in r.getMessage()]
    assert refused and "Service dev/db" in refused[0] and "namespace dev" in refused[0]


def test_ignore_unregisters_the_service_s_tags_and_leaves_the_others(world, options):
    options(namespaceTags=True)
    world.panorama.seed("20.0.0.1", ["corp.keep"])
    world.kube.services = [service(**WEB), service(**DB)]
    sync(world)
    assert "aks.aks-prod1.ns.shop" in world.registered()["20.0.0.1"]

    world.kube.update_service("web", annotate({"aksfw.io/ignore": "true"}), namespace="shop")
    sync(world)
    assert world.registered() == {
        "20.0.0.1": {"corp.keep"},
        "20.0.0.2": {"aks.aks-prod1.db", "aks.aks-prod1.ns.dev"},
    }

    world.kube.update_service("web", annotate({"aksfw.io/ignore": "false"}), namespace="shop")
    sync(world)
    assert world.registered()["20.0.0.1"] == {
        "corp.keep",
        "aks.aks-prod1.web",
        "aks.aks-prod1.svc.tier.frontend",
        "aks.aks-prod1.ns.shop",
    }


def test_an_annotation_change_reaches_panorama_through_the_watcher(
    world, options, deliveries, tmp_path
):
    options(annotationTags={"namespaces": ["shop"]})
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()["20.0.0.1"] == {
        "aks.aks-prod1.web",
        "aks.aks-prod1.svc.tier.frontend",
    }
    deliveries.clear()

    with (
        FakeEventGridTopic(data_keys={"schemaVersion"}) as topic,
        ChangePublisher(
            topic.endpoint, CLUSTER, Credential(topic.token), LIMITS, ca_file=str(topic.ca_file)
        ) as publisher,
        watching(world.kube, tmp_path, publish=publisher.publish) as run,
    ):
        wait_until(lambda: run.watcher.resource_version is not None)
        world.kube.update_service("web", annotate({"aksfw.io/tags": "pci"}), namespace="shop")
        caught_up(run, world.kube)  # the window passes on the watcher's clock: one publish
        caught_up(run, world.kube)
        assert run.error is None and run.watcher.published == 1
        (event,) = topic.received()
        assert topic.errors == []

    deliver_event(event)  # as the topic's subscription delivers it
    world.drain()
    assert world.registered()["20.0.0.1"] == {
        "aks.aks-prod1.web",
        "aks.aks-prod1.svc.tier.frontend",
        "aks.aks-prod1.tag.pci",
    }
    assert [(d.queue, d.outcome) for d in deliveries] == [(RESYNCS, DONE), (UPDATES, DONE)]
