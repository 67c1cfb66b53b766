"""What the configuration document becomes: one frozen `Settings`, grouped by concern,
each field saying its unit and the document key it comes from."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.rules.messages import PANORAMA_TARGET
from aksfw_core.rules.resource_ids import managed_cluster_id
from aksfw_core.rules.selectors import NamedSelector
from aksfw_core.rules.tag_options import TagOptions

PUBLIC_ARM_ENDPOINT = "https://management.azure.com"


@dataclass(frozen=True)
class AzureAccess:
    """Reach the cluster as the app's managed identity (`listClusterUserCredential`)."""

    kind: str = "azure"


@dataclass(frozen=True)
class TokenAccess:
    """Reach the cluster with a service-account token kept in Key Vault."""

    server: str
    """API server URL, `https://…`."""
    secret: str
    """Name of the Key Vault secret holding the token."""
    ca: str | None = None
    """PEM of the API server's CA; None = the system trust store."""
    kind: str = "token"


ClusterAccessKind = AzureAccess | TokenAccess


@dataclass(frozen=True)
class ClusterConfig:
    """A cluster listed explicitly in the configuration."""

    id: str
    """Managed cluster resource ID, as written."""
    alias: str | None = None
    """Name used in tags instead of the AKS name."""
    selectors: tuple[NamedSelector, ...] = ()
    credential: ClusterAccessKind = field(default_factory=AzureAccess)
    node_subnets: bool | None = None
    """`nodeSubnets`: register its node pools' subnet CIDRs under `aks.<cluster>.node_subnet`
    (needs PAN-OS 10.0+); None = the top-level `nodeSubnets`."""
    namespace_tags: bool | None = None
    """`namespaceTags`: its Services' IPs also carry `aks.<cluster>.ns.<namespace>`; None =
    the top-level `namespaceTags`."""
    annotation_namespaces: frozenset[str] | None = None
    """`annotationTags.namespaces`: where `aksfw.io/tags` adds tags (`*`: everywhere; empty:
    nowhere); None = the top-level `annotationTags`."""
    egress_tags: bool | None = None
    """`egressTags`: register its outbound addresses and Static Egress Gateway prefixes
    (`aks.<cluster>.egress…`); None = the top-level `egressTags`."""

    @property
    def name(self) -> str:
        """The AKS cluster's name, from its resource ID as written here."""
        return managed_cluster_id(self.id).path[1]

    @property
    def tag_name(self) -> str:
        """`<cluster>` in its tags: the alias, or the AKS name."""
        return self.alias or self.name


@dataclass(frozen=True)
class Discovery:
    """Which clusters in the scanned subscriptions are monitored, by Azure tag."""

    tag_key: str | None = None
    """Clusters carrying this tag are monitored; None = no discovery by tag."""
    tag_value: str | None = None
    """If set, the tag must also have this value (case-insensitive)."""


@dataclass(frozen=True)
class PanoramaTargets:
    """Where IP-tags are registered."""

    panorama: bool = True
    """On Panorama itself (for redistribution)."""
    device_groups: tuple[str, ...] = ()
    """On every connected firewall of these device groups."""
    serials: tuple[str, ...] = ()
    """On these firewalls."""


@dataclass(frozen=True)
class PanoramaSettings:
    """The Panorama to keep in step and how to talk to it: the configuration's `panorama`
    (with its `limits`) for the app, or the command line's options; one client's settings
    once `target` names what it acts on."""

    url: str
    """Base URL, `https://host[:port]` (or `http://` for a local simulator), normalised."""
    targets: PanoramaTargets = field(default_factory=PanoramaTargets)
    """Where the app registers (the client itself acts on `target`)."""
    target: str | None = None
    """Serial of a managed firewall to act on through Panorama; None = Panorama itself."""
    vsys: str | None = None
    """Virtual system on the target, e.g. `vsys1`; None = the default."""
    ca_certificates: str | None = None
    """PEM text of the CAs to trust instead of the system store (`caCertificates`, the
    `PANORAMA_CA_CERTIFICATES` setting, `--ca-bundle FILE`); the host name is checked."""
    certificate_sha256: str | None = None
    """SHA-256 fingerprint of Panorama's own certificate, 64 lower-case hex digits
    (`certificateSha256`, `--certificate-sha256`): only that certificate is accepted,
    whoever issued it and whatever name it carries (PAN-OS's self-signed default)."""
    verify_tls: bool = True
    """False turns certificate checks off (logged as a warning)."""
    batch_size: int = 1000
    """IP entries per uid-message at most."""
    tag_timeout_s: int = 0
    """Seconds a registered tag lives on PAN-OS; 0 = never expires."""
    capacity_warning_ips: int | None = None
    """Registered IPs on one target (from all sources) at which aksfw warns, before the
    device model's limit refuses registrations (`capacityWarningIps`); None = no warning."""
    limits: Limits = field(default_factory=Limits)
    """Timeouts, the total deadline per request, and caps on answers and pages."""
    retry: RetrySettings = field(default_factory=RetrySettings)
    """How transient faults are retried."""

    def for_target(self, target: str) -> PanoramaSettings:
        """The settings of a client acting on `target`: `panorama` or a firewall serial."""
        return replace(self, target=None if target == PANORAMA_TARGET else target)


