"""What a valid configuration will do, as `aksfw config check` shows it: the Panorama, its
targets, how its certificate is trusted and when it warns of capacity; discovery by tag;
and per listed cluster its tag name and the tags it will produce (the patterns of
`rules.tags.tag_patterns`). As JSON (`--json`) or as text for a person, with the warnings
a valid document may still earn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aksfw_core.config import (
    CA_CERTIFICATES_SETTING,
    ClusterConfig,
    PanoramaSettings,
    PanoramaTargets,
    Settings,
    TokenAccess,
)
from aksfw_core.logs import printable
from aksfw_core.rules.resource_ids import managed_cluster_id
from aksfw_core.rules.selectors import NamedSelector
from aksfw_core.rules.tag_options import TagOptions
from aksfw_core.rules.tags import MAX_TAG_LENGTH, tag_patterns

DISCOVERED_NAME = "<name>"
"""The tag name of a cluster found by tag, in its patterns: its AKS name."""
_LONGEST = {"<service>": ("Service name", 63), "<namespace>": ("namespace", 63)}
"""Characters: a Service name is a DNS-1035 label, a namespace a DNS-1123 label."""
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class ConfigSummary:
    """A configuration that passed the app's start-up checks, and where it came from."""

    source: str
    """Where the document was read: a file, `standard input`, `AKSFW_CONFIG`."""
    settings: Settings
    panorama: PanoramaSettings
    """`settings.panorama`, which the app requires."""
    api_key_set: bool
    """`PANORAMA_API_KEY` is set (and passed the app's check) where the check ran."""
    ca_setting: bool
    """The CAs came from `PANORAMA_CA_CERTIFICATES`, not from the document."""

    def as_json(self) -> dict[str, Any]:
        """The summary, as `aksfw config check --json` prints it."""
        settings, discovery = self.settings, self.settings.discovery
        tag = discovery.tag_key
        if tag is not None and discovery.tag_value is not None:
            tag = f"{tag}={discovery.tag_value}"
        return {
            "valid": True,
            "source": self.source,
            "panorama": {
                "url": self.panorama.url,
                "targets": _targets_json(self.panorama.targets),
                "vsys": self.panorama.vsys,
                "trust": self._trust_json(),
                "batchSize": self.panorama.batch_size,
                "tagTimeoutSeconds": self.panorama.tag_timeout_s,
                "capacityWarningIps": self.panorama.capacity_warning_ips,
                "apiKeySet": self.api_key_set,
            },
            "discovery": {
                "tag": tag,
                "subscriptions": list(settings.subscriptions),
                "tagName": DISCOVERED_NAME if tag else None,
                "nodeSubnets": settings.node_subnets,
                "egressTags": settings.egress_tags,
                **_options_json(settings.tag_options_for(None)),
                "tags": self.discovered_patterns() if tag else [],
            },
            "clusters": [_cluster_json(c, settings) for c in settings.clusters],
            "warnings": self.warnings(),
        }

    def text(self) -> str:
        """The summary for a person."""
        lines = [f"{self.source}: valid, as the Functions app would start with it", ""]
        lines += self._panorama_lines()
        lines += ["", *self._discovery_lines(), ""]
        lines += self._cluster_lines()
        return "".join(f"{printable(line)}\n" for line in lines)

    def discovered_patterns(self) -> list[str]:
        """The tags of a cluster found by tag (no selectors; `nodeSubnets`, `namespaceTags`
        and `annotationTags` as set at the top level)."""
        settings = self.settings
        return tag_patterns(
            DISCOVERED_NAME,
            (),
            settings.node_subnets,
            settings.tag_options_for(None),
            egress=settings.egress_tags,
        )

    def warnings(self) -> list[str]:
        """What is valid but likely not meant, one sentence each."""
        warnings = []
        if not self.panorama.verify_tls:
            warnings.append(
                "config.panorama.verifyTls is false: Panorama's certificate is not checked, "
                "so anyone on the path can read the API key; pin it with certificateSha256"
            )
        if self.panorama.url.startswith("http://"):
            warnings.append(
                f"config.panorama.host {self.panorama.url} is plain HTTP (for local "
                "simulators): the API key would travel in clear text"
            )
        if not self.settings.discovery.tag_key and not self.settings.clusters:
            warnings.append(
                "no cluster is monitored: set config.discovery.tag (with subscriptions) or "
                "list config.clusters"
            )
        for index, cluster in enumerate(self.settings.clusters):
            warnings.extend(_length_warnings(index, cluster, self.settings))
        return warnings

    def _trust_json(self) -> dict[str, Any]:
        panorama = self.panorama
        if not panorama.verify_tls:
            return {"by": "none"}
        if panorama.certificate_sha256:
            return {"by": "certificateSha256", "sha256": panorama.certificate_sha256}
        if panorama.ca_certificates:
            return {
                "by": "caCertificates",
                "from": CA_CERTIFICATES_SETTING if self.ca_setting else "config",
                "certificates": panorama.ca_certificates.count(_PEM_CERTIFICATE),
            }
        return {"by": "system"}

    def _trust_text(self) -> str:
        panorama = self.panorama
        if not panorama.verify_tls:
            return "nothing: certificate checks are off (verifyTls false)"
        if panorama.certificate_sha256:
            return (
                f"only the certificate whose SHA-256 is {panorama.certificate_sha256} "
                "(certificateSha256), whoever issued it"
            )
        if panorama.ca_certificates:
            count = panorama.ca_certificates.count(_PEM_CERTIFICATE)
            where = CA_CERTIFICATES_SETTING if self.ca_setting else "caCertificates"
            return f"{_plural(count, 'CA certificate')} of {where}, instead of the system's CAs"
        return "the system's CAs (no caCertificates, no certificateSha256)"

    def _panorama_lines(self) -> list[str]:
        panorama = self.panorama
        vsys = f" (vsys {panorama.vsys})" if panorama.vsys else ""
        key = (
            "PANORAMA_API_KEY is set"
            if self.api_key_set
            else "PANORAMA_API_KEY is not set here; the app reads it from its settings "
            "(a Key Vault reference in Azure)"
        )
        expiry = (
            f"registered tags expire after {panorama.tag_timeout_s} s unless registered again"
            if panorama.tag_timeout_s
            else "registered tags never expire"
        )
        lines = [
            f"Panorama   {panorama.url}{vsys}",
            f"  targets  {_targets_text(panorama.targets)}",
            f"  trust    {self._trust_text()}",
            f"  API key  {key}",
            f"  writes   {panorama.batch_size} IPs per request; {expiry}",
        ]
        if panorama.capacity_warning_ips is not None:
            lines.append(
                f"  capacity warns when a target holds {panorama.capacity_warning_ips:,} "
                "registered IPs or more, from all sources (capacityWarningIps)"
            )
        return lines

    def _discovery_lines(self) -> list[str]:
        settings, discovery = self.settings, self.settings.discovery
        if not discovery.tag_key:
            return ["Discovery  off (no discovery.tag): only the listed clusters are monitored"]
        tag = discovery.tag_key
        tag += f"={discovery.tag_value}" if discovery.tag_value is not None else " (any value)"
        subscriptions = ", ".join(settings.subscriptions)
        count = _plural(len(settings.subscriptions), "subscription", number=False)
        lines = [
            f"Discovery  the clusters tagged {tag} in {count} {subscriptions}",
            "  a cluster found by tag tags under its AKS name, unless listed below with an alias:",
        ]
        settings = self.settings
        notes = _notes((), settings.node_subnets, settings.tag_options_for(None))
        notes += _egress_notes(settings.egress_tags)
        return lines + _pattern_lines(self.discovered_patterns(), notes)

    def _cluster_lines(self) -> list[str]:
        clusters = self.settings.clusters
        if not clusters:
            return ["Listed clusters  none (config.clusters)"]
        lines = [f"Listed clusters ({len(clusters)})"]
        for cluster in clusters:
            resource = managed_cluster_id(cluster.id)
            named = f"alias of {cluster.name}" if cluster.alias else "its AKS name"
            lines.append(
                f"  {cluster.tag_name}: {named}, resource group {resource.resource_group}, "
                f"subscription {resource.subscription}; {_credential_text(cluster)}"
            )
            node_subnets = self.settings.node_subnets_for(cluster)
            options = self.settings.tag_options_for(cluster)
            egress = self.settings.egress_tags_for(cluster)
            patterns = _cluster_patterns(cluster, node_subnets, options, egress)
            notes = _notes(cluster.selectors, node_subnets, options) + _egress_notes(egress)
            lines += _pattern_lines(patterns, notes)
        return lines


