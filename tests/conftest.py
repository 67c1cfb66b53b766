"""Shared fixtures: the Panorama simulator, a client for it, and retries without waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aksfw_core import retry
from aksfw_core.config import PanoramaSettings
from aksfw_core.limits import Limits
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.retry import RetrySettings
from aksfw_local.fakes.panorama import PanoramaSimulator

pytest_plugins = ["tests.azurite_fixtures", "tests.flow"]

API_KEY = "test-key-0123456789abcdef"
FAST_RETRY = RetrySettings(attempts=3, initial_wait_s=0.0, max_wait_s=0.0, max_retry_after_s=60)


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


def settings_for(simulator: PanoramaSimulator, **overrides: object) -> PanoramaSettings:
    options: dict[str, object] = {
        "url": simulator.url,
        "retry": FAST_RETRY,
        "limits": Limits(panorama_read_timeout_s=5),
    }
    options.update(overrides)
    return PanoramaSettings(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(panorama: PanoramaSimulator) -> Iterator[PanoramaClient]:
    with PanoramaClient(settings_for(panorama), api_key(API_KEY)) as panorama_client:
        yield panorama_client
