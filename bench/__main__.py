"""Benchmarks: `python -m bench [--quick]` (`make bench`).

Prints a table for people and ends with one line of JSON for machines. Every scenario
runs against local servers on 127.0.0.1 (the Panorama simulator, Azurite, the fakes) in
this process, so the simulator's own XML work shares the CPU: figures are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bench import apply, e2e, fan_out, scale, throughput, watch_e2e


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 2 minutes)")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="200 clusters x 30 firewalls, a 1,000-event storm, a 300,000-IP audit, the"
        " timer's fan-out to 2,000 clusters (minutes)",
    )
    options = parser.parse_args(argv)
    if options.scale:
        print("aksfw at scale: 200 clusters x 30 device-group firewalls", flush=True)
        figures = scale.run()
        print(scale.table(figures), flush=True)
        fanned_out = fan_out.timer_fan_out_apart()
        figures.update(fanned_out)
        print(fan_out.summary(fanned_out))
        print(json.dumps(figures, sort_keys=True))
        return 0
    quick = options.quick

    rows: list[apply.Row] = []
    summary: dict[str, object] = {}
    print("aksfw benchmarks" + (" (quick)" if quick else ""), flush=True)

    for ips in (10_000, 50_000):
        with_peer = ips == 10_000 or not quick
        # pan-os-python's batch searches its message once per IP: at 50,000 IPs it takes
        # minutes, more under tracemalloc, so peak memory is measured at 10,000 IPs only
        # (and not in a quick run, which it would make twice as long).
        rows += apply.compare(ips, with_peer=with_peer, memory=ips == 10_000 and not quick)
    summary.update(apply.summarise(rows))
    print(apply.table(rows), flush=True)

    summary["sync_20k_s"] = throughput.cli_sync(20_000)
    summary["tags_per_s"] = throughput.tags_per_second(100_000)
    print(f"\ncommand-line sync of 20,000 Services: {summary['sync_20k_s']} s")
    print(f"tag computation: {summary['tags_per_s']:,} Services/s (100,000 Services)")

    latencies = e2e.event_to_registered(isolated=10 if quick else 20, sequence=20)
    summary.update(latencies)
    print(
        f"event → registered through the functions and Azurite queues (no polling),"
        f" {latencies['e2e_changes']} isolated changes: p50 {latencies['e2e_p50_ms']} ms,"
        f" p95 {latencies['e2e_p95_ms']} ms; {latencies['e2e_sequence_changes']} changes in a row"
        f" on one cluster: p50 {latencies['e2e_sequence_p50_ms']} ms,"
        f" p95 {latencies['e2e_sequence_p95_ms']} ms"
    )
    watched = watch_e2e.label_to_registered(changes=30)
    summary.update(watched)
    print(
        f"label change → registered through aksfw watch, Event Grid and the queues (no"
        f" debounce, no polling), {watched['watch_changes']} changes:"
        f" p50 {watched['watch_p50_ms']} ms, p95 {watched['watch_p95_ms']} ms"
    )
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
