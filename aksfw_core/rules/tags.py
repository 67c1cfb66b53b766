"""The tag rules (DESIGN section 2): which IP-tags a cluster's Services call for (with the
cluster's opt-in namespace and annotation tags, `tag_options.TagOptions`), the patterns its
tags follow (`tag_patterns`), and which tags a cluster owns; and the one tag of its node
subnets (section 11), the only tag registered on networks. Pure code: no I/O.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from aksfw_core.errors import InputError
from aksfw_core.rules.annotations import ignored, tag_values
from aksfw_core.rules.model import Service, TagWarning, WarningKind
from aksfw_core.rules.selectors import NamedSelector, as_label
from aksfw_core.rules.tag_options import TagOptions

MAX_TAG_LENGTH = 127
"""PAN-OS rejects longer tags; the Azure plugin drops them rather than truncating."""

MAX_TAGS_PER_IP = 32
"""PAN-OS limit on tags registered to one IP."""

MAX_TAG_TIMEOUT_S = 2_592_000
"""Seconds: PAN-OS accepts registration timeouts up to 30 days."""

NODE_SUBNET_TAG_NAME = "node_subnet"
"""`aks.<cluster>.node_subnet`: the tag of a cluster's node subnets (DESIGN section 11).
Service names are DNS-1035 labels (lowercase letters, digits, `-`), so no Service tag can
spell it; it lies under the cluster's `aks.<cluster>.` prefix, so ownership covers it."""
EGRESS_WORD = "egress"
"""`aks.<cluster>.egress`: the cluster's outbound addresses; `…egress.<namespace>.<gateway>`:
a Static Egress Gateway's (DESIGN section 11). A Service named `egress` would spell the
first and put its IP in the egress DAG, so it is reserved as the node-subnet tag is."""

_CLUSTER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
_PRINTABLE_ASCII_RE = re.compile(r"[\x21-\x7e]+")  # no whitespace, controls or non-ASCII
_FORBIDDEN_RE = re.compile(r"[\"{}<>&']")  # characters PAN-OS tags cannot carry


NAMESPACE_WORD = "ns"
"""`aks.<cluster>.ns.<namespace>`: a word no Service tag holds past the cluster (a
Service's tag has one segment there), as `svc` is for label tags."""
ANNOTATION_WORD = "tag"
"""`aks.<cluster>.tag.<value>`: the tags a Service's `aksfw.io/tags` annotation adds."""


class TagKind(enum.IntEnum):
    """The tag families of a Service, in the order they survive the per-IP cap."""

    SERVICE = 0
    SELECTOR = 1
    NAMESPACE = 2
    ANNOTATION = 3
    LABEL = 4


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


def service_tag(cluster: str, service: str) -> str:
    """`aks.<cluster>.<service>`: every IP of the Service carries it."""
    return f"aks.{cluster}.{service}"


def label_tag(cluster: str, key: str, value: str) -> str:
    """`aks.<cluster>.svc.<labelKey>.<labelValue>`: one per label of the Service."""
    return f"aks.{cluster}.svc.{key}.{value}"


def selector_tag(selector: str, cluster: str, service: str) -> str:
    """`aks_<selectorName>.<cluster>.<service>`: for each selector the Service matches."""
    return f"aks_{selector}.{cluster}.{service}"


def namespace_tag(cluster: str, namespace: str) -> str:
    """`aks.<cluster>.ns.<namespace>`: with `namespaceTags`, on each LoadBalancer Service."""
    return f"aks.{cluster}.{NAMESPACE_WORD}.{namespace}"


def annotation_tag(cluster: str, value: str) -> str:
    """`aks.<cluster>.tag.<value>`: one per value of an allowed `aksfw.io/tags` annotation."""
    return f"aks.{cluster}.{ANNOTATION_WORD}.{value}"


