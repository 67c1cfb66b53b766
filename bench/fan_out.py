"""The timer's tick at a size the rest of `--scale` does not reach: 2,000 monitored
clusters (the ten-times installation of docs/performance.md), each with an applied state on
30 firewalls (60,000 summaries, a tenth of that installation's), one resync message each,
sent `limits.timerMaxConcurrentMessages` at a time and, for comparison, one after the other.

`timer_send_s` is the app's own measure of its sends (the `timer.fanned_out` log line's
`sent_ms`); the tick around it also refreshes the inventory (20 Resource Manager pages),
lists the applied summaries and checks the canary. Here Azurite answers over loopback and
shares the 2 cores, so the sends are bound by CPU, not by round trips; the same fan-out
through a proxy that adds a storage account's round trip (10 ms) shows what the bound
concurrency buys in Azure.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from aksfw_core import functions
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.messages import Snapshot
from aksfw_local.azurite import connection_string
from aksfw_local.stack import SUBSCRIPTION, handlers, local_stack
from bench.storage_proxy import CountingProxy


class _FannedOut(logging.Handler):
    """Keeps the `timer.fanned_out` log lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "timer.fanned_out":
            self.lines.append(json.loads(record.getMessage()))


def _tick(connection: str, fanned_out: _FannedOut) -> dict[str, Any]:
    """One timer run; what it sent (read back from the queue, then cleared) and how long."""
    queue = QueueClient.from_connection_string(connection, "cluster-resync")
    started = time.perf_counter()
    handlers()["resync_timer"](TimerRequest(past_due=False))
    tick_s = time.perf_counter() - started
    messages = int(queue.get_queue_properties().approximate_message_count or 0)
    queue.clear_messages()
    return {
        "tick_s": tick_s,
        "messages": messages,
        "sent_s": fanned_out.lines[-1]["sent_ms"] / 1000,
    }


def _configure(limits: dict[str, int], storage: str) -> None:
    """The app's `limits` and storage connection for the next tick (a new engine)."""
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"] = limits
    os.environ.update({"AKSFW_CONFIG": json.dumps(config), "AzureWebJobsStorage": storage})
    functions.application.cache_clear()


def _seed(connection: str, clusters: list[str], firewalls: int) -> None:
    """An applied state (one IP-tag) of every cluster on `firewalls` firewalls: what the
    timer's listing of summaries reads."""
    store = StateStore(StorageAccount.from_environ({"AzureWebJobsStorage": connection}))
    now = time.time()

    def seed(cluster_id: str) -> None:
        name = cluster_id.rsplit("/", 1)[1]
        tags = {"20.0.0.1": frozenset({f"aks.{name}.web"})}
        for firewall in range(firewalls):
            snapshot = Snapshot(cluster_id, name, f"0079{firewall:08d}", time.time_ns(), tags)
            state = AppliedState(
                cluster_id=cluster_id,
                tag_name=name,
                target=snapshot.target,
                version=snapshot.version,
                fingerprint=snapshot.fingerprint,
                tags=tags,
                applied_at=now,
            )
            store.save_applied(state, None)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed, clusters))


def timer_fan_out(
    clusters: int = 2000, firewalls: int = 30, latency_s: float = 0.01
) -> dict[str, Any]:
    """The timer's sends for `clusters` clusters, bounded-concurrent and one by one: on
    Azurite over loopback (the 2 cores are the limit, not the round trips), and through a
    proxy that adds `latency_s` to each queue request, as a storage account in the same
    region does. Each cluster has an applied state on `firewalls` firewalls, which the
    tick lists as summaries (`timer_summaries_s`: that listing alone)."""
    logger = logging.getLogger("aksfw_core.app.triggers")
    fanned_out = _FannedOut()
    logger.addHandler(fanned_out)
    saved_level = logger.level
    logger.setLevel(logging.INFO)
    figures: dict[str, Any] = {"timer_clusters": clusters}
    try:
        with local_stack() as stack:
            assert stack.azurite is not None
            stack.arm.page_size = 100
            kubeconfig = stack.kube.kubeconfig()
            for index in range(1, clusters):  # the stack's own cluster is the first
                stack.arm.add_cluster(
                    SUBSCRIPTION,
                    "rg-fleet",
                    f"aks-{index:04d}",
                    tags={"aksfw": "enabled"},
                    kubeconfig=kubeconfig,
                )
            loopback = stack.connection_string
            ids = [c.id for c in functions.application().engine.discovery.refresh().clusters]
            started = time.perf_counter()
            _seed(loopback, ids, firewalls)
            figures["timer_seed_s"] = round(time.perf_counter() - started, 1)
            _tick(loopback, fanned_out)  # warm: the queues, the canary, connections
            store = functions.application().engine.store
            started = time.perf_counter()
            figures["timer_summaries"] = len(store.summaries())
            figures["timer_summaries_s"] = round(time.perf_counter() - started, 2)
            bounded = _tick(loopback, fanned_out)
            figures["timer_messages"] = bounded["messages"]
            figures["timer_fan_out_tick_s"] = round(bounded["tick_s"], 2)
            figures["timer_send_s"] = round(bounded["sent_s"], 2)
            _configure({"timerMaxConcurrentMessages": 1}, loopback)
            figures["timer_send_one_by_one_s"] = round(_tick(loopback, fanned_out)["sent_s"], 2)
            azurite = stack.azurite
            for name, limits in (
                ("timer_send_latency_s", {}),
                ("timer_send_latency_one_by_one_s", {"timerMaxConcurrentMessages": 1}),
            ):
                # A proxy of its own for each: connections another engine left open to it
                # slowed the next one down.
                with CountingProxy(azurite.queue_port, latency_s=latency_s) as proxy:
                    farther = connection_string(azurite.blob_port, proxy.port, azurite.table_port)
                    _configure(limits, farther)
                    figures[name] = round(_tick(farther, fanned_out)["sent_s"], 2)
    finally:
        logger.removeHandler(fanned_out)
        logger.setLevel(saved_level)
    figures["timer_added_latency_ms"] = round(latency_s * 1000)
    return figures


def summary(figures: dict[str, Any]) -> str:
    """The fan-out's figures as a line for people."""
    return (
        f"timer tick with {figures['timer_clusters']:,} clusters and"
        f" {figures['timer_summaries']:,} applied states: {figures['timer_fan_out_tick_s']} s,"
        f" of which listing the summaries {figures['timer_summaries_s']} s and sending the"
        f" resyncs {figures['timer_send_s']} s ({figures['timer_send_one_by_one_s']} s one by"
        f" one; with {figures['timer_added_latency_ms']} ms per queue request,"
        f" {figures['timer_send_latency_s']} s and {figures['timer_send_latency_one_by_one_s']} s)"
    )


def timer_fan_out_apart(clusters: int = 2000) -> dict[str, Any]:
    """`timer_fan_out` in a process of its own, as `--scale` runs it: threads the other
    scale runs leave behind in theirs made the proxy's round trips several times slower."""
    done = subprocess.run(  # noqa: S603 - this interpreter, this module
        [sys.executable, "-m", "bench.fan_out", str(clusters)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


if __name__ == "__main__":
    print(json.dumps(timer_fan_out(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
