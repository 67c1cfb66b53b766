"""`python -m bench --scale`: the target installation of DESIGN section 10 on this machine.

200 clusters, each sent to the 30 connected firewalls of one device group (6,000 applied
(cluster, firewall) states in Azurite), the app's functions as the host calls them, and
Azurite's blob service behind a counting proxy. It measures:

- a quiet timer tick and one `GET /api/status`: time and state-blob downloads;
- a storm of 1,000 load-balancer events for one cluster, sent by 8 concurrent
  invocations while two queue consumers run: Resource Manager requests, Kubernetes lists,
  Panorama writes, and how long until the first firewall holds the change;
- one hourly audit cycle of every (cluster, firewall) through the timer and both queue
  functions (`bench.audit_cycle`; each cluster has an API server of its own): the
  registered-ip reads the simulator's call log counts, its time, and that every
  cluster's tags end exact;
- an audit of one cluster against a target holding 300,000 registered IPs (most of them
  not aksfw's): time and peak memory of the process beyond what it held before.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from aksfw_core import functions
from aksfw_core.config import load_settings
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.messages import Snapshot
from aksfw_core.rules.services import parse_service_items
from aksfw_core.rules.tags import ClusterTags, compute_tags
from aksfw_local.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from aksfw_local.fakes.arm import FakeArm
from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.fakes.panorama import PanoramaSimulator
from aksfw_local.functions_host import QueueTriggerHost
from aksfw_local.stack import EVENTS
from aksfw_local.stack import handlers as app_handlers
from bench.audit_cycle import audit_cycle
from bench.storage_proxy import CountingProxy

SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
EVENT = EVENTS / "lb-write.eventgrid.json"
API_KEY = "scale-bench-key"
KUBE_TOKEN = "scale-bench-cluster-token"  # noqa: S105 - a local fake's
DEVICE_GROUP = "dg-aks"


def cluster_name(index: int) -> str:
    return "aks-prod1" if index == 0 else f"aks-{index:03d}"


def cluster_id(index: int) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod/providers/"
        f"Microsoft.ContainerService/managedClusters/{cluster_name(index)}"
    )


def serial(index: int) -> str:
    return f"0079{index:08d}"


def services(generation: int, index: int = 0) -> list[dict[str, Any]]:
    """The Services cluster `index` lists: 20 LoadBalancers with a label or two, on
    addresses of its own (`20.<index>.<i>.1`)."""
    return [
        service(
            f"svc{i}",
            "shop",
            ips=[f"20.{index}.{i}.1"],
            labels={"app": f"a{i}", "gen": str(generation)},
        )
        for i in range(20)
    ]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def installation(clusters: int, firewalls: int) -> Iterator[dict[str, Any]]:
    """Everything started, the environment set, the handlers built; restored on exit."""
    saved = dict(os.environ)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        azurite = stack.enter_context(Azurite())
        proxy = stack.enter_context(CountingProxy(azurite.blob_port))
        arm = stack.enter_context(FakeArm(page_size=100))
        kube = stack.enter_context(FakeKubeApi(token=KUBE_TOKEN))
        panorama = stack.enter_context(
            PanoramaSimulator(
                api_key=API_KEY, firewalls={serial(i): DEVICE_GROUP for i in range(firewalls)}
            )
        )
        bundle = scratch / "ca.pem"
        bundle.write_bytes(arm.ca_pem or b"")
        endpoint = f"http://127.0.0.1:{{}}/{ACCOUNT_NAME}"
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={endpoint.format(proxy.port)};"
            f"QueueEndpoint={endpoint.format(azurite.queue_port)};"
        )
        config = {
            "subscriptions": [SUBSCRIPTION],
            "discovery": {"tag": "aksfw"},
            "panorama": {"host": panorama.url, "targets": {"deviceGroups": [DEVICE_GROUP]}},
            "resync": {"followUpDelaySeconds": 5},
        }
        os.environ.update(
            {
                "AKSFW_CONFIG": json.dumps(config),
                "AKSFW_ARM_ENDPOINT": arm.url,
                "AKSFW_DEV_TOKEN": arm.token,
                "PANORAMA_API_KEY": API_KEY,
                "AzureWebJobsStorage": connection,
                "REQUESTS_CA_BUNDLE": str(bundle),
            }
        )
        functions.application.cache_clear()
        # An API server per cluster, each serving Services on addresses of its own.
        kubes = [kube] + [
            stack.enter_context(FakeKubeApi(token=KUBE_TOKEN)) for _ in range(1, clusters)
        ]
        for index in range(clusters):
            kubes[index].services = services(0, index)
            arm.add_cluster(
                SUBSCRIPTION,
                "rg-prod",
                cluster_name(index),
                tags={"aksfw": "on"},
                kubeconfig=kubes[index].kubeconfig(),
            )
        handlers = app_handlers()  # indexed once per process: the library refuses twice
        try:
            yield {
                "azurite": azurite, "proxy": proxy, "arm": arm, "kube": kube,
                "panorama": panorama, "handlers": handlers, "connection": connection,
                "kubes": kubes,
            }  # fmt: skip
        finally:
            functions.application.cache_clear()
            os.environ.clear()
            os.environ.update(saved)


def seed_states(connection: str, clusters: int, firewalls: int, generation: int) -> None:
    """The applied state of every (cluster, firewall), as the applier would have left it."""
    store = StateStore(StorageAccount.from_environ({"AzureWebJobsStorage": connection}))
    now = time.time()

    def seed(index: int) -> None:
        name = cluster_name(index)
        listed = parse_service_items(services(generation, index)).services
        wanted = compute_tags(name, listed).tags
        version = time.time_ns()
        for fw in range(firewalls):
            snapshot = Snapshot(cluster_id(index), name, serial(fw), version, dict(wanted))
            store.save_applied(
                AppliedState(
                    cluster_id=snapshot.cluster_id,
                    tag_name=name,
                    target=snapshot.target,
                    version=version,
                    fingerprint=snapshot.fingerprint,
                    tags=snapshot.tags,
                    applied_at=now,
                ),
                None,
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed, range(clusters)))


def timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def storm(world: dict[str, Any], events: int, firewalls: int) -> dict[str, Any]:
    """`events` load-balancer events for cluster 0 after one change of its Services."""
    arm, kube, panorama = world["arm"], world["kube"], world["panorama"]
    handlers, connection = world["handlers"], world["connection"]
    kube.services = services(1)
    changed = "aks.aks-prod1.svc.gen.1"
    arm.reset_requests()
    kube.requests.clear()
    panorama.reset_calls()
    document = json.loads(EVENT.read_text())
    first_applied: list[float] = []
    started = time.perf_counter()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for fw in range(firewalls):
                if changed in panorama.registered(target=serial(fw)).get("20.0.0.1", set()):
                    first_applied.append(time.perf_counter() - started)
                    return
            time.sleep(0.01)

    def send(index: int) -> None:
        # The burst lasts about ten seconds, as a node-pool upgrade's does.
        time.sleep(max(0.0, started + index * 10.0 / events - time.perf_counter()))
        handlers["resource_event"](
            func.EventGridEvent(
                id=f"storm-{index}", data=document["data"], topic=document["topic"],
                subject=document["subject"], event_type=document["eventType"],
                event_time=None, data_version=document["dataVersion"],
            )
        )  # fmt: skip

    def consume(queue: str, handler: str) -> None:
        with QueueTriggerHost(connection, queue, handlers[handler]) as host:
            while not stop.is_set():
                host.run_until_idle(timeout_s=120, settle_s=0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    consumers = [
        threading.Thread(target=consume, args=("cluster-resync", "cluster_resync"), daemon=True),
        threading.Thread(
            target=consume, args=("panorama-updates", "panorama_updates"), daemon=True
        ),
        threading.Thread(
            target=consume, args=("panorama-updates", "panorama_updates"), daemon=True
        ),
    ]
    watcher.start()
    for consumer in consumers:
        consumer.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(events)))
    sent = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = all(
            changed in panorama.registered(target=serial(fw)).get("20.0.0.1", set())
            for fw in range(firewalls)
        )
        if done:
            break
        time.sleep(0.2)
    time.sleep(8)  # the follow-up resync (5 s after the first event) and its queue work
    stop.set()
    for consumer in consumers:
        consumer.join(timeout=30)
    lists = [r for r in kube.requests if r.path == "/api/v1/services"]
    return {
        "storm_events": events,
        "storm_send_s": round(sent, 1),
        "storm_arm_requests": len(arm.requests),
        "storm_kube_lists": len(lists),
        "storm_panorama_writes": len(panorama.write_calls()),
        "storm_first_applied_ms": round(first_applied[0] * 1000) if first_applied else None,
        "storm_converged": all(
            changed in panorama.registered(target=serial(fw)).get("20.0.0.1", set())
            for fw in range(firewalls)
        ),
    }


def audit(panorama: PanoramaSimulator, ips: int) -> dict[str, Any]:
    """An audit of one cluster on a target holding `ips` registered IPs, 1% of them its own."""
    owned_every = 100
    table: dict[str, list[str]] = {}
    for index in range(ips):
        address = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"
        tags = ["corp.other", f"corp.app{index % 50}"]
        if index % owned_every == 0:
            tags.append(f"aks.audit1.svc{index}")
        table[address] = tags
    panorama.seed_many(table, target=serial(1))
    wanted = {f"10.0.0.{i}": frozenset({f"aks.audit1.svc{i}"}) for i in range(0, 256, owned_every)}
    settings = load_settings(os.environ)
    assert settings.panorama is not None
    client_settings = settings.panorama.for_target(serial(1))
    before_rss = rss_mb()
    elapsed, report = timed(
        lambda: sync_cluster(
            ClusterTags("audit1", wanted, ()), PanoramaClient(client_settings, api_key(API_KEY))
        )
    )
    return {
        "audit_ips": ips,
        "audit_s": round(elapsed, 1),
        "audit_read_requests": report.read_requests,
        "audit_unregistered": report.plan.unregister_count,
        "audit_peak_mb": round(max(0.0, peak_mb() - before_rss), 1),
    }


def measured_audit_cycle(world: dict[str, Any], clusters: int, firewalls: int) -> dict[str, Any]:
    """One hourly audit of every (cluster, firewall) (`bench.audit_cycle`)."""
    listed = [(cluster_name(i), world["kubes"][i].services) for i in range(clusters)]
    return audit_cycle(world, [serial(fw) for fw in range(firewalls)], listed)


def run(
    clusters: int = 200, firewalls: int = 30, events: int = 1000, ips: int = 300_000
) -> dict[str, Any]:
    """Every scale figure, as one dictionary (also printed as a table by `table`)."""
    figures: dict[str, Any] = {"clusters": clusters, "firewalls": firewalls}
    with installation(clusters, firewalls) as world:
        proxy, handlers = world["proxy"], world["handlers"]
        seed_states(world["connection"], clusters, firewalls, generation=0)
        figures["targets"] = clusters * firewalls
        handlers["status"](func.HttpRequest("GET", "http://localhost/api/status", body=b""))
        proxy.reset()
        elapsed, _ = timed(lambda: handlers["resync_timer"](TimerRequest(past_due=False)))
        figures["timer_tick_s"] = round(elapsed, 2)
        figures["timer_tick_blob_downloads"] = proxy.counts["download"]
        proxy.reset()
        elapsed, response = timed(
            lambda: handlers["status"](
                func.HttpRequest("GET", "http://localhost/api/status", body=b"")
            )
        )
        status = json.loads(response.get_body())
        figures["status_s"] = round(elapsed, 2)
        figures["status_blob_downloads"] = proxy.counts["download"]
        figures["status_targets"] = sum(len(c["targets"]) for c in status["clusters"])
        # The timer's fan-out is not part of the storm: drop it.
        QueueClient.from_connection_string(world["connection"], "cluster-resync").clear_messages()
        proxy.reset()
        figures.update(storm(world, events, firewalls))
        figures["storm_blob_downloads"] = proxy.counts["download"]
        figures.update(measured_audit_cycle(world, clusters, firewalls))
        figures.update(audit(world["panorama"], ips))
    return figures


def table(figures: dict[str, Any]) -> str:
    rows = [
        ("targets (cluster, firewall)", figures["targets"], ""),
        (
            "timer tick",
            f"{figures['timer_tick_s']} s",
            f"{figures['timer_tick_blob_downloads']} blob downloads",
        ),
        (
            "GET /api/status",
            f"{figures['status_s']} s",
            f"{figures['status_blob_downloads']} blob downloads",
        ),
        (
            f"storm of {figures['storm_events']} events",
            f"first firewall {figures['storm_first_applied_ms']} ms",
            f"{figures['storm_arm_requests']} ARM, {figures['storm_kube_lists']} Kubernetes lists, "
            f"{figures['storm_panorama_writes']} Panorama writes",
        ),
        (
            f"audit cycle, {figures['firewalls']} firewalls",
            f"{figures['audit_cycle_s']} s",
            f"{figures['audit_cycle_registered_reads']} registered-ip reads (at most "
            f"{figures['audit_cycle_read_bound']}), {figures['audit_cycle_table_reads']} tables, "
            f"exact: {figures['audit_cycle_exact']}",
        ),
        (
            f"audit, {figures['audit_ips']:,} IPs on the target",
            f"{figures['audit_s']} s",
            f"{figures['audit_read_requests']} reads, peak +{figures['audit_peak_mb']} MB",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value!s:<28}  {detail}" for name, value, detail in rows)
