"""The whole aksfw stack on one machine, outside pytest: Azurite, a fake Resource Manager
holding one AKS cluster, a fake Kubernetes API server for it, the Panorama simulator, and
the app's settings in the environment. Used by `make demo` and the benchmarks.
"""

from __future__ import annotations

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

from aksfw_core import functions
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


@dataclass
class LocalStack:
    azurite: Azurite
    arm: FakeArm
    kube: FakeKubeApi
    panorama: PanoramaSimulator
    functions: dict[str, Any]
    updates: QueueTriggerHost

    def send_event(self, name: str) -> dict[str, Any]:
        """Deliver a sample event (aksfw_local/events) to the Event Grid function."""
        document: dict[str, Any] = json.loads((EVENTS / name).read_text())
        self.functions["resource_event"](
            func.EventGridEvent(
                id=document["id"], data=document["data"], topic=document["topic"],
                subject=document["subject"], event_type=document["eventType"],
                event_time=None, data_version=document["dataVersion"],
            )
        )  # fmt: skip
        return document


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
        app = importlib.import_module("function_app").app
        handlers = {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}
        updates = stack.enter_context(
            QueueTriggerHost(
                azurite.connection_string, "panorama-updates", handlers["panorama_updates"]
            )
        )
        try:
            yield LocalStack(azurite, arm, kube, panorama, handlers, updates)
        finally:
            functions.application.cache_clear()
            os.environ.clear()
            os.environ.update(saved)
