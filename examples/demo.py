"""`make demo`: the whole aksfw flow on one machine.

Starts Azurite (the Azure Storage emulator), a fake Resource Manager with one AKS cluster,
a fake Kubernetes API server with its Services, and the Panorama simulator, all on
127.0.0.1 (aksfw_local/stack.py). Sends a Service-created event through the app's Event Grid
function, lets the queue function apply it, prints what Panorama holds; deletes a
Service, sends the event for that, and shows its tags go. Everything stops at the end.
"""

from __future__ import annotations

import time

from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import CLUSTER_ID, LocalStack, local_stack

CONFIG = {
    "clusters": [
        {
            "id": CLUSTER_ID,
            "alias": "prod1",
            "selectors": [{"name": "public", "match": "exposure=internet"}],
        }
    ]
}


def print_registered(stack: LocalStack) -> None:
    registered = stack.panorama.registered()
    width = max((len(ip) for ip in registered), default=2)
    print(f"   {'IP'.ljust(width)}  TAGS")
    for ip in sorted(registered):
        print(f"   {ip.ljust(width)}  {', '.join(sorted(registered[ip]))}")
    print()


def event(stack: LocalStack, name: str) -> None:
    document = stack.event(name)
    print(f"-> Event Grid: {document['eventType']} {document['subject'].split('/providers/')[-1]}")


def main() -> None:
    with local_stack(CONFIG) as stack:
        stack.panorama.seed("20.50.10.11", ["corp.monitoring"])
        print("Azurite, Resource Manager, Kubernetes API and Panorama are running on 127.0.0.1.")
        print("Panorama already has corp.monitoring on 20.50.10.11 (not aksfw's: it stays).\n")
        stack.kube.services = [
            service(
                "web", "shop", ips=["20.50.10.11"], labels={"app": "web", "exposure": "internet"}
            ),
            service("api", "shop", ips=["10.240.0.7"], labels={"app": "api"}),
        ]
        started = time.monotonic()
        event(stack, "lb-write.eventgrid.json")
        stack.resyncs.run_until_idle(timeout_s=30)
        stack.updates.run_until_idle(timeout_s=30)
        print(f"   applied {(time.monotonic() - started) * 1000:.0f} ms after the event:\n")
        print_registered(stack)

        print("Service shop/api is deleted.")
        stack.kube.services = stack.kube.services[:1]
        event(stack, "pip-delete.eventgrid.json")
        stack.resyncs.run_until_idle(timeout_s=30)
        stack.updates.run_until_idle(timeout_s=30)
        print_registered(stack)


if __name__ == "__main__":
    main()
