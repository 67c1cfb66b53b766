"""Find the AKS clusters to monitor: those carrying the discovery tag in the scanned
subscriptions, and those listed explicitly (an explicit entry for a tagged cluster gives
it its alias and selectors). The inventory is kept for `inventory_ttl_s` (about a minute)
and refreshed early at most once in that time, for the first managed cluster it does not
know: an event storm naming unknown clusters costs one early read. A survey (`aksfw
clusters`) also says which clusters it left out, and why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from itertools import islice
from typing import Any

from azure.core.credentials import TokenCredential

from aksfw_core.azure.arm import NotFound, call, container_service
from aksfw_core.azure.inventory import DiscoveryReport, Inventory, MonitoredCluster
from aksfw_core.config import ClusterConfig, Settings, TokenAccess
from aksfw_core.errors import AksfwError, ConfigError, InputError, NonRetryable
from aksfw_core.logs import log_event
from aksfw_core.rules.monitoring import Skipped, SkipReason, discovery_tag_skip, skip_for_refusal
from aksfw_core.rules.resource_ids import managed_cluster_id

log = logging.getLogger(__name__)


class ClusterDiscovery:
    """Builds and caches the inventory from Resource Manager.

    A failed call raises and leaves the cached inventory as it was: nothing is
    forgotten because Azure could not be read. Concurrent invocations of one process share
    one read: whoever finds the inventory expired reads it while the others wait for it.
    """

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._ttl_s = settings.limits.inventory_ttl_s
        self._clock = clock
        self._cached: Inventory | None = None
        self._read_at = 0.0
        self._refreshed_early = False
        self._reading = threading.RLock()

    def inventory(self) -> Inventory:
        """The inventory, from the cache while it is fresh.

        Raises:
            AuthError, Retryable, NonRetryable: Resource Manager could not be read.
            ConfigError: two clusters would tag under the same name (logged as
                `config.invalid`).
        """
        with self._reading:
            if self._cached is None or self._clock() - self._read_at >= self._ttl_s:
                return self.refresh()
            return self._cached

    def inventory_knowing(self, cluster_id: str) -> Inventory:
        """The inventory, refreshed first if it does not know `cluster_id` and has not been
        refreshed early yet in its lifetime.

        However many distinct unknown clusters an event storm names, it costs at most one
        early read per inventory lifetime (`limits.inventory_ttl_s`).

        Raises:
            AuthError, Retryable, NonRetryable, ConfigError: as `inventory`.
        """
        with self._reading:
            inventory = self.inventory()
            if inventory.find(cluster_id) is None and not self._refreshed_early:
                inventory = self.refresh()
                self._refreshed_early = True
            return inventory

    def forget(self, cluster_id: str) -> None:
        """Drop a deleted cluster from the cached inventory, without reading Resource
        Manager: a storm of delete events costs no read, whichever clusters it names (the
        next read after `limits.inventory_ttl_s` sees Azure as it is)."""
        with self._reading:
            gone = None if self._cached is None else self._cached.find(cluster_id)
            if self._cached is not None and gone is not None:
                self._cached = Inventory(tuple(c for c in self._cached.clusters if c is not gone))

    def refresh(self) -> Inventory:
        """Read Resource Manager now.

        Raises:
            AuthError, Retryable, NonRetryable, ConfigError: as `inventory`.
        """
        with self._reading:
            return self._read()

    def survey(self) -> DiscoveryReport:
        """Read Resource Manager now for a person (`aksfw clusters`): the inventory, and
        every cluster left out with why (no discovery tag, another tag value, no access,
        not found). A subscription or a listed cluster that Resource Manager refuses (403)
        or does not know (404) is reported instead of failing the read, so the cache is
        left alone: the app never acts on an inventory that could not see everything.

        Raises:
            AuthError, Retryable, NonRetryable, ConfigError: as `inventory` (401, throttling
                and server faults still stop the read).
        """
        with self._reading:
            return self._scan(report_refusals=True)

    def _read(self) -> Inventory:
        started = self._clock()
        inventory = self._scan(report_refusals=False).inventory
        self._cached, self._read_at = inventory, self._clock()
        self._refreshed_early = False
        log_event(
            log,
            "discovery.refresh",
            clusters=len(inventory.clusters),
            subscriptions=len(self._settings.subscriptions),
            duration_ms=round((self._clock() - started) * 1000),
        )
        return inventory

    def _scan(self, report_refusals: bool) -> DiscoveryReport:
        explicit = {managed_cluster_id(c.id).top_level_id(): c for c in self._settings.clusters}
        wanted = (self._settings.discovery.tag_key, self._settings.discovery.tag_value)
        found: dict[str, MonitoredCluster] = {}
        skipped: list[Skipped] = []
        for subscription in self._settings.subscriptions:
            for raw in self._listed(subscription, report_refusals, skipped):
                key = managed_cluster_id(raw["id"]).top_level_id()
                config = explicit.get(key)  # an explicit entry, tagged or not, is monitored
                why = None if config else discovery_tag_skip(raw.get("tags"), *wanted)
                if why is None:
                    found[key] = _monitored(raw, config, self._settings)
                else:
                    skipped.append(Skipped(str(raw["id"]), *why))
        for key, config in explicit.items():
            if key not in found and (got := self._explicit(config, report_refusals, skipped)):
                found[key] = _monitored(got, config, self._settings)
        try:
            inventory = Inventory(tuple(found[key] for key in sorted(found)))
        except InputError as error:
            # The settings must change (an alias), not the message or event that asked.
            log_event(log, "config.invalid", logging.ERROR, error=str(error))
            raise ConfigError(str(error)) from None
        return DiscoveryReport(inventory, tuple(sorted(skipped, key=lambda s: s.id.casefold())))

    def _listed(
        self, subscription: str, report_refusals: bool, skipped: list[Skipped]
    ) -> list[dict[str, Any]]:
        """The subscription's clusters; in a survey, none when it cannot be listed (403,
        404), said in `skipped`."""
        try:
            return self._list(subscription)
        except AksfwError as error:
            reason = skip_for_refusal(error.status) if report_refusals else None
            if reason is None:
                raise
            skipped.append(Skipped(f"/subscriptions/{subscription}", reason, str(error)))
            return []

    def _explicit(
        self, config: ClusterConfig, report_refusals: bool, skipped: list[Skipped]
    ) -> dict[str, Any] | None:
        """A listed cluster outside the scanned subscriptions' lists; None when it is gone
        (always left out, as a deleted cluster) or, in a survey, refused (403)."""
        try:
            return self._get(config)
        except NotFound as error:
            log_event(log, "discovery.cluster_missing", logging.WARNING, cluster=config.id)
            skipped.append(Skipped(config.id, SkipReason.NOT_FOUND, str(error)))
            return None
        except AksfwError as error:
            reason = skip_for_refusal(error.status) if report_refusals else None
            if reason is None:
                raise
            skipped.append(Skipped(config.id, reason, str(error)))
            return None

    def _list(self, subscription: str) -> list[dict[str, Any]]:
        most = self._settings.limits.arm_max_clusters
        what = f"list managed clusters of subscription {subscription}"
        with container_service(
            self._credential, subscription, self._settings.arm_endpoint, self._settings.limits
        ) as client:
            # Pages are read only up to the cap: a list that never ends stops there.
            found = call(
                what,
                lambda: [c.as_dict() for c in islice(client.managed_clusters.list(), most + 1)],
            )
        if len(found) > most:
            raise NonRetryable(f"{what}: more than {most} clusters (limits.armMaxClusters)")
        return found

    def _get(self, config: ClusterConfig) -> dict[str, Any]:
        """The listed cluster's resource.

        Raises:
            NotFound: Resource Manager does not know it.
            AuthError, Retryable, NonRetryable: as `inventory`.
        """
        resource = managed_cluster_id(config.id)
        group, name = resource.resource_group or "", resource.path[1]
        with container_service(
            self._credential,
            resource.subscription,
            self._settings.arm_endpoint,
            self._settings.limits,
        ) as client:
            cluster = call(f"get {config.id}", lambda: client.managed_clusters.get(group, name))
            return dict(cluster.as_dict())


def _monitored(
    raw: dict[str, Any], config: ClusterConfig | None, settings: Settings
) -> MonitoredCluster:
    name = str(raw["name"])
    node_group = _node_resource_group(raw)
    token = config.credential if config and isinstance(config.credential, TokenAccess) else None
    return MonitoredCluster(
        id=str(raw["id"]),
        name=name,
        tag_name=(config.alias if config and config.alias else name),
        node_resource_group=node_group,
        selectors=config.selectors if config else (),
        credential="token" if token else "azure",
        token=token,
        node_subnets=settings.node_subnets_for(config),
        egress_tags=settings.egress_tags_for(config),
    )


def _node_resource_group(raw: dict[str, Any]) -> str:
    # as_dict() flattens properties into snake_case; accept the REST spelling too.
    for source in (raw, raw.get("properties") or {}):
        for key in ("node_resource_group", "nodeResourceGroup"):
            if isinstance(source.get(key), str) and source[key]:
                return str(source[key])
    raise NonRetryable(f"{raw.get('id')}: Resource Manager returned no nodeResourceGroup")
