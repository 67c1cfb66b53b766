"""`make demo`: the whole aksfw flow on one machine.

Starts Azurite (the Azure Storage emulator), a fake Resource Manager with one AKS cluster,
a fake Kubernetes API server with its Services, and the Panorama simulator, all on
127.0.0.1. Then it sends a Service-created event through the app's Event Grid function,
lets the queue function apply it, prints what Panorama holds; deletes a Service, sends
the event for that, and shows its tags go. Everything stops when the demo ends.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.functions as func

from aksfw_core import functions
from tests.azurite import Azurite
from tests.fakes.arm import FakeArm
from tests.fakes.kube_api import FakeKubeApi, service
from tests.fakes.panorama import PanoramaSimulator
from tests.functions_host import QueueTriggerHost

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "events"
SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"


def handlers() -> dict[str, Any]:
    """The app's functions as the host calls them (imported once the settings are set)."""
    app = importlib.import_module("function_app").app
    return {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}


def send_event(handler: Callable[[func.EventGridEvent], None], name: str) -> None:
    document = json.loads((EVENTS / name).read_text())
    print(f"-> Event Grid: {document['eventType']} {document['subject'].split('/providers/')[-1]}")
    handler(
        func.EventGridEvent(
            id=document["id"], data=document["data"], topic=document["topic"],
            subject=document["subject"], event_type=document["eventType"],
            event_time=None, data_version=document["dataVersion"],
        )
    )  # fmt: skip


def print_registered(panorama: PanoramaSimulator) -> None:
    registered = panorama.registered()
    width = max((len(ip) for ip in registered), default=2)
    print(f"   {'IP'.ljust(width)}  TAGS")
    for ip in sorted(registered):
        print(f"   {ip.ljust(width)}  {', '.join(sorted(registered[ip]))}")
    print()


def kubeconfig(kube: FakeKubeApi) -> dict[str, object]:
    """What listClusterUserCredential returns for a local-account cluster."""
    cluster = {
        "server": kube.url,
        "certificate-authority-data": base64.b64encode(kube.ca_pem or b"").decode(),
    }
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aks-prod1", "cluster": cluster}],
        "users": [{"name": "clusterUser", "user": {"token": "demo-cluster-token"}}],
        "contexts": [
            {"name": "aks-prod1", "context": {"cluster": "aks-prod1", "user": "clusterUser"}}
        ],
        "current-context": "aks-prod1",
    }


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as scratch,
        Azurite() as azurite,
        FakeArm() as arm,
        FakeKubeApi(token="demo-cluster-token") as kube,
        PanoramaSimulator(api_key="demo-api-key") as panorama,
    ):
        bundle = Path(scratch) / "ca.pem"
        bundle.write_bytes(arm.ca_pem or b"")
        config = {
            "subscriptions": [SUBSCRIPTION],
            "discovery": {"tag": "aksfw=enabled"},
            "clusters": [{"id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod/providers/"
                                "Microsoft.ContainerService/managedClusters/aks-prod1",
                          "alias": "prod1", "selectors": [{"name": "public", "match": "exposure=internet"}]}],
            "panorama": {"host": panorama.url},
            "resync": {"followUpDelaySeconds": 0},
        }  # fmt: skip
        os.environ.update(
            {
                "AKSFW_CONFIG": json.dumps(config),
                "AKSFW_ARM_ENDPOINT": arm.url,
                "AKSFW_DEV_TOKEN": arm.token,
                "PANORAMA_API_KEY": "demo-api-key",
                "AzureWebJobsStorage": azurite.connection_string,
                "REQUESTS_CA_BUNDLE": str(bundle),
            }
        )
        functions.application.cache_clear()
        app = handlers()
        arm.add_cluster(
            SUBSCRIPTION,
            "rg-prod",
            "aks-prod1",
            tags={"aksfw": "enabled"},
            kubeconfig=kubeconfig(kube),
        )
        panorama.seed("20.50.10.11", ["corp.monitoring"])
        print("Azurite, Resource Manager, Kubernetes API and Panorama are running on 127.0.0.1.")
        print("Panorama already has corp.monitoring on 20.50.10.11 (not aksfw's: it stays).\n")

        kube.services = [
            service(
                "web", "shop", ips=["20.50.10.11"], labels={"app": "web", "exposure": "internet"}
            ),
            service("api", "shop", ips=["10.240.0.7"], labels={"app": "api"}),
        ]
        with QueueTriggerHost(
            azurite.connection_string, "panorama-updates", app["panorama_updates"]
        ) as updates:
            started = time.monotonic()
            send_event(app["resource_event"], "lb-write.eventgrid.json")
            updates.run_until_idle(timeout_s=30)
            print(f"   applied {(time.monotonic() - started) * 1000:.0f} ms after the event:\n")
            print_registered(panorama)

            print("Service shop/api is deleted.")
            kube.services = kube.services[:1]
            send_event(app["resource_event"], "pip-delete.eventgrid.json")
            updates.run_until_idle(timeout_s=30)
            print_registered(panorama)
        functions.application.cache_clear()


if __name__ == "__main__":
    main()
