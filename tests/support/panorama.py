"""The Panorama simulator's API key, retries without waits, and client settings for a
simulator: what every test that talks to Panorama shares."""

from __future__ import annotations

from aksfw_core.config import PanoramaSettings
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_local.fakes.panorama import PanoramaSimulator

API_KEY = "test-key-0123456789abcdef"
FAST_RETRY = RetrySettings(attempts=3, initial_wait_s=0.0, max_wait_s=0.0, max_retry_after_s=60)


def settings_for(simulator: PanoramaSimulator, **overrides: object) -> PanoramaSettings:
    options: dict[str, object] = {
        "url": simulator.url,
        "retry": FAST_RETRY,
        "limits": Limits(panorama_read_timeout_s=5),
    }
    options.update(overrides)
    return PanoramaSettings(**options)  # type: ignore[arg-type]
