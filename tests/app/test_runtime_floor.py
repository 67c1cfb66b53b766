"""The oldest azure-functions that requirements.txt admits, installed and run through
Microsoft's real runtime: a floor that admits a release the app cannot run on fails here.

The release is installed once (`pip install --target`, cached in `.venv-runtime/floors/`) and
put before the runtime environment's own azure-functions for one worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from aksfw_core.azure.events import watcher_event
from aksfw_local.fakes.kube_api import service
from aksfw_local.runtime import inputs
from aksfw_local.runtime.worker import REPO_ROOT, RUNTIME_PYTHON, RUNTIME_VENV, running_app
from tests.support.flow import CLUSTER
from tests.support.runtime import WEB, WEB_TAGS, sample, settle

FLOORS = RUNTIME_VENV / "floors"
PIP_TIMEOUT_S = 300


def floor(requirements: list[str], name: str = "azure-functions") -> str:
    """The lowest version of `name` that the requirement lines admit (its `>=` bound)."""
    (requirement,) = (Requirement(line) for line in requirements if Requirement(line).name == name)
    (bound,) = (spec.version for spec in requirement.specifier if spec.operator == ">=")
    return bound


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def installed_floor(version: str) -> Path:
    """azure-functions `version` in a folder of its own (installed on first use)."""
    target = FLOORS / f"azure-functions-{version}"
    done = target / ".installed"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [str(RUNTIME_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--target", str(target), f"azure-functions=={version}"],
            check=True, timeout=PIP_TIMEOUT_S,
        )  # fmt: skip
        done.touch()
    return target


def test_the_package_and_the_requirements_admit_the_same_floor():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert floor(project["dependencies"]) == floor(
        requirement_lines(REPO_ROOT / "requirements.txt")
    )


@pytest.mark.subprocess  # pip, then a Python 3.13 runtime worker
def test_the_lowest_admitted_azure_functions_runs_events_and_http(world):
    version = floor(requirement_lines(REPO_ROOT / "requirements.txt"))
    world.kube.services = [service(**WEB)]
    with running_app(os.environ, python_path=installed_floor(version)) as worker:
        assert Version(worker.versions["azureFunctions"]) == Version(version)
        world.resyncs.handler = worker.queue_handler("cluster_resync")
        world.updates.handler = worker.queue_handler("panorama_updates")
        events = [
            sample("lb-write.eventgrid.json"),
            sample("cluster-write.cloudevent.json"),
            watcher_event(CLUSTER, "w-1", datetime.now(UTC)),
        ]
        for document in events:
            invocation = worker.invoke("resource_event", inputs.event_grid(document))
            assert invocation.ok, f"{document['id']}: {invocation.error}"
            assert not invocation.events("event.malformed")
        status = worker.invoke("status", inputs.http_request("GET", "status"))
        assert status.ok and status.http_status == 200, status.error
        resync = worker.invoke("resync", inputs.http_request("POST", "resync", b"{}"))
        assert resync.ok and resync.http_json() == {"queued": [CLUSTER]}, resync.error
        settle(world, worker)
    assert world.registered() == {"20.0.0.1": WEB_TAGS}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["azure-functions>=1.25,<3"], "1.25"),
        (["requests>=2", "azure-functions<3,>=1.26.0"], "1.26.0"),
    ],
)
def test_the_floor_is_read_from_the_lower_bound(lines, expected):
    assert floor(lines) == expected
