"""Applying IP-tags to Panorama: aksfw's applier (state in Azurite, the production path)
against pan-os-python's `UserId` (batch register, `audit_registered_ip`), side by side on
the same simulator over HTTPS: a cold apply, an update where 5% of the IPs changed, and an
unchanged resync."""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from aksfw_core.azure.inventory import Inventory, MonitoredCluster
from aksfw_core.config import PanoramaSettings, PanoramaTargets
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.panorama.xmlapi import MAX_REQUEST_BYTES
from aksfw_core.pipeline.applier import Applier
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.messages import Snapshot
from aksfw_local.azurite import Azurite
from aksfw_local.fakes.panorama import PanoramaSimulator

KEY = "bench-api-key"
CLUSTER = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/bench"


@dataclass(frozen=True)
class Row:
    tool: str
    ips: int
    step: str
    seconds: float
    requests: int
    bytes_sent: int
    max_request_bytes: int
    peak_mib: float


def wanted(ips: int, generation: int) -> dict[str, list[str]]:
    """3 tags per IP; with generation 1, every 20th IP (5%) has one tag changed."""
    result = {}
    for i in range(ips):
        version = f"v{generation}" if generation and i % 20 == 0 else "v0"
        result[f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"] = [
            f"aks.bench.svc{i}",
            f"aks.bench.svc.app.a{i % 200}",
            f"aks.bench.svc.version.{version}",
        ]
    return result


@contextmanager
def simulator() -> Iterator[PanoramaSimulator]:
    with (
        tempfile.TemporaryDirectory() as tls,
        PanoramaSimulator(api_key=KEY, tls_dir=Path(tls)) as sim,
    ):
        yield sim


def measure(
    sim: PanoramaSimulator,
    tool: str,
    ips: int,
    step: str,
    action: Callable[[], object],
    traced: bool,
) -> Row:
    sim.reset_calls()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    peak = 0.0
    if traced:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    calls = list(sim.calls)
    return Row(
        tool, ips, step, round(seconds, 3), len(calls), sum(c.body_bytes for c in calls),
        max((c.body_bytes for c in calls), default=0), round(peak, 1),
    )  # fmt: skip


def aksfw_steps(ips: int, traced: bool) -> list[Row]:
    with simulator() as sim, Azurite() as azurite:
        storage = StateStore(
            StorageAccount.from_environ({"AzureWebJobsStorage": azurite.connection_string})
        )
        settings = PanoramaSettings(url=sim.url, ca_certificates=sim.ca_pem.decode())

        def client(target: str = "panorama") -> PanoramaClient:
            return PanoramaClient(settings, api_key(KEY))

        bench_cluster = MonitoredCluster(CLUSTER, "bench", "bench", "MC_rg_bench_westeurope")
        applier = Applier(
            storage,
            client,
            clusters=Inventory((bench_cluster,)).find,
            targets=TargetResolver(PanoramaTargets(), client),
        )

        def apply(version: int, generation: int) -> Callable[[], object]:
            tags = {ip: frozenset(t) for ip, t in wanted(ips, generation).items()}
            return lambda: applier.apply(Snapshot(CLUSTER, "bench", "panorama", version, tags))

        rows = [
            measure(sim, "aksfw", ips, "cold", apply(1, 0), traced),
            measure(sim, "aksfw", ips, "update 5%", apply(2, 1), traced),
            measure(sim, "aksfw", ips, "unchanged", apply(3, 1), traced),
        ]
        assert len(sim.registered()) == ips
        return rows


def peer_steps(ips: int, traced: bool) -> list[Row]:
    from panos.firewall import Firewall  # installed for the benchmark only

    with simulator() as sim:
        os.environ["SSL_CERT_FILE"] = str(sim.ca_file)  # pan-python's TLS trust
        firewall = Firewall("127.0.0.1", api_key=KEY, port=sim.port)

        def cold() -> None:
            firewall.userid.batch_start()
            for ip, tags in wanted(ips, 0).items():
                firewall.userid.register(ip, tags)
            firewall.userid.batch_end()

        rows = [measure(sim, "pan-os-python", ips, "cold", cold, traced)]
        for step, generation in (("update 5%", 1), ("unchanged", 1)):
            mapping = wanted(ips, generation)
            rows.append(
                measure(
                    sim,
                    "pan-os-python",
                    ips,
                    step,
                    lambda m=mapping: firewall.userid.audit_registered_ip(m),
                    traced,
                )
            )
        assert len(sim.registered()) == ips
        return rows


def compare(ips: int, with_peer: bool, memory: bool) -> list[Row]:
    """A timed pass, then (with `memory`) a traced pass for peak memory: tracemalloc slows
    the code it watches, so the two are not mixed."""
    timed = aksfw_steps(ips, traced=False)
    if with_peer:
        timed += peer_steps(ips, traced=False)
    if not memory:
        return timed
    traced = aksfw_steps(ips, traced=True)
    if with_peer:
        traced += peer_steps(ips, traced=True)
    return [replace(t, peak_mib=m.peak_mib) for t, m in zip(timed, traced, strict=True)]


def table(rows: list[Row]) -> str:
    lines = [
        f"{'tool':<14} {'IPs':>7} {'step':<10} {'seconds':>8} {'requests':>8} {'bytes sent':>12} "
        f"{'max request':>12} {'peak MiB':>9} {'< 5 MB':>6}"
    ]
    for r in rows:
        under = "yes" if r.max_request_bytes < MAX_REQUEST_BYTES else "NO"
        lines.append(
            f"{r.tool:<14} {r.ips:>7,} {r.step:<10} {r.seconds:>8.3f} {r.requests:>8} {r.bytes_sent:>12,} "
            f"{r.max_request_bytes:>12,} {(f'{r.peak_mib:.1f}' if r.peak_mib else '-'):>9} {under:>6}"
        )
    return "\n".join(lines)


def summarise(rows: list[Row]) -> dict[str, object]:
    def row(tool: str, ips: int, step: str) -> Row:
        return next(r for r in rows if (r.tool, r.ips, r.step) == (tool, ips, step))

    ours, peer = row("aksfw", 10_000, "cold"), row("pan-os-python", 10_000, "cold")
    summary: dict[str, object] = {
        "cold_10k_s": ours.seconds,
        "cold_50k_s": row("aksfw", 50_000, "cold").seconds,
        "update_5pct_requests": row("aksfw", 10_000, "update 5%").requests,
        "noop_write_requests": row("aksfw", 10_000, "unchanged").requests,
        "ratio_time_vs_panos_python": round(ours.seconds / peer.seconds, 3),
        "ratio_requests_vs_panos_python": round(ours.requests / max(peer.requests, 1), 3),
        "max_request_bytes": max(r.max_request_bytes for r in rows if r.tool == "aksfw"),
        "peer_max_request_bytes": max(
            r.max_request_bytes for r in rows if r.tool == "pan-os-python"
        ),
    }
    for step in ("update 5%", "unchanged"):
        key = "update_5pct" if step == "update 5%" else "noop"
        summary[f"{key}_bytes"] = row("aksfw", 10_000, step).bytes_sent
        summary[f"{key}_bytes_panos_python"] = row("pan-os-python", 10_000, step).bytes_sent
    return summary
