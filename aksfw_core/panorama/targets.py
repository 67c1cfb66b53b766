"""Which targets the configuration names: `panorama`, the configured serials, and the
connected firewalls of the configured device groups, as Panorama lists them.

One `TargetResolver` per process serves both the resyncer (where to send snapshots) and
the applier (whether a snapshot's target is one aksfw may write to). The connected-firewall
list is kept for a short time, so neither a timer fan-out nor a burst of snapshots asks
Panorama for `show devicegroups` more than once per lifetime.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aksfw_core.config import PanoramaTargets
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.client import PanoramaClient
from aksfw_core.rules.messages import PANORAMA_TARGET

log = logging.getLogger(__name__)


class TargetResolver:
    """The targets the configuration names, with the device groups' connected firewalls
    read from Panorama and cached."""

    def __init__(
        self,
        targets: PanoramaTargets,
        panorama: Callable[[], PanoramaClient],
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._targets = targets
        self._panorama = panorama
        limits = limits or Limits()
        self._ttl_s = limits.connected_firewalls_ttl_s
        # A firewall that just connected is found quickly, and a flood of messages naming
        # unknown serials costs at most one Panorama call per interval.
        self._early_refresh_interval_s = limits.connected_firewalls_early_refresh_s
        self._clock = clock
        self._lock = threading.Lock()  # the Functions worker may run handlers in threads
        self._connected: tuple[str, ...] | None = None
        self._read_at = 0.0

    def names(self) -> list[str]:
        """`panorama`, the configured serials, and the connected firewalls of the device
        groups, each once, in that order.

        Raises:
            AuthError, NonRetryable, Retryable: Panorama could not list its device groups.
        """
        targets = [PANORAMA_TARGET] if self._targets.panorama else []
        targets += list(self._targets.serials)
        targets += self._connected_firewalls(refresh=False)
        return list(dict.fromkeys(targets))

    def is_configured(self, target: str) -> bool:
        """Whether the configuration names this target (serials compare exactly).

        A serial that the cached list does not hold makes it read again first, at most
        once per `limits.connected_firewalls_early_refresh_s`.

        Raises:
            AuthError, NonRetryable, Retryable: Panorama could not list its device groups.
        """
        if target == PANORAMA_TARGET:
            return self._targets.panorama
        if target in self._targets.serials:
            return True
        if not self._targets.device_groups:
            return False
        if target in self._connected_firewalls(refresh=False):
            return True
        return target in self._connected_firewalls(refresh=True)

    def _connected_firewalls(self, *, refresh: bool) -> tuple[str, ...]:
        if not self._targets.device_groups:
            return ()
        with self._lock:
            connected, age = self._connected, self._clock() - self._read_at
            if (
                connected is None
                or age >= self._ttl_s
                or (refresh and age >= self._early_refresh_interval_s)
            ):
                connected = self._read()
                self._connected, self._read_at = connected, self._clock()
            return connected

    def _read(self) -> tuple[str, ...]:
        with self._panorama() as panorama:
            groups = panorama.connected_firewalls(self._targets.device_groups)
        for group, serials in groups.items():
            if not serials:
                log_event(log, "targets.device_group_empty", logging.WARNING, device_group=group)
        return tuple(dict.fromkeys(serial for serials in groups.values() for serial in serials))
