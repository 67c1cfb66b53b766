"""Latency from an Event Grid event to the tags on Panorama, through the app's functions
and the Azurite queues (aksfw_local/stack.py), excluding the host's queue polling interval:
for isolated changes (each on a cluster quiet for a while) and for a sequence of changes on
one cluster, each event sent once the change before is registered (a user creating Services
one after another). Follow-up resyncs come 2 s after an event, so they arrive during the
sequence as they would in Azure."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from aksfw_local.fakes.kube_api import service
from aksfw_local.stack import LocalStack, local_stack

FOLLOW_UP_S = 2
"""`resync.followUpDelaySeconds` of the runs (60 s by default in Azure)."""
QUIET_S = FOLLOW_UP_S + 0.5
"""Seconds an isolated change's cluster has been quiet: its follow-up has run, and its
list budget earned a list back (`limits.resyncRefillSeconds`, 2 s)."""


def _labelled(stack: LocalStack, label: str) -> bool:
    return f"aks.aks-prod1.svc.version.{label}" in stack.panorama.registered().get("20.0.0.1", ())


def _run_queues(stack: LocalStack, until: Callable[[], bool], timeout_s: float) -> None:
    """Both queue triggers, pass after pass with no polling interval, until `until()`."""
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the change was not registered in time")
        if not stack.resyncs.run_once() + stack.updates.run_once():
            time.sleep(0.005)  # a delayed message (a follow-up, a slot) is not visible yet


def _change(stack: LocalStack, label: str) -> float:
    """Change the Service's label, send the event; milliseconds until Panorama holds it."""
    stack.kube.services = [service("web", "shop", ips=["20.0.0.1"], labels={"version": label})]
    started = time.perf_counter()
    stack.event("lb-write.eventgrid.json")
    _run_queues(stack, lambda: _labelled(stack, label), timeout_s=30)
    return (time.perf_counter() - started) * 1000


def _quiet(stack: LocalStack, seconds: float) -> None:
    """Let the queues run for `seconds` (follow-ups included) without a change."""
    ends = time.monotonic() + seconds
    _run_queues(stack, lambda: time.monotonic() >= ends, timeout_s=seconds + 30)


def _quantiles(prefix: str, latencies: list[float]) -> dict[str, object]:
    twentieths = statistics.quantiles(latencies, n=20, method="inclusive")
    return {
        f"{prefix}_p50_ms": round(statistics.median(latencies), 1),
        f"{prefix}_p95_ms": round(twentieths[18], 1),
        f"{prefix}_max_ms": round(max(latencies), 1),
    }


def event_to_registered(isolated: int = 20, sequence: int = 20) -> dict[str, object]:
    """`isolated` changes, each after `QUIET_S` without one, then `sequence` changes in a
    row, each sent once the one before is registered: p50, p95 and the slowest of each."""
    with local_stack({"resync": {"followUpDelaySeconds": FOLLOW_UP_S}}) as stack:
        _change(stack, "warm")  # start-up: discovery, credentials, connections
        alone = []
        for change in range(isolated):
            _quiet(stack, QUIET_S)
            alone.append(_change(stack, f"i{change}"))
        _quiet(stack, QUIET_S)
        in_a_row = [_change(stack, f"s{change}") for change in range(sequence)]
    return {
        "e2e_changes": isolated,
        **_quantiles("e2e", alone),
        "e2e_sequence_changes": sequence,
        **_quantiles("e2e_sequence", in_a_row),
    }
