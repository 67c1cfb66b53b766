"""Sync of a large cluster against the local Panorama simulator (`make bench`).

Measures, for N LoadBalancer Services (default 20,000, one IP and two labels each):
computing the tags, a cold sync (everything registered), a sync after 5% of the
Services changed a label, and an unchanged resync. Prints one JSON line.
The simulator runs in the same process, so its XML work shares the CPU with aksfw's:
the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from aksfw_core.model import Service
from aksfw_core.panorama.client import ApiKey, PanoramaClient, PanoramaSettings
from aksfw_core.sync import SyncReport, sync_cluster
from aksfw_core.tags import compute_tags
from tests.fakes.panorama import PanoramaSimulator

KEY = "bench-key"


def services(count: int, generation: int = 0, changed_every: int = 20) -> list[Service]:
    """`count` Services; with generation 1, every `changed_every`-th has a new label."""
    result = []
    for i in range(count):
        version = f"v{generation}" if generation and i % changed_every == 0 else "v0"
        labels = {"app": f"app{i % 200}", "version": version}
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        result.append(Service(f"ns{i % 40}", f"svc{i}", labels, (ip,)))
    return result


def timed_sync(
    wanted_services: Sequence[Service], client: PanoramaClient
) -> tuple[float, SyncReport]:
    started = time.perf_counter()
    report = sync_cluster(compute_tags("bench", wanted_services), client)
    return time.perf_counter() - started, report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=20_000)
    count = parser.parse_args(argv).services

    cold_services = services(count)
    started = time.perf_counter()
    compute_tags("bench", cold_services)
    compute_s = time.perf_counter() - started

    with PanoramaSimulator(api_key=KEY) as panorama:
        settings = PanoramaSettings(url=panorama.url)
        with PanoramaClient(settings, ApiKey(KEY)) as client:
            cold_s, cold = timed_sync(cold_services, client)
            update_s, update = timed_sync(services(count, generation=1), client)
            noop_s, noop = timed_sync(services(count, generation=1), client)
        assert len(panorama.registered()) == count

    print(
        json.dumps(
            {
                "services": count,
                "compute_tags_s": round(compute_s, 3),
                "cold_sync_s": round(cold_s, 3),
                "cold_write_requests": cold.write_requests,
                "cold_read_requests": cold.read_requests,
                "update_5pct_s": round(update_s, 3),
                "update_5pct_write_requests": update.write_requests,
                "noop_sync_s": round(noop_s, 3),
                "noop_write_requests": noop.write_requests,
            }
        )
    )


if __name__ == "__main__":
    main()