def _cluster_patterns(
    cluster: ClusterConfig,
    node_subnets: bool,
    options: TagOptions | None = None,
    egress: bool = False,
) -> list[str]:
    selectors = [s.name for s in cluster.selectors]
    return tag_patterns(cluster.tag_name, selectors, node_subnets, options, egress)


def _egress_notes(egress: bool) -> list[str]:
    """What the egress patterns of `tag_patterns` are for (after `_notes`' ones)."""
    if not egress:
        return []
    return [
        "the cluster's outbound IPs and prefixes (egressTags)",
        "each Static Egress Gateway's prefix (egressTags)",
    ]


def _notes(
    selectors: tuple[NamedSelector, ...], node_subnets: bool, options: TagOptions
) -> list[str]:
    """What each of `tag_patterns`' patterns is for, in its order."""
    notes = ["each LoadBalancer Service", "each label of such a Service"]
    notes += [_selector_text(selector) for selector in selectors]
    if options.namespace_tags:
        notes.append("the namespace of each such Service (namespaceTags)")
    if options.annotation_namespaces:
        notes.append(
            f"each value of a Service's aksfw.io/tags annotation, in "
            f"{options.annotation_scope()} (annotationTags)"
        )
    if node_subnets:
        notes.append("each node pool subnet (nodeSubnets)")
    return notes