def tag_patterns(
    cluster: str,
    selectors: Iterable[str] = (),
    node_subnets: bool = False,
    options: TagOptions | None = None,
    egress: bool = False,
) -> list[str]:
    """The tags a cluster can produce, as patterns, in this order: the Service tag, the
    label tag, one selector tag per selector (by name), the namespace tag and the
    annotation tag when `options` turn them on, the node-subnet tag when `node_subnets` is
    on, and the two egress tags when `egress` is. `<service>` stands for a Service's name,
    `<label>` and `<value>` for one of its labels, `<namespace>` for its namespace, `<tag>`
    for a value of its `aksfw.io/tags` annotation, `<gateway>` for a gateway's name;
    `cluster` may itself be a placeholder (`<name>`, for a cluster not known yet). What DAG
    filters are written against."""
    options = options or TagOptions()
    patterns = [
        service_tag(cluster, "<service>"),
        label_tag(cluster, "<label>", "<value>"),
        *(selector_tag(name, cluster, "<service>") for name in selectors),
    ]
    if options.namespace_tags:
        patterns.append(namespace_tag(cluster, "<namespace>"))
    if options.annotation_namespaces:
        patterns.append(annotation_tag(cluster, "<tag>"))
    if node_subnets:
        patterns.append(_node_subnet_tag(cluster))
    if egress:
        patterns += [egress_tag(cluster), egress_tag(cluster, "<namespace>", "<gateway>")]
    return patterns


def ownership(cluster: str) -> re.Pattern[str]:
    """A pattern matching exactly the tags aksfw may unregister for `cluster`:
    `aks.<cluster>.…` (the node-subnet tag among them) and `aks_<selector>.<cluster>.…`.
    """
    return _ownership(cluster, "")


def service_ownership(cluster: str) -> re.Pattern[str]:
    """`ownership` without the node-subnet and egress tags: the tags a cluster's Services
    alone decide, for a sync that reads only Services (the command line)."""
    return _ownership(cluster, rf"(?!(?:{NODE_SUBNET_TAG_NAME}|{EGRESS_WORD})\Z|{EGRESS_WORD}\.)")


def _ownership(cluster: str, after_name: str) -> re.Pattern[str]:
    name = re.escape(check_cluster_name(cluster))
    return re.compile(rf"aks\.{name}\.{after_name}|aks_[A-Za-z0-9_-]{{1,31}}\.{name}\.")


def owns(cluster: str, tag: str) -> bool:
    """True when `tag` belongs to `cluster`."""
    return ownership(cluster).match(tag) is not None


_OWNER_RE = re.compile(r"(?:aks|aks_[A-Za-z0-9_-]{1,31})\.([A-Za-z0-9_-]{1,63})\.")


def owner_name(tag: str) -> str | None:
    """The tag name of the one cluster whose `ownership` can match `tag` (`aks.<name>.…`,
    `aks_<selector>.<name>.…`), or None when no aksfw cluster can own it."""
    match = _OWNER_RE.match(tag)
    return match[1] if match else None


def node_subnet_tag(cluster: str) -> str:
    """`aks.<cluster>.node_subnet`, the one tag a cluster's node subnets carry.

    Raises:
        InputError: the cluster name cannot be used in a tag.
    """
    return _node_subnet_tag(check_cluster_name(cluster))


def _node_subnet_tag(cluster: str) -> str:
    return f"aks.{cluster}.{NODE_SUBNET_TAG_NAME}"


def egress_tag(cluster: str, namespace: str | None = None, gateway: str | None = None) -> str:
    """`aks.<cluster>.egress` (the cluster's outbound addresses), or with a gateway
    `aks.<cluster>.egress.<namespace>.<gateway>` (a Static Egress Gateway's prefix)."""
    tag = f"aks.{cluster}.{EGRESS_WORD}"
    return tag if namespace is None or gateway is None else f"{tag}.{namespace}.{gateway}"


def is_network_tag(cluster: str, tag: str) -> bool:
    """True for the tags that may sit on a network: the node-subnet and egress tags."""
    egress = egress_tag(cluster)
    return tag in (node_subnet_tag(cluster), egress) or tag.startswith(f"{egress}.")


def node_subnet_tags(cluster: str, prefixes: Iterable[str]) -> dict[str, frozenset[str]]:
    """The entries that register `prefixes` (subnet CIDRs) under the node-subnet tag, keyed
    by the normalised network (`10.224.0.0/16`, IPv6 compressed).

    Raises:
        InputError: a prefix is not a network, or the cluster name cannot be used in a tag.
    """
    tag = frozenset({node_subnet_tag(cluster)})
    return {network_text(prefix): tag for prefix in prefixes}


