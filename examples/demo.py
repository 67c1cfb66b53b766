"""`make demo`: the whole aksfw flow on one machine.

Starts Azurite (the Azure Storage emulator), a fake Resource Manager with one AKS cluster,
a fake Kubernetes API server with its Services, and the Panorama simulator, all on
127.0.0.1 (aksfw_local/stack.py). Sends a Service-created event through the app's Event Grid
function, lets the queue function apply it, prints what Panorama holds; deletes a
Service, sends the event for that, says what each event resolved to and why, and shows
its tags go. Everything stops at the end, and the demo checks that it did.

aksfw's warning that the fakes' static token (AKSFW_DEV_TOKEN) is in use is expected
here and kept out of the output; any other warning is printed.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from urllib.parse import urlsplit

from aksfw_core import functions
from aksfw_core.azure.events import read_event, resolve
from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import CLUSTER_ID, LocalStack, local_stack

EXPECTED_WARNINGS = ('"identity.dev_token"',)
"""Log events the demo's fakes cause on purpose."""

CONFIG = {
    "clusters": [
        {
            "id": CLUSTER_ID,
            "alias": "prod1",
            "selectors": [{"name": "public", "match": "exposure=internet"}],
            "namespaceTags": True,
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
    # The same resolution the Event Grid function just made, from the app's inventory.
    resolution = resolve(read_event(document), functions.application().engine.discovery.inventory())
    for change in resolution.clusters:
        cluster = change.id.rsplit("/", 1)[-1]
        print(f"   resolved: {change.kind.value} of cluster {cluster}, because {change.reason}")
    if not resolution.clusters:
        print(f"   resolved: nothing ({resolution.reason})")
    if "publicIPAddresses" in document["subject"]:
        print("   Azure names the public IP, not the Service that used it: aksfw lists every")
        print("   Service of the cluster again and applies only the difference.")


class _QuietExpected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(name in record.getMessage() for name in EXPECTED_WARNINGS)


def quiet_logging() -> logging.Handler:
    """Warnings and errors on stderr, but not those the fakes cause on purpose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(name)s %(message)s"))
    handler.addFilter(_QuietExpected())
    logging.getLogger().addHandler(handler)
    return handler


def addresses(stack: LocalStack) -> dict[str, str]:
    """Where each part runs, by name."""
    found = {
        "Resource Manager (fake)": stack.arm.url,
        "Kubernetes API (fake)": stack.kube.url,
        "Panorama (simulator)": stack.panorama.url,
    }
    if stack.azurite is not None:
        found["Azurite (Storage emulator)"] = f"http://127.0.0.1:{stack.azurite.blob_port}"
    return found


def listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 0.5):
            return True
    except OSError:
        return False


def main() -> None:
    handler = quiet_logging()
    try:
        run()
    finally:
        logging.getLogger().removeHandler(handler)


def run() -> None:
    with local_stack(CONFIG) as stack:
        started_at = addresses(stack)
        for name, url in started_at.items():
            print(f"{name:<28} {url}")
        stack.panorama.seed("20.50.10.11", ["corp.monitoring"])
        print("\nPanorama already has corp.monitoring on 20.50.10.11 (not aksfw's: it stays).\n")
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
    still = [name for name, url in started_at.items() if listening(url)]
    if still:
        print(f"still running: {', '.join(still)}")
    else:
        print(f"Stopped: {', '.join(name.split(' (')[0] for name in started_at)}.")


if __name__ == "__main__":
    main()
