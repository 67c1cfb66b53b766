"""What the operator verbs answer, as types: `StatusReport` (`GET /api/status`),
`UninstallReport` and `CancelReport` (`POST /api/uninstall`); `as_json()` gives the documented JSON
(docs/app.md), the one place its field names are written. The replay's report is
`pipeline.replay.ReplayReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aksfw_core.app.uninstall_gate import Pause, iso
from aksfw_core.pipeline.state import CanaryRecord, HeldBack, StateSummary


@dataclass
class ClusterStatus:
    """One cluster: monitored now (from the inventory), or only known by applied state."""

    id: str
    tag_name: str
    monitored: bool
    name: str | None = None
    """The AKS name (monitored clusters only)."""
    targets: list[StateSummary] = field(default_factory=list)
    last_watcher_event: float | None = None
    held_back: HeldBack | None = None
    """A mass removal waiting for its confirming list."""

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.id}
        if self.monitored:
            document["name"] = self.name
        document |= {
            "tagName": self.tag_name,
            "monitored": self.monitored,
            "targets": [
                {
                    "target": summary.target,
                    "lastApplied": iso(summary.applied_at),
                    "version": summary.version,
                    "ips": summary.ips,
                    "tags": summary.tags,
                    "lastError": summary.last_error,
                    "lastErrorAt": iso(summary.last_error_at),
                    "missingSince": iso(summary.missing_since),
                }
                for summary in self.targets
            ],
            "lastWatcherEvent": iso(self.last_watcher_event),
        }
        if self.held_back is not None:
            document["heldBack"] = {
                "since": iso(self.held_back.since),
                "pairsToRemove": self.held_back.pairs_to_remove,
            }
        return document


@dataclass(frozen=True)
class StatusReport:
    """Per cluster and target, the queues' depths, and whether an uninstall runs."""

    clusters: list[ClusterStatus]
    queues: dict[str, int]
    inventory_error: str | None
    """Why the inventory could not be read (the clusters are then those with state)."""
    uninstalling: Pause | None
    """The uninstall's pause, if one runs."""
    canaries: list[CanaryRecord] = field(default_factory=list)
    """Per target, its canary as the timer last left it."""

    def as_json(self) -> dict[str, Any]:
        pause = self.uninstalling
        return {
            "clusters": [cluster.as_json() for cluster in self.clusters],
            "canaries": [
                {
                    "target": record.target,
                    "lastCheck": iso(record.checked_at),
                    "lastRegistered": iso(record.registered_at),
                    "lastAmnesia": iso(record.forgot_at),
                    "lastError": record.error,
                    "lastErrorAt": iso(record.error_at),
                }
                for record in self.canaries
            ],
            "queues": self.queues,
            "inventoryError": self.inventory_error,
            "uninstallingUntil": iso(pause.until) if pause else None,
            "uninstallingSince": iso(pause.since) if pause else None,
            "uninstallingBy": pause.by if pause else None,
        }


@dataclass(frozen=True)
class UninstallReport:
    """The (cluster, target) pairs an uninstall tombstoned, or would (`dry_run`)."""

    dry_run: bool
    pause: Pause | None
    """The pause it started (None for a dry run)."""
    targets: list[StateSummary]
    canaries: list[tuple[str, bool]] = field(default_factory=list)
    """(target, removed): the canaries it unregistered, or would (`removed` false)."""

    def as_json(self) -> dict[str, Any]:
        pause = self.pause
        return {
            "dryRun": self.dry_run,
            "heldUntil": iso(pause.until) if pause else None,
            "heldBy": pause.by if pause else None,
            "canaries": [
                {"target": target, "removed": removed} for target, removed in self.canaries
            ],
            "targets": [
                {
                    "cluster": summary.cluster_id,
                    "tagName": summary.tag_name,
                    "target": summary.target,
                    "ips": summary.ips,
                    "tags": summary.tags,
                }
                for summary in self.targets
            ],
            "totals": {
                "clusters": len({summary.cluster_id.casefold() for summary in self.targets}),
                "targets": len(self.targets),
                "ips": sum(summary.ips for summary in self.targets),
                "tags": sum(summary.tags for summary in self.targets),
            },
        }


@dataclass(frozen=True)
class CancelReport:
    """What `POST /api/uninstall {"cancel": true}` ended: the pause (None when none ran),
    who cancelled it, and when."""

    cancelled: Pause | None
    by: str
    at: float

    def as_json(self) -> dict[str, Any]:
        pause = self.cancelled
        return {
            "cancelled": pause is not None,
            "wasUntil": iso(pause.until) if pause else None,
            "startedAt": iso(pause.since) if pause else None,
            "startedBy": pause.by if pause else None,
            "cancelledBy": self.by,
            "cancelledAt": iso(self.at),
        }
