"""One process's engine: the settings and every part the triggers and the operator verbs
use, wired once from the app settings (`Engine.from_environ`). No trigger logic here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aksfw_core.app.uninstall_gate import UninstallGate
from aksfw_core.azure.access import ClusterAccess
from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.egress import OutboundAddresses
from aksfw_core.azure.identity import azure_credential
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.azure.node_subnets import NodeSubnets
from aksfw_core.config import Settings, load_settings, require_app_settings
from aksfw_core.errors import InputError
from aksfw_core.panorama.canary import canary_for
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.applier import Applier
from aksfw_core.pipeline.canaries import CanaryWatch
from aksfw_core.pipeline.coordination import Coordination
from aksfw_core.pipeline.egress_tags import EgressTags
from aksfw_core.pipeline.list_budgets import ListBudgets
from aksfw_core.pipeline.node_subnet_tags import NodeSubnetTags
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.resyncer import Resyncer
from aksfw_core.pipeline.shared_tables import SharedTables
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.messages import PANORAMA_TARGET
from aksfw_core.telemetry import Telemetry


class Clock:
    """The one clock of an engine, shared by every part; tests point `source` elsewhere."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self.source = source

    def __call__(self) -> float:
        """Seconds since the epoch."""
        return self.source()


@dataclass(frozen=True)
class Engine:
    """The parts of one process, built on one storage account, one credential, one clock."""

    settings: Settings
    queues: MessageQueues
    store: StateStore
    discovery: ClusterDiscovery
    resyncer: Resyncer
    applier: Applier
    coordination: Coordination
    gate: UninstallGate
    clock: Clock
    telemetry: Telemetry
    canaries: CanaryWatch
    budgets: ListBudgets
    """Each cluster's list budget: when its changes make it listed."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], telemetry: Telemetry | None = None) -> Engine:
        """Build from the app settings; `telemetry` defaults to the global providers'.

        Raises:
            InputError: a missing or invalid setting, naming it.
        """
        settings = load_settings(environ)
        panorama = require_app_settings(settings)  # as `aksfw config check` checks
        key = environ.get("PANORAMA_API_KEY")
        if not key:
            raise InputError("PANORAMA_API_KEY is not set (a Key Vault reference in Azure)")
        secret = api_key(key)
        clock = Clock()
        limits = settings.limits
        credential = azure_credential(environ)
        account = StorageAccount.from_environ(environ, credential, limits)
        queues = MessageQueues(account, limits)
        store = StateStore(account)
        discovery = ClusterDiscovery(settings, credential)
        coordination = Coordination(account, clock=clock, max_skew_s=limits.max_version_skew_s)
        tables = SharedTables(account, coordination, clock=clock, limits=limits)
        telemetry = telemetry or Telemetry(clock=clock)

        def panorama_for(target: str) -> PanoramaClient:
            return PanoramaClient(
                panorama.for_target(target), secret, telemetry.tracer, telemetry.registered_ips
            )

        def monitored(cluster_id: str) -> MonitoredCluster | None:
            return discovery.inventory_knowing(cluster_id).find(cluster_id)

        # One resolver, so the resyncer and the applier share its firewall-list cache.
        targets = TargetResolver(
            panorama.targets, lambda: panorama_for(PANORAMA_TARGET), limits=limits
        )
        resyncer = Resyncer(
            discovery,
            ClusterAccess(settings, credential),
            queues,
            store,
            targets=targets,
            clock=clock,
            node_subnets=NodeSubnetTags(NodeSubnets(settings, credential).read, store),
            egress=EgressTags(OutboundAddresses(settings, credential).read, store),
            limits=limits,
            tag_options=lambda cluster: settings.tag_options_for(settings.listed(cluster.id)),
        )
        applier = Applier(
            store,
            panorama_for,
            clusters=monitored,
            targets=targets,
            lock=lambda cluster_id, target: coordination.apply_lock(
                cluster_id, target, limits.apply_lock_wait_s
            ),
            max_version_skew_s=limits.max_version_skew_s,
            clock=clock,
            tables=tables,
        )
        gate = UninstallGate(coordination, clock, limits.uninstall_pause_s)
        canaries = CanaryWatch(
            canary_for(account.identity),
            store,
            queues,
            targets,
            panorama_for,
            clock=clock,
            limits=limits,
            counted=telemetry.canary_checked,
            tables=tables,
        )
        return cls(
            settings,
            queues,
            store,
            discovery,
            resyncer,
            applier,
            coordination,
            gate,
            clock,
            telemetry,
            canaries,
            ListBudgets(account, limits, clock),
        )

    def version(self) -> int:
        """A new snapshot version: this clock in nanoseconds (later snapshots win)."""
        return int(self.clock() * 1e9)
