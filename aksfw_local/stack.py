"""The whole aksfw stack on one machine, outside pytest: Azurite, a fake Resource Manager
holding one AKS cluster, a fake Kubernetes API server for it, the Panorama simulator, and
the app's settings in the environment. Used by `make demo` and the benchmarks.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_core import functions
from aksfw_core.panorama.canary import is_canary_tag
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount, StorageNames
from aksfw_core.rules.messages import PANORAMA_TARGET
from aksfw_local.azurite import Azurite
from aksfw_local.fakes.arm import FakeArm
from aksfw_local.fakes.kube_api import FakeKubeApi
from aksfw_local.fakes.panorama import PanoramaSimulator
from aksfw_local.functions_host import QueueTriggerHost

SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
CLUSTER_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod/providers/"
    "Microsoft.ContainerService/managedClusters/aks-prod1"
)
EVENTS = Path(__file__).resolve().parent / "events"
"""Sample Event Grid events shaped like Azure's documentation (README there)."""
API_KEY = "local-stack-api-key"
CLUSTER_TOKEN = "local-stack-cluster-token"


@functools.lru_cache(maxsize=1)
def app_functions() -> tuple[Any, ...]:
    """The app's functions with their triggers, as `function_app.py` declares them
    (indexed once: the library refuses to index an app twice)."""
    return tuple(importlib.import_module("function_app").app.get_functions())


@functools.lru_cache(maxsize=1)
def handlers() -> dict[str, Any]:
    """The app's functions by name, as the Functions host calls them."""
    return {fn.get_function_name(): fn.get_user_function() for fn in app_functions()}


def deliver_event(document: dict[str, Any]) -> None:
    """Hand one event (either schema) to the Event Grid function as the Python worker does:
    its JSON through the worker's own converter, which makes an `EventGridEvent` of the Event
    Grid schema and a `CloudEvent` of the CloudEvents one."""
    event = EventGridEventInConverter.decode(
        Datum(json.dumps(document), "json"), trigger_metadata={}
    )
    handlers()["resource_event"](event)


@dataclass
class LocalStack:
    """The app on one machine: its storage, the fakes, and both queue triggers. The tests'
    `world` fixture, `make demo` and the benchmarks all drive it."""

    connection_string: str
    arm: FakeArm
    kube: FakeKubeApi
    panorama: PanoramaSimulator
    resyncs: QueueTriggerHost
    updates: QueueTriggerHost
    azurite: Azurite | None = None
    """The emulator `local_stack` started (the tests' fixture shares one: None)."""

    def event(self, name: str | dict[str, Any]) -> dict[str, Any]:
        """Deliver an event, or a sample event by file name (`EVENTS`), to the Event Grid
        function; returns the event."""
        document: dict[str, Any] = (
            json.loads((EVENTS / name).read_text()) if isinstance(name, str) else name
        )
        deliver_event(document)
        return document

    def drain(self, rounds: int = 10) -> None:
        """Run both queue triggers until neither has work."""
        for _ in range(rounds):
            handled = self.resyncs.run_until_idle(timeout_s=20)
            handled += self.updates.run_until_idle(timeout_s=20)
            if not handled:
                return
        raise AssertionError("queues did not settle")

    def registered(self) -> dict[str, set[str]]:
        """What Panorama itself holds for the clusters: every registration but aksfw's
        canary (`canary()`)."""
        held = {
            ip: {t for t in tags if not is_canary_tag(t)}
            for ip, tags in self.panorama.registered().items()
        }
        return {ip: tags for ip, tags in held.items() if tags}

    def canary(self, target: str | None = None) -> dict[str, set[str]]:
        """The canaries a target (Panorama itself: None) holds, as `{ip: {tag}}`."""
        found = {
            ip: {t for t in tags if is_canary_tag(t)}
            for ip, tags in self.panorama.registered(target).items()
        }
        return {ip: tags for ip, tags in found.items() if tags}

    def http(self, method: str, route: str, body: bytes = b"") -> func.HttpResponse:
        """Call an HTTP function (`resync`, `status`)."""
        request = func.HttpRequest(method, f"http://localhost/api/{route}", body=body)
        response: func.HttpResponse = handlers()[route](request)
        return response

    def applied(
        self, cluster_id: str = CLUSTER_ID, target: str = PANORAMA_TARGET
    ) -> AppliedState | None:
        """The applied state of a (cluster, target), as the app's storage holds it."""
        with (
            QueueServiceClient.from_connection_string(self.connection_string) as queues,
            BlobServiceClient.from_connection_string(self.connection_string) as blobs,
        ):
            state, _ = StateStore(StorageAccount(queues, blobs)).load_applied(cluster_id, target)
        return state


@contextmanager
def local_stack(config: dict[str, Any] | None = None) -> Iterator[LocalStack]:
    """Start everything; the environment and all servers are restored on exit."""
    saved = dict(os.environ)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        azurite = stack.enter_context(Azurite())
        arm = stack.enter_context(FakeArm())
        kube = stack.enter_context(FakeKubeApi(token=CLUSTER_TOKEN))
        panorama = stack.enter_context(PanoramaSimulator(api_key=API_KEY))
        bundle = scratch / "ca.pem"
        bundle.write_bytes(arm.ca_pem or b"")
        settings = {
            "subscriptions": [SUBSCRIPTION],
            "discovery": {"tag": "aksfw=enabled"},
            "panorama": {"host": panorama.url},
            "resync": {"followUpDelaySeconds": 0},
        }
        settings.update(config or {})
        os.environ.update(
            {
                "AKSFW_CONFIG": json.dumps(settings),
                "AKSFW_ARM_ENDPOINT": arm.url,
                "AKSFW_DEV_TOKEN": arm.token,
                "PANORAMA_API_KEY": API_KEY,
                "AzureWebJobsStorage": azurite.connection_string,
                "REQUESTS_CA_BUNDLE": str(bundle),
            }
        )
        functions.application.cache_clear()
        arm.add_cluster(
            SUBSCRIPTION,
            "rg-prod",
            "aks-prod1",
            tags={"aksfw": "enabled"},
            kubeconfig=kube.kubeconfig(context="aks-prod1"),
        )
        called = handlers()
        cs = azurite.connection_string
        names = StorageNames()
        resyncs = stack.enter_context(
            QueueTriggerHost(cs, names.resync_queue, called["cluster_resync"])
        )
        updates = stack.enter_context(
            QueueTriggerHost(cs, names.updates_queue, called["panorama_updates"])
        )
        try:
            yield LocalStack(cs, arm, kube, panorama, resyncs, updates, azurite)
        finally:
            functions.application.cache_clear()
            os.environ.clear()
            os.environ.update(saved)