def node_subnet_prefixes(cluster: str, tags: Mapping[str, frozenset[str]]) -> list[str]:
    """The networks that carry `cluster`'s node-subnet tag in an IP-tag map (an applied
    state), sorted."""
    tag = node_subnet_tag(cluster)
    return sorted(key for key, members in tags.items() if is_network(key) and tag in members)


def network_text(prefix: str) -> str:
    """`prefix` as a network in normal form; a host part is cleared (`10.1.2.3/16` →
    `10.1.0.0/16`), as PAN-OS registers the network.

    Raises:
        InputError: it is not `address/length`.
    """
    if not isinstance(prefix, str) or "/" not in prefix:
        raise InputError(f"{str(prefix)[:80]!r} is not a network (address/length)")
    try:
        return str(ipaddress.ip_network(prefix.strip(), strict=False))
    except ValueError:
        raise InputError(f"{prefix[:80]!r} is not a network (address/length)") from None


def is_network(key: str) -> bool:
    """True when an IP-tag map key is a network (`address/length`), not an address."""
    return "/" in key


def entry_problem(cluster: str, key: str, tags: Collection[str]) -> str | None:
    """Why `cluster` may not register `tags` on `key` as far as addresses go, or None.

    A key is an IP address or, for the node-subnet and egress tags only
    (`is_network_tag`), a network: a network under a Service, label or selector tag would
    put a whole subnet in a DAG meant for one load balancer, and the node-subnet tag on a
    single address is nothing aksfw sends.
    """
    reserved = node_subnet_tag(cluster)
    if is_network(key):
        try:
            normal = network_text(key) == key
        except InputError as error:
            return str(error)
        if not normal:
            return f"network {key[:80]!r} is not in normal form"
        if tags and all(is_network_tag(cluster, tag) for tag in tags):
            return None
        return f"network {key} may carry only {reserved} or {egress_tag(cluster)}…"
    return _address_problem(key, reserved, tags)


def _address_problem(key: str, reserved: str, tags: Collection[str]) -> str | None:
    try:
        ipaddress.ip_address(key)
    except ValueError:
        return f"{key[:80]!r} is neither an IP address nor a network"
    if reserved in tags:
        return f"the tag {reserved} belongs on networks, not on the address {key}"
    return None


def compute_tags(
    cluster: str,
    services: Iterable[Service],
    selectors: Sequence[NamedSelector] = (),
    options: TagOptions | None = None,
    entries: Mapping[str, Iterable[str]] | None = None,
) -> ClusterTags:
    """Apply the tag rules to the Services of one cluster, with its opt-in namespace and
    annotation tags (`options`; default: neither). A Service annotated `aksfw.io/ignore:
    "true"` is left out as if it did not exist: no tag, and no warning counts it.
    `entries` are the cluster's tags that come from elsewhere (node subnets, egress
    addresses; `egress_tag`), by IP or network: they join the Services' under the same
    length, character and 32-per-IP rules, ranked with the Service tags.

    Raises:
        InputError: the cluster name cannot be used in a tag.
    """
    check_cluster_name(cluster)
    options = options or TagOptions()
    warnings: list[TagWarning] = []
    wanted: dict[str, dict[str, TagKind]] = defaultdict(dict)
    rejected: set[str] = set()
    # A Kubernetes object is data: a Service named like the node-subnet tag (which the API
    # server refuses: not a DNS-1035 label) must not make its IP carry that tag.
    reserved = {node_subnet_tag(cluster): "node-subnet", egress_tag(cluster): "egress"}
    namespaces_by_name: dict[str, set[str]] = defaultdict(set)
    services = tuple(s for s in services if not ignored(cluster, s, warnings))

    for service in services:
        if not service.ips:
            continue
        namespaces_by_name[service.name].add(service.namespace)
        candidates = _service_tags(cluster, service, selectors, options, warnings)
        accepted = [
            (tag, kind)
            for tag, kind in candidates
            if tag not in reserved and _acceptable(tag, rejected)
        ]
        warnings.extend(
            TagWarning(
                WarningKind.TAG_INVALID,
                f"cluster {cluster}: Service {service.namespace}/{service.name} would "
                f"tag as {tag}, the {reserved[tag]} tag; not registered",
            )
            for tag, _ in candidates
            if tag in reserved
        )
        for ip in service.ips:
            on_ip = wanted[ip]
            for tag, kind in accepted:
                on_ip[tag] = min(kind, on_ip.get(tag, kind))
    for key, tags in (entries or {}).items():
        wanted[key].update((tag, TagKind.SERVICE) for tag in tags if _acceptable(tag, rejected))

    warnings.extend(_rejection_warnings(cluster, rejected))
    warnings.extend(_duplicate_name_warnings(cluster, namespaces_by_name))
    warnings.extend(unmatched_selectors(cluster, services, selectors))
    tags = {ip: _capped(ip, kinds, warnings) for ip, kinds in wanted.items() if kinds}
    return ClusterTags(cluster=cluster, tags=tags, warnings=tuple(warnings))


