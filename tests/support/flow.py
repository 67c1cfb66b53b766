"""The whole app on one machine for tests: Azurite, the Resource Manager, Kubernetes and
Panorama fakes, the app's functions as the host calls them, and its queue triggers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient

from aksfw_core import functions
from aksfw_core.pipeline.storage import StorageNames
from aksfw_local.fakes.arm import FakeArm
from aksfw_local.fakes.kube_api import FakeKubeApi
from aksfw_local.functions_host import Handler, QueueTriggerHost
from aksfw_local.stack import LocalStack, handlers
from tests.support.panorama import API_KEY

SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
NODE_GROUP = "MC_rg-prod_aks-prod1_westeurope"


class _Handlers(Mapping[str, Any]):
    """The app's functions by name, indexed on first use (inside a test, with its settings),
    not when the tests are collected."""

    def __getitem__(self, name: str) -> Any:
        return handlers()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(handlers())

    def __len__(self) -> int:
        return len(handlers())


HANDLERS: Mapping[str, Any] = _Handlers()


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


# Where a delivery left its message (`Delivery.outcome`).
DONE = "done"  # the function returned: the message is deleted
RETRIED = "retried"  # the function raised: the message is visible again for another try
POISONED = "poisoned"  # on <queue>-poison: put there by the function at once, or by the
# host because the function raised on the message's maxDequeueCount-th delivery


@dataclass(frozen=True)
class Delivery:
    """One call of a queue function as the host made it, and what it cost outside."""

    queue: str
    message_id: str
    dequeue_count: int
    outcome: str
    """`DONE`, `RETRIED` or `POISONED`."""
    retries: int
    """Waits the retry policy took during the call: the failing call's attempts minus one."""
    panorama_requests: int
    """Requests the Panorama simulator received during the call."""
    panorama_writes: int
    """Of those, `type=user-id` requests."""
    kube_requests: int
    """Requests the Kubernetes fake received during the call."""
    error: str | None


def _poison_depth(connection_string: str, queue: str) -> int:
    with QueueClient.from_connection_string(connection_string, queue) as poison:
        try:
            return int(poison.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0


def watch_deliveries(world: LocalStack, waits: list[float]) -> list[Delivery]:
    """Record every delivery of both queue triggers of `world` from now on, in order.

    `waits` is the list the `retry_waits` fixture fills (one entry per retry)."""
    log: list[Delivery] = []
    for host in (world.resyncs, world.updates):
        host.handler = _recording(world, host, waits, log)
    return log


def _recording(
    world: LocalStack, host: QueueTriggerHost, waits: list[float], log: list[Delivery]
) -> Handler:
    handler = host.handler
    cs, poison = world.connection_string, host.poison_queue_name

    def handle(message: func.QueueMessage) -> object:
        panorama, kube = world.panorama, world.kube  # read now: a test may swap them
        before = (
            len(waits),
            len(panorama.calls),
            len(panorama.write_calls()),
            len(kube.requests),
            _poison_depth(cs, poison),
        )

        def record(outcome: str, error: str | None) -> None:
            log.append(
                Delivery(
                    queue=host.queue_name,
                    message_id=str(message.id),
                    dequeue_count=int(message.dequeue_count or 0),
                    outcome=outcome,
                    retries=len(waits) - before[0],
                    panorama_requests=len(panorama.calls) - before[1],
                    panorama_writes=len(panorama.write_calls()) - before[2],
                    kube_requests=len(kube.requests) - before[3],
                    error=error,
                )
            )

        try:
            result = handler(message)
        except Exception as error:
            last = int(message.dequeue_count or 0) >= host.max_dequeue_count
            record(POISONED if last else RETRIED, repr(error))
            raise
        record(POISONED if _poison_depth(cs, poison) > before[4] else DONE, None)
        return result

    return handle


@pytest.fixture
def deliveries(world: LocalStack, retry_waits: list[float]) -> list[Delivery]:
    """Every delivery of the world's queue triggers during the test (`watch_deliveries`)."""
    return watch_deliveries(world, retry_waits)


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
            yield LocalStack(cs, arm, kube, panorama, resyncs, updates)
    functions.application.cache_clear()
    wipe(azurite.connection_string)
