"""Tag computation throughput, and the command-line sync (read Panorama, diff, write)."""

from __future__ import annotations

import time

from aksfw_core.config import PanoramaSettings
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.rules.model import Service
from aksfw_core.rules.tags import compute_tags
from aksfw_local.fakes.panorama import PanoramaSimulator

KEY = "bench-api-key"


def services(count: int) -> list[Service]:
    return [
        Service(f"ns{i % 40}", f"svc{i}", {"app": f"app{i % 200}", "tier": "web"},
                (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",))
        for i in range(count)
    ]  # fmt: skip


def tags_per_second(count: int) -> int:
    listed = services(count)
    started = time.perf_counter()
    compute_tags("bench", listed)
    return int(count / (time.perf_counter() - started))


def cli_sync(count: int) -> float:
    """What `aksfw sync` does for `count` Services on an empty Panorama (seconds)."""
    wanted = compute_tags("bench", services(count))
    with (
        PanoramaSimulator(api_key=KEY) as sim,
        PanoramaClient(PanoramaSettings(url=sim.url), api_key(KEY)) as client,
    ):
        started = time.perf_counter()
        sync_cluster(wanted, client)
        seconds = time.perf_counter() - started
        assert len(sim.registered()) == count
    return round(seconds, 3)