def _options_json(options: TagOptions) -> dict[str, Any]:
    return {
        "namespaceTags": options.namespace_tags,
        "annotationTags": {"namespaces": sorted(options.annotation_namespaces)},
    }


def _cluster_json(cluster: ClusterConfig, settings: Settings) -> dict[str, Any]:
    node_subnets = settings.node_subnets_for(cluster)
    options = settings.tag_options_for(cluster)
    resource = managed_cluster_id(cluster.id)
    return {
        "id": cluster.id,
        "name": cluster.name,
        "resourceGroup": resource.resource_group,
        "tagName": cluster.tag_name,
        "alias": cluster.alias,
        "selectors": [
            {"name": s.name, "match": s.selector.text, "namespace": s.namespace}
            for s in cluster.selectors
        ],
        "credential": cluster.credential.kind,
        "nodeSubnets": node_subnets,
        "egressTags": settings.egress_tags_for(cluster),
        **_options_json(options),
        "tags": _cluster_patterns(
            cluster, node_subnets, options, settings.egress_tags_for(cluster)
        ),
    }


def _targets_json(targets: PanoramaTargets) -> dict[str, Any]:
    return {
        "panorama": targets.panorama,
        "deviceGroups": list(targets.device_groups),
        "serials": list(targets.serials),
    }


def _targets_text(targets: PanoramaTargets) -> str:
    parts = ["Panorama itself"] if targets.panorama else []
    if targets.device_groups:
        groups = _plural(len(targets.device_groups), "device group", number=False)
        parts.append(f"the firewalls of {groups} {', '.join(targets.device_groups)}")
    if targets.serials:
        firewalls = _plural(len(targets.serials), "firewall", number=False)
        parts.append(f"{firewalls} {', '.join(targets.serials)}")
    return "; ".join(parts)


def _credential_text(cluster: ClusterConfig) -> str:
    credential = cluster.credential
    if isinstance(credential, TokenAccess):
        return f"read with the token in Key Vault secret {credential.secret} at {credential.server}"
    return "read with the app's identity"


def _selector_text(selector: NamedSelector) -> str:
    where = f" in namespace {selector.namespace}" if selector.namespace is not None else ""
    return f"selector {selector.name}: {selector.selector.text or '(every Service)'}{where}"


def _pattern_lines(patterns: list[str], notes: list[str]) -> list[str]:
    width = max(len(pattern) for pattern in patterns)
    return [
        f"    {pattern.ljust(width)}  {note}" for pattern, note in zip(patterns, notes, strict=True)
    ]


def _length_warnings(index: int, cluster: ClusterConfig, settings: Settings) -> list[str]:
    """A warning for each tag pattern that a Service name (or namespace) of legal length
    can push past PAN-OS's 127 characters (a long alias with a long selector name)."""
    warnings = []
    options = settings.tag_options_for(cluster)
    for pattern in _cluster_patterns(cluster, False, options):
        for placeholder, (what, longest) in _LONGEST.items():
            if placeholder not in pattern:
                continue
            room = MAX_TAG_LENGTH - (len(pattern) - len(placeholder))
            if room < longest:
                warnings.append(
                    f"config.clusters[{index}]: {pattern} is over {MAX_TAG_LENGTH} characters, "
                    f"and not registered, for a {what} longer than {room} characters"
                )
    return warnings


def _plural(count: int, noun: str, number: bool = True) -> str:
    word = noun if count == 1 else f"{noun}s"
    return f"{count} {word}" if number else word
