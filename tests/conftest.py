"""Shared fixtures: the Panorama simulator, a client for it, and retries without waits; the
markers `make test-fast` selects on.

- `azurite`: added here to every test whose fixtures include `azurite` (`storage`, `world`
  and whatever builds on them); set by hand on a test that starts Azurite itself.
- `subprocess`: set by hand on a test that starts a process (Azurite aside). Under
  `AKSFW_TEST_FAST=1` (`make test-fast`) starting one fails the test, so a test that is
  not marked fails loudly there instead of making the fast run slow.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from aksfw_core import retry
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_local.fakes.panorama import PanoramaSimulator
from tests.support.panorama import API_KEY, settings_for

pytest_plugins = ["tests.support.azurite_fixtures", "tests.support.flow"]

FAST = os.environ.get("AKSFW_TEST_FAST") == "1"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects on the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "azurite" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.azurite)


class _NoProcess:
    """`subprocess.Popen` under `make test-fast`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("test-fast: this test starts a subprocess; mark it subprocess")


@pytest.fixture(autouse=True)
def no_process_when_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `AKSFW_TEST_FAST=1`, a test that starts a process fails (see the docstring)."""
    if FAST:
        monkeypatch.setattr(subprocess, "Popen", _NoProcess)


@pytest.fixture(autouse=True)
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries never really wait in tests; the waits they asked for are recorded here."""
    waits: list[float] = []
    monkeypatch.setattr(retry, "pause", waits.append)
    return waits


@pytest.fixture
def panorama() -> Iterator[PanoramaSimulator]:
    simulator = PanoramaSimulator(
        api_key=API_KEY, firewalls={"007000000001": "dg-east", "007000000002": "dg-west"}
    )
    with simulator:
        yield simulator
    assert simulator.errors == []


@pytest.fixture
def client(panorama: PanoramaSimulator) -> Iterator[PanoramaClient]:
    with PanoramaClient(settings_for(panorama), api_key(API_KEY)) as panorama_client:
        yield panorama_client
