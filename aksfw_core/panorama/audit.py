"""Make one Panorama target hold exactly the tags one cluster wants: read what is
registered, plan the difference over the cluster's own tags, apply it.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from aksfw_core.errors import AuthError
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.panorama.client import PanoramaClient
from aksfw_core.panorama.xmlapi import EntryMessage
from aksfw_core.rules.model import IpTags, ip_tags_json
from aksfw_core.rules.plan import MassRemoval, TagPlan, owned_only, plan_changes, removal_of
from aksfw_core.rules.tags import ClusterTags, service_ownership

log = logging.getLogger(__name__)


class WriteRefused(AuthError):
    """Panorama answered the sync's read with the credential and refused its write: the key
    is good, and its administrator's role may read (Operational Requests) but not register
    (User-ID Agent)."""


@dataclass(frozen=True)
class SyncReport:
    """The outcome of one sync of one cluster to one target."""

    cluster: str
    target: str
    plan: TagPlan
    wanted_ips: int
    wanted_tags: int
    write_requests: int
    read_requests: int
    dry_run: bool
    failures: tuple[EntryMessage, ...] = ()
    held_back: MassRemoval | None = None
    """The plan would remove most of the cluster's pairs and was not applied."""

    @property
    def applied(self) -> bool:
        """The plan was sent: neither a dry run nor held back."""
        return not self.dry_run and self.held_back is None

    def pairs(self) -> dict[str, int]:
        """IP-tag pairs: `registered` and `unregistered` count what was sent,
        `wouldRegister` and `wouldUnregister` what a dry run or a held-back sync left
        undone (one of the two pairs is always 0)."""
        done = self.plan if self.applied else TagPlan()
        undone = TagPlan() if self.applied else self.plan
        return {
            "registered": done.register_count,
            "unregistered": done.unregister_count,
            "wouldRegister": undone.register_count,
            "wouldUnregister": undone.unregister_count,
        }

    def as_json(self) -> dict[str, Any]:
        """The report as printed by `aksfw sync` (`pairs` says what its counts mean)."""
        report: dict[str, Any] = {
            "cluster": self.cluster,
            "target": self.target,
            "ips": self.wanted_ips,
            "tags": self.wanted_tags,
            **self.pairs(),
            "requests": self.write_requests,
            "readRequests": self.read_requests,
            "dryRun": self.dry_run,
            "failures": [
                {"ip": f.ip, "action": f.action, "message": f.message} for f in self.failures
            ],
        }
        if self.held_back is not None:
            report["heldBack"] = {
                "pairsToRemove": self.held_back.removing,
                "pairsRegistered": self.held_back.registered,
            }
        if self.dry_run or self.held_back is not None:
            report["plan"] = {
                "register": ip_tags_json(self.plan.register),
                "unregister": ip_tags_json(self.plan.unregister),
            }
        return report


class Audit(NamedTuple):
    plan: TagPlan
    """What makes the target hold exactly the wanted tags."""
    owned: IpTags
    """The cluster's tags the target holds now."""


def audit(
    panorama: PanoramaClient,
    wanted: IpTags,
    owned: re.Pattern[str],
    also_owned: IpTags | None = None,
) -> Audit:
    """The audit of a target (the applier's, and the command line's sync): read what the
    target really holds, keep the tags `owned` matches (plus `also_owned`, tags known to be
    the cluster's under another name), and plan what makes it hold exactly `wanted`. With
    tags registered under a timeout, every wanted tag is registered again so that it does
    not expire.

    Raises:
        AuthError, NonRetryable, Retryable: from the Panorama client; nothing is planned
            when reading fails.
    """
    refresh = panorama.settings.tag_timeout_s > 0
    return compare(panorama.registered(), wanted, owned, also_owned, refresh)


def compare(
    registered: IpTags,
    wanted: IpTags,
    owned: re.Pattern[str],
    also_owned: IpTags | None = None,
    refresh: bool = False,
) -> Audit:
    """`audit` of a table read already (`registered`, whoever read it, e.g. a shared read of
    the target: `pipeline.shared_tables`): pure."""
    mine = owned_only(registered, owned)
    for ip, tags in (also_owned or {}).items():
        mine[ip] = mine.get(ip, frozenset()) | tags
    return Audit(plan_changes(wanted, mine, owned, refresh), mine)


def sync_cluster(
    wanted: ClusterTags,
    panorama: PanoramaClient,
    dry_run: bool = False,
    hold_mass_removal: Limits | None = None,
) -> SyncReport:
    """Read the target's registered IP-tags and apply what differs for `wanted.cluster`.

    Tags of other owners on the same IPs are never touched, nor the cluster's node-subnet
    entries (`aks.<cluster>.node_subnet`, kept by the app from Resource Manager, which this
    sync does not read); an unchanged cluster sends no write request, unless tags are
    registered with a timeout: then every wanted tag is registered again so that it does
    not expire.

    With `hold_mass_removal`, a plan that is a mass removal by those limits' thresholds is
    not applied: the report says so (`held_back`). The rule is the app's
    (`rules.plan.removal_of`): the pairs the plan would unregister, of the cluster's pairs
    the target holds.

    Raises:
        WriteRefused: the read was answered, the write refused (HTTP 401/403, code 403).
        AuthError, NonRetryable, Retryable: from the Panorama client; nothing is
            unregistered when reading fails.
    """
    started = time.monotonic()
    first_request = panorama.requests_sent
    owned = service_ownership(wanted.cluster)
    plan, registered = audit(panorama, wanted.tags, owned)
    read_requests = panorama.requests_sent - first_request
    held_back = None
    if hold_mass_removal is not None:
        held_back = removal_of(
            wanted.cluster,
            registered,
            wanted.tags,
            hold_mass_removal.mass_removal_fraction,
            hold_mass_removal.mass_removal_min_pairs,
        )
    failures: tuple[EntryMessage, ...] = ()
    write_requests = 0
    if not dry_run and held_back is None and not plan.is_empty:
        try:
            result = panorama.apply(plan)
        except AuthError as error:
            raise WriteRefused(str(error), status=error.status) from None
        failures, write_requests = result.failures, result.requests
    report = SyncReport(
        cluster=wanted.cluster,
        target=panorama.settings.target or "panorama",
        plan=plan,
        wanted_ips=len(wanted.tags),
        wanted_tags=sum(len(tags) for tags in wanted.tags.values()),
        write_requests=write_requests,
        read_requests=read_requests,
        dry_run=dry_run,
        failures=failures,
        held_back=held_back,
    )
    pairs = report.pairs()
    log_event(
        log,
        "sync.cluster",
        cluster=report.cluster,
        target=report.target,
        ips=report.wanted_ips,
        registered=pairs["registered"],
        unregistered=pairs["unregistered"],
        would_register=pairs["wouldRegister"],
        would_unregister=pairs["wouldUnregister"],
        write_requests=write_requests,
        failures=len(failures),
        dry_run=dry_run,
        held_back=held_back is not None,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return report