@dataclass(frozen=True)
class ResyncConfig:
    """When clusters are read again without an event."""

    schedule: str = "0 */5 * * * *"
    """NCRONTAB schedule of the full resync timer."""
    follow_up_delay_s: int = 60
    """Seconds after an event before the follow-up resync."""


@dataclass(frozen=True)
class Settings:
    """Everything aksfw is configured with."""

    subscriptions: tuple[str, ...] = ()
    discovery: Discovery = field(default_factory=Discovery)
    clusters: tuple[ClusterConfig, ...] = ()
    panorama: PanoramaSettings | None = None
    resync: ResyncConfig = field(default_factory=ResyncConfig)
    key_vault_url: str | None = None
    """Vault holding cluster tokens (required by `token` credentials)."""
    arm_endpoint: str = PUBLIC_ARM_ENDPOINT
    """Resource Manager base URL (`AKSFW_ARM_ENDPOINT`)."""
    limits: Limits = field(default_factory=Limits)
    """Timeouts, caps and TTLs (`limits`)."""
    node_subnets: bool = False
    """`nodeSubnets`: register every monitored cluster's node-pool subnet CIDRs under
    `aks.<cluster>.node_subnet` (PAN-OS 10.0+ takes networks; the app's identity needs
    `Microsoft.Network/virtualNetworks/read` and `.../subnets/read` on the VNets);
    `clusters[].nodeSubnets` overrides it per cluster. Off by default."""
    namespace_tags: bool = False
    """`namespaceTags`: every monitored cluster's LoadBalancer Service IPs also carry
    `aks.<cluster>.ns.<namespace>`; `clusters[].namespaceTags` overrides it. Off by default."""
    annotation_namespaces: frozenset[str] = frozenset()
    """`annotationTags.namespaces`: the namespaces whose Services' `aksfw.io/tags` annotation
    adds `aks.<cluster>.tag.<value>` tags (`*`: every namespace); `clusters[].annotationTags`
    overrides it. Empty by default: annotation tags off (`aksfw.io/ignore` always works)."""

    def tag_options_for(self, cluster: ClusterConfig | None) -> TagOptions:
        """The opt-in tags of a cluster (its explicit definition, or None for one found by
        tag): its own `namespaceTags` and `annotationTags`, else the top-level ones."""
        if cluster is None:
            return TagOptions(self.namespace_tags, self.annotation_namespaces)
        namespace_tags = cluster.namespace_tags
        namespaces = cluster.annotation_namespaces
        return TagOptions(
            self.namespace_tags if namespace_tags is None else namespace_tags,
            self.annotation_namespaces if namespaces is None else namespaces,
        )

    def listed(self, cluster_id: str) -> ClusterConfig | None:
        """The entry of `clusters[]` for a managed cluster's resource ID (compared as
        Azure compares them, whatever the letter case), or None.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
        """
        wanted = managed_cluster_id(cluster_id).top_level_id()
        return next(
            (c for c in self.clusters if managed_cluster_id(c.id).top_level_id() == wanted),
            None,
        )

    egress_tags: bool = False
    """`egressTags`: register every monitored cluster's outbound addresses and prefixes under
    `aks.<cluster>.egress`, and each Static Egress Gateway's prefix under
    `aks.<cluster>.egress.<namespace>.<gateway>` (docs/egress.md: the reads and roles it
    needs); `clusters[].egressTags` overrides it per cluster. Off by default."""

    def egress_tags_for(self, cluster: ClusterConfig | None) -> bool:
        """Whether a cluster (its explicit definition, or None for one found by tag) has its
        egress addresses registered."""
        if cluster is not None and cluster.egress_tags is not None:
            return cluster.egress_tags
        return self.egress_tags

    def node_subnets_for(self, cluster: ClusterConfig | None) -> bool:
        """Whether a cluster (its explicit definition, or None for one found by tag) has
        its node subnets registered."""
        if cluster is not None and cluster.node_subnets is not None:
            return cluster.node_subnets
        return self.node_subnets
