"""`make demo`: sync a sample service list into a local Panorama simulator and show the
registered table, then show that a second sync sends no write at all.

Runs the real command line (`python -m aksfw_core`) against the simulator from the tests,
on 127.0.0.1 only; the simulator stops when the demo ends.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.fakes.panorama import PanoramaSimulator

SERVICES = Path(__file__).with_name("services.json")
DEMO_KEY = "demo-api-key"
CLUSTER = [
    "--cluster",
    "prod1",
    "--selector",
    "frontend=tier in (frontend)",
    "--selector",
    "shop=app@shop",
]


def aksfw(*argv: str) -> dict[str, object]:
    """Run the command line; echo its warnings; return its JSON output."""
    print(f"$ aksfw {shlex.join(argv)}")
    env = {**os.environ, "PANORAMA_API_KEY": DEMO_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "aksfw_core", *argv],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    sys.stdout.write("".join(f"  {line}\n" for line in done.stderr.splitlines()))
    if done.returncode != 0:
        raise SystemExit(f"aksfw exited {done.returncode}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


def print_table(registered: dict[str, object]) -> None:
    width = max((len(ip) for ip in registered), default=2)
    print(f"  {'IP'.ljust(width)}  TAGS")
    for ip, tags in registered.items():
        assert isinstance(tags, list)
        print(f"  {ip.ljust(width)}  {', '.join(tags)}")


def main() -> None:
    with PanoramaSimulator(api_key=DEMO_KEY) as panorama:
        # A tag someone else registered on an IP the cluster uses: aksfw must leave it alone.
        panorama.seed("10.240.0.7", ["corp.monitoring"])
        print(f"Panorama simulator at {panorama.url} (10.240.0.7 already has corp.monitoring)\n")

        report = aksfw("sync", *CLUSTER, "--services", str(SERVICES), "--panorama", panorama.url)
        print(f"  registered {report['registered']} IP-tags in {report['requests']} request(s)\n")

        print_table(aksfw("registered", "--panorama", panorama.url))
        print()

        again = aksfw("sync", *CLUSTER, "--services", str(SERVICES), "--panorama", panorama.url)
        print(f"  second sync: {again['requests']} write request(s); nothing changed\n")


if __name__ == "__main__":
    main()