def unmatched_selectors(
    cluster: str, services: Collection[Service], selectors: Sequence[NamedSelector]
) -> list[TagWarning]:
    """A `SELECTOR_UNMATCHED` warning for each selector that selects none of `services`
    (the cluster's LoadBalancer Services, with or without an IP yet), saying whether its
    namespace holds no such Service at all or the expression matches none of them."""
    warnings = []
    for selector in selectors:
        if any(selector.matches(s.namespace, s.labels) for s in services):
            continue
        spelled = selector.selector.text or "(everything)"
        if selector.namespace is None:
            where, count = "", len(services)
        else:
            spelled += f"@{selector.namespace}"
            where = f" in namespace {selector.namespace}"
            count = sum(1 for s in services if s.namespace == selector.namespace)
        if not count:
            why = f"there is no LoadBalancer Service{where}"
        else:
            plural = "Service" if count == 1 else "Services"
            why = f"the expression matches none of the {count} LoadBalancer {plural}{where}"
            why += _label_meant(selector, services)
        warnings.append(
            TagWarning(
                WarningKind.SELECTOR_UNMATCHED,
                f"cluster {cluster}: selector {selector.name!r} ({spelled}) selects no "
                f"Service: {why}",
                selector=selector.name,
            )
        )
    return warnings


def _label_meant(selector: NamedSelector, services: Collection[Service]) -> str:
    """The fix, when Services carry the label that `NAME=EXPR` spells (`tier=frontend`
    written for the selector `tier` testing that a label `frontend` exists), else ''."""
    meant = as_label(selector)
    if meant is None:
        return ""
    carrying = sum(1 for s in services if meant.matches(s.namespace, s.labels))
    if not carrying:
        return ""
    where = f"@{meant.namespace}" if meant.namespace is not None else ""
    label = f"{selector.name}={selector.selector.text}"
    carries = "carries" if carrying == 1 else "carry"
    return (
        f"; {carrying} of them {carries} the label {label}: did you mean the expression "
        f"{label} (--selector {meant.name}={label}{where})?"
    )


def _service_tags(
    cluster: str,
    service: Service,
    selectors: Sequence[NamedSelector],
    options: TagOptions,
    warnings: list[TagWarning],
) -> list[tuple[str, TagKind]]:
    tags: list[tuple[str, TagKind]] = []
    if "." in service.name:
        # A Kubernetes object is data: a name of two segments (which the API server refuses:
        # not a DNS-1035 label) would spell another family's tag (`ns.prod`, `svc.k.v`).
        warnings.append(
            TagWarning(
                WarningKind.TAG_INVALID,
                f"cluster {cluster}: Service {service.namespace}/{service.name}: a name "
                "holding '.' could pass for another kind of tag; "
                f"{service_tag(cluster, service.name)!r} not registered",
            )
        )
    else:
        tags.append((service_tag(cluster, service.name), TagKind.SERVICE))
    tags.extend(
        (selector_tag(selector.name, cluster, service.name), TagKind.SELECTOR)
        for selector in selectors
        if selector.matches(service.namespace, service.labels)
    )
    if options.namespace_tags:
        tags.append((namespace_tag(cluster, service.namespace), TagKind.NAMESPACE))
    room = MAX_TAG_LENGTH - len(annotation_tag(cluster, ""))
    tags.extend(
        (annotation_tag(cluster, value), TagKind.ANNOTATION)
        for value in tag_values(cluster, service, options, room, warnings)
    )
    tags.extend(
        (label_tag(cluster, key, value), TagKind.LABEL) for key, value in service.labels.items()
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
            f"{', '.join(sorted(namespaces))} share the tag {service_tag(cluster, name)}; "
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
