"""Plain data shared by the engine: Services as aksfw sees them, IP-tag maps, warnings."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

IpTags = Mapping[str, frozenset[str]]
"""IP address (normalised text form) → the set of tags registered or wanted on it. A key
may also be a network (`10.224.0.0/16`): only a cluster's node subnets are (`tags.py`)."""


@dataclass(frozen=True)
class Service:
    """A Kubernetes Service of type LoadBalancer, reduced to what tagging needs."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    """Load-balancer ingress IPs, normalised (IPv6 compressed), in the order Kubernetes gave."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """aksfw's own annotations only (`aksfw.io/ignore`, `aksfw.io/tags`; `rules.annotations`),
    each at most `annotations.MAX_VALUE_LENGTH` characters; every other annotation is dropped."""


class WarningKind(enum.Enum):
    """Why something was left out or deserves an operator's eye."""

    TAG_TOO_LONG = "tag-too-long"
    TAG_INVALID = "tag-invalid"
    TAG_LIMIT = "tag-limit"
    DUPLICATE_SERVICE_NAME = "duplicate-service-name"
    INVALID_IP = "invalid-ip"
    SELECTOR_UNMATCHED = "selector-unmatched"
    """A label selector (or its namespace) selects none of the cluster's Services."""
    ANNOTATION_INVALID = "annotation-invalid"
    """An `aksfw.io/` annotation value that is too long or not a tag: skipped."""
    ANNOTATION_NOT_ALLOWED = "annotation-not-allowed"
    """`aksfw.io/tags` on a Service in a namespace `annotationTags` does not open: no tag."""


@dataclass(frozen=True)
class TagWarning:
    """One warning about the tags computed for a cluster."""

    kind: WarningKind
    message: str
    selector: str | None = None
    """The selector's name, for a warning about one selector."""

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


def ip_tags_json(ip_tags: IpTags) -> dict[str, list[str]]:
    """`{"<ip>": [sorted tags]}` with IPs in address order (IPv4 before IPv6), a network
    at its first address."""
    return {ip: sorted(ip_tags[ip]) for ip in sorted(ip_tags, key=_address_order)}


def _address_order(ip: str) -> tuple[int, int, str]:
    try:
        network = ipaddress.ip_network(ip, strict=False)
    except ValueError:
        return (9, 0, ip)
    return (network.version, int(network.network_address), ip)
