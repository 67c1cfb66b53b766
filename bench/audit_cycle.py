"""`python -m bench --scale`, the audit cycle: one hourly audit of every cluster on every
firewall through the app's own functions (the timer, `cluster_resync`, `panorama_updates`,
three update consumers and one resync consumer at once), with the simulator's call log
counting the registered-ip reads it sends to Panorama.

Each firewall holds every cluster's tags (20 IPs, 60 tags per cluster), 1,100 IPs of other
owners, one tag of another owner on each cluster's first IP, and a little drift for the
audit to repair: one cluster per firewall lost its first IP's tags and holds a stale tag
of its own on its second IP. After the cycle every firewall must hold exactly what the
clusters want, beside every tag of the other owners.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import suppress
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from aksfw_core import functions
from aksfw_core.panorama.canary import CANARY_NETWORK, is_canary_tag
from aksfw_core.panorama.registered_read import PAGE_SIZE
from aksfw_core.pipeline.storage import STATE_CONTAINER
from aksfw_core.rules.services import parse_service_items
from aksfw_core.rules.tags import compute_tags
from aksfw_local.fakes.panorama import Call, PanoramaSimulator
from aksfw_local.functions_host import QueueTriggerHost

FOREIGN_IPS = 1_100
"""IPs of other owners on each firewall (with the clusters': 5,100 in all)."""
FOREIGN_TAG = "corp.keep"
"""Another owner's tag on each cluster's first IP: the audit must leave it."""


def is_table_read(call: Call) -> bool:
    """A `show object registered-ip` request of a table read (its count or a page); not a
    canary check (one address in `100::/64`)."""
    command = call.command or ""
    canary = str(CANARY_NETWORK.network_address)
    return call.type == "op" and "<registered-ip>" in command and canary not in command


def _without_canary(table: dict[str, set[str]]) -> dict[str, set[str]]:
    kept = {ip: {tag for tag in tags if not is_canary_tag(tag)} for ip, tags in table.items()}
    return {ip: tags for ip, tags in kept.items() if tags}


def seed_firewalls(
    panorama: PanoramaSimulator,
    wanted: list[tuple[str, dict[str, frozenset[str]]]],
    serials: list[str],
) -> dict[str, dict[str, set[str]]]:
    """Each firewall as described in the module docstring (its canary kept), from each
    cluster's tag name and wanted tags; returns what each must hold after the audit,
    canary left out."""
    expected: dict[str, dict[str, set[str]]] = {}
    for fw, target in enumerate(serials):
        table: dict[str, set[str]] = {
            f"10.9.{i // 256}.{i % 256}": {"corp.other", f"corp.app{i % 50}"}
            for i in range(FOREIGN_IPS)
        }
        for _, tags in wanted:
            for ip, cluster_tags in tags.items():
                table.setdefault(ip, set()).update(cluster_tags)
            table[min(tags)].add(FOREIGN_TAG)
        expected[target] = {ip: set(tags) for ip, tags in table.items()}
        owner, drifted = wanted[fw % len(wanted)]
        first, second = sorted(drifted)[:2]
        table[first] -= drifted[first]  # lost
        table[second].add(f"aks.{owner}.gone")  # stale
        canary = {
            ip: tags
            for ip, tags in panorama.registered(target).items()
            if any(is_canary_tag(tag) for tag in tags)
        }
        panorama.clear(target)
        panorama.seed_many({**table, **canary}, target=target)
    return expected


def _drain(world: dict[str, Any], stop_after_s: float = 1200.0) -> None:
    """Run one resync consumer and three update consumers until both queues are empty."""
    connection, handlers = world["connection"], world["handlers"]
    stop = threading.Event()

    def consume(queue: str, handler: str) -> None:
        with QueueTriggerHost(connection, queue, handlers[handler]) as host:
            while not stop.is_set():
                host.run_until_idle(timeout_s=stop_after_s, settle_s=0.2)
                time.sleep(0.1)

    consumers = [threading.Thread(target=consume, args=("cluster-resync", "cluster_resync"))]
    consumers += [
        threading.Thread(target=consume, args=("panorama-updates", "panorama_updates"))
        for _ in range(3)
    ]
    for consumer in consumers:
        consumer.start()
    queues = [QueueClient.from_connection_string(connection, q) for q in ("cluster-resync", "panorama-updates")]  # fmt: skip
    deadline = time.monotonic() + stop_after_s
    empty_in_a_row = 0
    try:
        while empty_in_a_row < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            left = sum(int(q.get_queue_properties().approximate_message_count or 0) for q in queues)
            empty_in_a_row = empty_in_a_row + 1 if left == 0 else 0
    finally:
        stop.set()
        for consumer in consumers:
            consumer.join(timeout=60)


def _new_audit_hour(connection: str) -> None:
    """Let the next timer run claim the audit again (as an hour later), in a new engine."""
    blobs = BlobServiceClient.from_connection_string(connection)
    with suppress(ResourceNotFoundError):
        blobs.get_blob_client(STATE_CONTAINER, "claims/audit").delete_blob()
    functions.application.cache_clear()


def audit_cycle(
    world: dict[str, Any], serials: list[str], clusters: list[tuple[str, list[dict[str, Any]]]]
) -> dict[str, Any]:
    """One audit cycle (the module's docstring); `clusters`: each cluster's tag name and
    the Services its API serves now."""
    panorama: PanoramaSimulator = world["panorama"]
    wanted = [
        (name, dict(compute_tags(name, parse_service_items(items).services).tags))
        for name, items in clusters
    ]
    expected = seed_firewalls(panorama, wanted, serials)
    _new_audit_hour(world["connection"])
    panorama.reset_calls()
    world["proxy"].reset()
    started = time.perf_counter()
    world["handlers"]["resync_timer"](TimerRequest(past_due=False))
    _drain(world)
    elapsed = time.perf_counter() - started
    calls = list(panorama.calls)
    reads = [call for call in calls if is_table_read(call)]
    writes = [c for c in calls if c.type == "user-id" and "aksfw.canary." not in (c.command or "")]
    ips = max(len(panorama.registered(target)) for target in serials)
    pages = math.ceil((ips + 1) / PAGE_SIZE)  # a full last page asks for one more
    exact = all(_without_canary(panorama.registered(t)) == expected[t] for t in serials)
    return {
        "audit_cycle_firewall_ips": ips,
        "audit_cycle_registered_reads": len(reads),
        "audit_cycle_read_bound": len(serials) * (pages + 1),
        "audit_cycle_table_reads": sum("<option>count" in (c.command or "") for c in reads),
        "audit_cycle_panorama_writes": len(writes),
        "audit_cycle_s": round(elapsed, 1),
        "audit_cycle_blob_downloads": world["proxy"].counts["download"],
        "audit_cycle_exact": exact,
    }
