"""The tag rules (DESIGN section 2): which IP-tags a cluster's Services call for, and
which tags a cluster owns. Pure code: no I/O.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aksfw_core.errors import InputError
from aksfw_core.rules.model import Service, TagWarning, WarningKind
from aksfw_core.rules.selectors import NamedSelector

MAX_TAG_LENGTH = 127
"""PAN-OS rejects longer tags; the Azure plugin drops them rather than truncating."""

MAX_TAGS_PER_IP = 32
"""PAN-OS limit on tags registered to one IP."""

_CLUSTER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
_PRINTABLE_ASCII_RE = re.compile(r"[\x21-\x7e]+")  # no whitespace, controls or non-ASCII
_FORBIDDEN_RE = re.compile(r"[\"{}<>&']")  # characters PAN-OS tags cannot carry


class TagKind(enum.IntEnum):
    """The three tag families, in the order they survive the per-IP cap."""

    SERVICE = 0
    SELECTOR = 1
    LABEL = 2


@dataclass(frozen=True)
class ClusterTags:
    """The tags one cluster wants registered, and what was dropped on the way."""

    cluster: str
    tags: Mapping[str, frozenset[str]]
    warnings: tuple[TagWarning, ...]


def check_cluster_name(name: str) -> str:
    """Return `name` if it can stand as `<cluster>` in a tag.

    Raises:
        InputError: the name is empty, too long, or holds characters outside
            `[A-Za-z0-9_-]` (a dot would make ownership of tags ambiguous).
    """
    if not _CLUSTER_NAME_RE.fullmatch(name):
        raise InputError(f"cluster name {name!r} must match [A-Za-z0-9_-]{{1,63}}")
    return name


def ownership(cluster: str) -> re.Pattern[str]:
    """A pattern matching exactly the tags aksfw may unregister for `cluster`:
    `aks.<cluster>.…` and `aks_<selector>.<cluster>.…`.
    """
    name = re.escape(check_cluster_name(cluster))
    return re.compile(rf"aks\.{name}\.|aks_[A-Za-z0-9_-]{{1,31}}\.{name}\.")


def owns(cluster: str, tag: str) -> bool:
    """True when `tag` belongs to `cluster`."""
    return ownership(cluster).match(tag) is not None


def compute_tags(
    cluster: str, services: Iterable[Service], selectors: Sequence[NamedSelector] = ()
) -> ClusterTags:
    """Apply the tag rules to the Services of one cluster.

    Raises:
        InputError: the cluster name cannot be used in a tag.
    """
    check_cluster_name(cluster)
    warnings: list[TagWarning] = []
    wanted: dict[str, dict[str, TagKind]] = defaultdict(dict)
    rejected: set[str] = set()
    namespaces_by_name: dict[str, set[str]] = defaultdict(set)

    for service in services:
        if not service.ips:
            continue
        namespaces_by_name[service.name].add(service.namespace)
        candidates = _service_tags(cluster, service, selectors)
        accepted = [(tag, kind) for tag, kind in candidates if _acceptable(tag, rejected)]
        for ip in service.ips:
            on_ip = wanted[ip]
            for tag, kind in accepted:
                on_ip[tag] = min(kind, on_ip.get(tag, kind))

    warnings.extend(_rejection_warnings(cluster, rejected))
    warnings.extend(_duplicate_name_warnings(cluster, namespaces_by_name))
    tags = {ip: _capped(ip, kinds, warnings) for ip, kinds in wanted.items() if kinds}
    return ClusterTags(cluster=cluster, tags=tags, warnings=tuple(warnings))


def _service_tags(
    cluster: str, service: Service, selectors: Sequence[NamedSelector]
) -> list[tuple[str, TagKind]]:
    tags = [(f"aks.{cluster}.{service.name}", TagKind.SERVICE)]
    tags.extend(
        (f"aks_{selector.name}.{cluster}.{service.name}", TagKind.SELECTOR)
        for selector in selectors
        if selector.matches(service.namespace, service.labels)
    )
    tags.extend(
        (f"aks.{cluster}.svc.{key}.{value}", TagKind.LABEL) for key, value in service.labels.items()
    )
    return tags


def registrable(tag: str) -> bool:
    """True when PAN-OS can carry `tag`: at most 127 printable ASCII characters, none of
    them whitespace or one of `" { } < > & '`."""
    return (
        len(tag) <= MAX_TAG_LENGTH
        and _PRINTABLE_ASCII_RE.fullmatch(tag) is not None
        and _FORBIDDEN_RE.search(tag) is None
    )


def _acceptable(tag: str, rejected: set[str]) -> bool:
    if registrable(tag):
        return True
    rejected.add(tag)
    return False


def _rejection_warnings(cluster: str, rejected: set[str]) -> list[TagWarning]:
    warnings = []
    for tag in sorted(rejected):
        if len(tag) > MAX_TAG_LENGTH:
            kind, why = WarningKind.TAG_TOO_LONG, f"is {len(tag)} characters (max 127)"
        else:
            kind, why = WarningKind.TAG_INVALID, "holds a character PAN-OS tags cannot carry"
        warnings.append(TagWarning(kind, f"cluster {cluster}: tag {tag!r} {why}; not registered"))
    return warnings


def _duplicate_name_warnings(
    cluster: str, namespaces_by_name: Mapping[str, set[str]]
) -> list[TagWarning]:
    return [
        TagWarning(
            WarningKind.DUPLICATE_SERVICE_NAME,
            f"cluster {cluster}: Services named {name!r} in namespaces "
            f"{', '.join(sorted(namespaces))} share the tag aks.{cluster}.{name}; "
            "use a selector with a namespace to tell them apart",
        )
        for name, namespaces in sorted(namespaces_by_name.items())
        if len(namespaces) > 1
    ]


def _capped(ip: str, kinds: Mapping[str, TagKind], warnings: list[TagWarning]) -> frozenset[str]:
    if len(kinds) <= MAX_TAGS_PER_IP:
        return frozenset(kinds)
    ordered = sorted(kinds, key=lambda tag: (kinds[tag], tag))
    kept, dropped = ordered[:MAX_TAGS_PER_IP], ordered[MAX_TAGS_PER_IP:]
    warnings.append(
        TagWarning(
            WarningKind.TAG_LIMIT,
            f"ip {ip} has {len(kinds)} tags, PAN-OS allows {MAX_TAGS_PER_IP}; "
            f"not registered: {', '.join(dropped)}",
        )
    )
    return frozenset(kept)
