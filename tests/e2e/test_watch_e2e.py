"""A label change that Azure never announces, end to end: the fake cluster's Service changes,
`aksfw watch` sees it on its Kubernetes watch and publishes a CloudEvent to the local Event
Grid topic with an Entra token, the topic's event reaches the Event Grid function through
the Python worker's converter, and the queues carry the change to the Panorama simulator."""

from __future__ import annotations

from typing import Any

from aksfw_core.azure.events import WATCHER_CHANGE
from aksfw_core.azure.publisher import ChangePublisher
from aksfw_local.fakes.eventgrid import FakeEventGridTopic
from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import deliver_event
from tests.support.eventgrid import LIMITS, Credential
from tests.support.flow import CLUSTER, DONE
from tests.support.queues import RESYNCS, UPDATES
from tests.support.watcher import caught_up, wait_until, watching

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"tier": "frontend"}}


def relabel(labels: dict[str, str]) -> Any:
    def change(obj: dict[str, Any]) -> None:
        obj["metadata"]["labels"] = labels

    return change


def test_a_label_change_reaches_panorama_through_the_watcher_and_event_grid(
    world, deliveries, tmp_path
):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
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
        world.kube.update_service("web", relabel({"tier": "backend"}), namespace="shop")
        caught_up(run, world.kube)  # the window passes on the watcher's clock: one publish
        caught_up(run, world.kube)  # a second window: nothing more to publish
        assert run.error is None and run.watcher.published == 1
        (event,) = topic.received()
        assert topic.errors == []

    assert (event["type"], event["source"], event["subject"]) == (
        WATCHER_CHANGE,
        CLUSTER,
        "services",
    )
    assert event["data"] == {"schemaVersion": 1}  # no Service data crosses
    deliver_event(event)  # as the topic's subscription delivers it
    world.drain()
    assert world.registered()["20.0.0.1"] == {"aks.aks-prod1.web", "aks.aks-prod1.svc.tier.backend"}
    assert [(d.queue, d.dequeue_count, d.outcome) for d in deliveries] == [
        (RESYNCS, 1, DONE),
        (UPDATES, 1, DONE),
    ], deliveries
    assert deliveries[1].panorama_writes == 1


def test_a_watcher_event_naming_a_cluster_nobody_monitors_changes_nothing(world, deliveries):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    before, deliveries[:] = world.registered(), []
    stranger = CLUSTER.replace("aks-prod1", "aks-elsewhere")
    deliver_event(
        {
            "specversion": "1.0",
            "id": "forged-1",
            "source": stranger,
            "type": WATCHER_CHANGE,
            "subject": "services",
            "time": "2026-11-27T08:00:00Z",
            "data": {"schemaVersion": 1},
        }
    )
    world.drain()
    assert deliveries == []
    assert world.registered() == before
