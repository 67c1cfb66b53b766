"""Latency from an Event Grid event to the tags on Panorama, through the app's functions
and the Azurite queues (aksfw_local/stack.py), excluding the host's queue polling interval."""

from __future__ import annotations

import statistics
import time

from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import local_stack


def event_to_registered(changes: int) -> dict[str, object]:
    latencies = []
    with local_stack() as stack:
        for change in range(changes + 1):
            label = f"v{change}"
            stack.kube.services = [
                service("web", "shop", ips=["20.0.0.1"], labels={"version": label})
            ]
            started = time.perf_counter()
            stack.event("lb-write.eventgrid.json")
            stack.resyncs.run_until_idle(timeout_s=30)
            stack.updates.run_until_idle(timeout_s=30)
            elapsed = time.perf_counter() - started
            assert f"aks.aks-prod1.svc.version.{label}" in stack.panorama.registered()["20.0.0.1"]
            if change:  # the first one also pays for start-up (discovery, credentials)
                latencies.append(elapsed * 1000)
    quantiles = statistics.quantiles(latencies, n=20)
    return {
        "e2e_changes": changes,
        "e2e_p50_ms": round(statistics.median(latencies), 1),
        "e2e_p95_ms": round(quantiles[18], 1),
    }
