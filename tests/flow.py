"""The whole app on one machine for tests: Azurite, the Resource Manager, Kubernetes and
Panorama fakes, the app's functions as the host calls them, and its queue triggers."""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

import function_app
from aksfw_core import functions
from aksfw_core.storage import StorageNames
from tests.conftest import API_KEY
from tests.fakes.arm import FakeArm
from tests.fakes.kube_api import FakeKubeApi
from tests.functions_host import QueueTriggerHost
from tests.test_events import EVENTS

SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
NODE_GROUP = "MC_rg-prod_aks-prod1_westeurope"
HANDLERS = {
    fn.get_function_name(): fn.get_user_function() for fn in function_app.app.get_functions()
}


def wipe(connection_string: str) -> None:
    """Remove the app's queues and state so every test starts empty."""
    names = StorageNames()
    queues = QueueServiceClient.from_connection_string(connection_string)
    for queue in names.queues:
        with suppress(ResourceNotFoundError):
            queues.delete_queue(queue)
    blobs = BlobServiceClient.from_connection_string(connection_string)
    with suppress(ResourceNotFoundError):
        blobs.delete_container(names.state_container)


@dataclass
class World:
    connection_string: str
    arm: FakeArm
    kube: FakeKubeApi
    panorama: object
    resyncs: QueueTriggerHost
    updates: QueueTriggerHost

    def event(self, name: str | dict) -> None:
        document = json.loads((EVENTS / name).read_text()) if isinstance(name, str) else name
        HANDLERS["resource_event"](
            func.EventGridEvent(
                id=document["id"], data=document["data"], topic=document["topic"],
                subject=document["subject"], event_type=document["eventType"],
                event_time=None, data_version=document.get("dataVersion", ""),
            )
        )  # fmt: skip

    def drain(self, rounds: int = 10) -> None:
        """Run both queue triggers until neither has work."""
        for _ in range(rounds):
            handled = self.resyncs.run_until_idle(timeout_s=20) + self.updates.run_until_idle(
                timeout_s=20
            )
            if not handled:
                return
        raise AssertionError("queues did not settle")

    def registered(self) -> dict[str, set[str]]:
        return self.panorama.registered()

    def http(self, method: str, route: str, body: bytes = b"") -> func.HttpResponse:
        request = func.HttpRequest(method, f"http://localhost/api/{route}", body=body)
        return HANDLERS[route](request)


def configure(monkeypatch, world_parts, **config_overrides):
    arm, panorama, connection_string = world_parts
    config = {"subscriptions": [SUB], "discovery": {"tag": "aksfw"}, "panorama": {"host": panorama.url},
              "resync": {"followUpDelaySeconds": 0}}  # fmt: skip
    config.update(config_overrides)
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    monkeypatch.setenv("AKSFW_ARM_ENDPOINT", arm.url)
    monkeypatch.setenv("AKSFW_DEV_TOKEN", arm.token)
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    monkeypatch.setenv("AzureWebJobsStorage", connection_string)
    functions.application.cache_clear()


@pytest.fixture
def world(azurite, panorama, monkeypatch, tmp_path):
    wipe(azurite.connection_string)
    with FakeArm() as arm, FakeKubeApi(token="kube-token") as kube:
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(arm.ca_pem)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        arm.add_cluster(SUB, "rg-prod", "aks-prod1", tags={"aksfw": "on"}, node_resource_group=NODE_GROUP,
                        kubeconfig=kube.kubeconfig())  # fmt: skip
        configure(monkeypatch, (arm, panorama, azurite.connection_string))
        cs = azurite.connection_string
        with (
            QueueTriggerHost(cs, "cluster-resync", HANDLERS["cluster_resync"]) as resyncs,
            QueueTriggerHost(cs, "panorama-updates", HANDLERS["panorama_updates"]) as updates,
        ):
            yield World(cs, arm, kube, panorama, resyncs, updates)
    functions.application.cache_clear()
    wipe(azurite.connection_string)
