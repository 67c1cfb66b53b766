"""Diff the wanted IP-tags of one cluster against what is registered: a `TagPlan`.

Only tags the cluster owns are ever unregistered; every other tag on the same IPs is left
alone. Pure code: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aksfw_core.rules.model import IpTags
from aksfw_core.rules.tags import egress_tag, is_network, node_subnet_tag, owner_name


@dataclass(frozen=True)
class TagPlan:
    """The register/unregister work that takes the registered state to the wanted one."""

    register: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unregister: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """True when nothing needs to change."""
        return not self.register and not self.unregister

    @property
    def register_count(self) -> int:
        """IP-tag pairs to register."""
        return sum(len(tags) for tags in self.register.values())

    @property
    def unregister_count(self) -> int:
        """IP-tag pairs to unregister."""
        return sum(len(tags) for tags in self.unregister.values())


def plan_changes(
    wanted: IpTags, registered: IpTags, owned: re.Pattern[str], refresh: bool = False
) -> TagPlan:
    """The plan that makes `registered` hold exactly `wanted` among the tags `owned` matches.

    `registered` may hold tags of anyone; those `owned` does not match are never touched.
    With `refresh`, every wanted tag is registered again, even one already there: tags
    registered with a timeout only live on while they are re-registered.
    """
    register: dict[str, frozenset[str]] = {}
    unregister: dict[str, frozenset[str]] = {}
    for ip, tags in wanted.items():
        missing = tags if refresh else tags - registered.get(ip, frozenset())
        if missing:
            register[ip] = missing
    for ip, tags in registered.items():
        keep = wanted.get(ip, frozenset())
        stale = frozenset(tag for tag in tags if tag not in keep and owned.match(tag))
        if stale:
            unregister[ip] = stale
    return TagPlan(register=register, unregister=unregister)


def owned_only(registered: IpTags, owned: re.Pattern[str]) -> dict[str, frozenset[str]]:
    """The part of `registered` that `owned` matches, without IPs left empty."""
    result: dict[str, frozenset[str]] = {}
    for ip, tags in registered.items():
        mine = frozenset(tag for tag in tags if owned.match(tag))
        if mine:
            result[ip] = mine
    return result


def by_owner(registered: IpTags) -> dict[str, dict[str, frozenset[str]]]:
    """The tags of `registered` that an aksfw cluster can own, by that cluster's tag name
    (`rules.tags.owner_name`): every cluster's part of a target's table, so that one read
    serves them all (each still keeps only what its `ownership` matches)."""
    found: dict[str, dict[str, set[str]]] = {}
    for ip, tags in registered.items():
        for tag in tags:
            owner = owner_name(tag)
            if owner is not None:
                found.setdefault(owner, {}).setdefault(ip, set()).add(tag)
    return {
        owner: {ip: frozenset(tags) for ip, tags in ips.items()} for owner, ips in found.items()
    }


@dataclass(frozen=True)
class MassRemoval:
    """A change that would remove most of a cluster's IP-tag pairs from a target: held
    back until it is confirmed (a flag on the command line, a second list in the app)."""

    removing: int
    """IP-tag pairs the change unregisters (`without_arm_entries`)."""
    registered: int
    """The cluster's IP-tag pairs on the target before it (`without_arm_entries`)."""


def mass_removal(
    removing: int, registered: int, wanted: int, fraction: float, min_pairs: int
) -> MassRemoval | None:
    """The mass removal that removing `removing` of a cluster's `registered` IP-tag pairs
    on a target, to leave it with `wanted` pairs, would be, or None: more than `fraction`
    of them and at least `min_pairs`, or all of them with nothing wanted instead (however
    few). Nothing registered: never one (a first sync)."""
    if registered <= 0 or removing <= 0:
        return None
    emptied = wanted <= 0
    if emptied or (removing >= min_pairs and removing > fraction * registered):
        return MassRemoval(removing=min(removing, registered), registered=registered)
    return None


def pair_count(tags: IpTags) -> int:
    """IP-tag pairs in an IP-tag map."""
    return sum(len(members) for members in tags.values())


def without_arm_entries(cluster: str, tags: IpTags) -> IpTags:
    """`tags` without the pairs of `cluster` that Resource Manager decides (its node-subnet
    entries, networks under `aks.<cluster>.node_subnet`, and its outbound addresses under
    `aks.<cluster>.egress`), and without keys left empty. At most one such pair sits on a
    key. A Static Egress Gateway's tag comes from the cluster's own API, as Service tags
    do, and counts as they do.

    Raises:
        InputError: the cluster name cannot be used in a tag.
    """
    reserved, egress = node_subnet_tag(cluster), egress_tag(cluster)
    result: dict[str, frozenset[str]] = {}
    for key, members in tags.items():
        kept = (members - {reserved} if is_network(key) else members) - {egress}
        if kept:
            result[key] = kept
    return result


def removal_of(
    cluster: str, registered: IpTags, wanted: IpTags, fraction: float, min_pairs: int
) -> MassRemoval | None:
    """The mass removal (`mass_removal`) that taking `cluster`'s IP-tag pairs on a target
    from `registered` (the cluster's own: what aksfw applied, or what the target holds of
    the tags the cluster owns) to `wanted` would be, or None. The one rule of the app's
    resyncer and of the command line's sync.

    It counts what would actually be unregistered: the registered pairs that are not
    wanted, so that replacing every pair with as many others is a removal of all of them.
    The cluster's node-subnet and outbound-address entries are left out of every count
    (removed, registered and wanted; `without_arm_entries`): they come from Resource
    Manager, not from the cluster's lists, so they neither hide an emptied Service list nor
    count as removed.

    Raises:
        InputError: the cluster name cannot be used in a tag.
    """
    before = without_arm_entries(cluster, registered)
    after = without_arm_entries(cluster, wanted)
    removing = sum(len(members - after.get(key, frozenset())) for key, members in before.items())
    return mass_removal(removing, pair_count(before), pair_count(after), fraction, min_pairs)
