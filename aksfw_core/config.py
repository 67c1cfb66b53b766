"""The configuration document (`AKSFW_CONFIG` inline JSON or `AKSFW_CONFIG_FILE` path),
parsed once into one frozen, validated `Settings`.

Every error names the field at fault. Secrets never sit in the document: the Panorama
key comes from `PANORAMA_API_KEY`, cluster tokens from Key Vault secrets named here.
Loading reads the environment (and the file it names) and nothing else.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aksfw_core.endpoints import panorama_url
from aksfw_core.errors import InputError
from aksfw_core.jsondoc import load_json
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.rules.messages import PANORAMA_TARGET, is_firewall_serial
from aksfw_core.rules.resource_ids import is_subscription_id, managed_cluster_id
from aksfw_core.rules.selectors import NamedSelector, named_selector
from aksfw_core.rules.tags import MAX_TAG_TIMEOUT_S, check_cluster_name

PUBLIC_ARM_ENDPOINT = "https://management.azure.com"
_TAG_KEY_RE = re.compile(r"[^<>%&\\?/]{1,512}")
_SECRET_NAME_RE = re.compile(r"[0-9A-Za-z-]{1,127}")

T = TypeVar("T")


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
    ca_bundle: str | None = None
    """PEM file of CAs to trust instead of the system store."""
    verify_tls: bool = True
    """False turns certificate checks off (logged as a warning)."""
    batch_size: int = 1000
    """IP entries per uid-message at most."""
    tag_timeout_s: int = 0
    """Seconds a registered tag lives on PAN-OS; 0 = never expires."""
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

    def node_subnets_for(self, cluster: ClusterConfig | None) -> bool:
        """Whether a cluster (its explicit definition, or None for one found by tag) has
        its node subnets registered."""
        if cluster is not None and cluster.node_subnets is not None:
            return cluster.node_subnets
        return self.node_subnets


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build the settings from `AKSFW_CONFIG` or `AKSFW_CONFIG_FILE` and `AKSFW_ARM_ENDPOINT`.

    Raises:
        InputError: no document, an unreadable file, or an invalid document.
    """
    inline, path = environ.get("AKSFW_CONFIG"), environ.get("AKSFW_CONFIG_FILE")
    if inline and path:
        raise InputError("set AKSFW_CONFIG or AKSFW_CONFIG_FILE, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            raise InputError(f"AKSFW_CONFIG_FILE {path}: {error.strerror}") from None
        where = path
    elif inline:
        text, where = inline, "AKSFW_CONFIG"
    else:
        raise InputError("set AKSFW_CONFIG (JSON) or AKSFW_CONFIG_FILE (path)")
    document = load_json(text, where)
    arm = environ.get("AKSFW_ARM_ENDPOINT") or PUBLIC_ARM_ENDPOINT
    return parse_settings(document, arm_endpoint=arm)


def parse_settings(document: object, arm_endpoint: str = PUBLIC_ARM_ENDPOINT) -> Settings:
    """Validate a configuration document.

    Raises:
        InputError: naming the first field that is wrong.
    """
    root = _Fields(document, "config")
    subscriptions = root.list("subscriptions", _subscription)
    discovery = root.optional("discovery", _discovery) or Discovery()
    clusters = root.list("clusters", _cluster)
    panorama = root.optional("panorama", _panorama)
    resync = root.optional("resync", _resync) or ResyncConfig()
    key_vault = root.optional("keyVault", _https_url)
    limits = root.optional("limits", _limits) or Limits()
    node_subnets = root.optional("nodeSubnets", _boolean) is True
    root.done()
    if discovery.tag_key and not subscriptions:
        raise InputError("config.discovery.tag: needs config.subscriptions to scan")
    _check_unique_clusters(clusters)
    if key_vault is None and any(isinstance(c.credential, TokenAccess) for c in clusters):
        raise InputError("config.keyVault: required by clusters with a token credential")
    return Settings(
        subscriptions=tuple(dict.fromkeys(subscriptions)),
        discovery=discovery,
        clusters=tuple(clusters),
        panorama=replace(panorama, limits=limits) if panorama else None,
        resync=resync,
        key_vault_url=key_vault,
        arm_endpoint=_https_url(arm_endpoint, "AKSFW_ARM_ENDPOINT", allow_http=True),
        limits=limits,
        node_subnets=node_subnets,
    )


class _Fields:
    """Reads the fields of one JSON object, tracking the path and unknown keys."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            raise InputError(f"{path}: expected an object")
        self.value: Mapping[str, Any] = value
        self.path = path
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def optional(self, key: str, parse: Callable[[Any, str], T]) -> T | None:
        self.seen.add(key)
        if self.value.get(key) is None:
            return None
        return parse(self.value[key], self.at(key))

    def required(self, key: str, parse: Callable[[Any, str], T]) -> T:
        result = self.optional(key, parse)
        if result is None:
            raise InputError(f"{self.at(key)}: required")
        return result

    def list(self, key: str, parse: Callable[[Any, str], T]) -> list[T]:
        self.seen.add(key)
        items = self.value.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            raise InputError(f"{self.at(key)}: expected a list")
        return [parse(item, f"{self.at(key)}[{index}]") for index, item in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            raise InputError(f"{self.at(unknown[0])}: unknown field")


def _string(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{path}: expected a non-empty string")
    return value.strip()


def _integer(low: int, high: int) -> Callable[[object, str], int]:
    def parse(value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{path}: expected a whole number from {low} to {high}")
        return value

    return parse


def _naming(where: str, check: Callable[[str], T], text: str) -> T:
    """`check(text)`, its InputError prefixed with `where`."""
    try:
        return check(text)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{path}: expected true or false")
    return value


def _https_url(value: object, path: str, allow_http: bool = False) -> str:
    text = _string(value, path)
    schemes = ("https://", "http://") if allow_http else ("https://",)
    if not text.lower().startswith(schemes) or any(c.isspace() for c in text):
        raise InputError(f"{path}: expected an https:// URL")
    return text.rstrip("/")


def _subscription(value: object, path: str) -> str:
    text = _string(value, path)
    if not is_subscription_id(text):
        raise InputError(f"{path}: {text!r} is not a subscription ID (a GUID)")
    return text.lower()


def _discovery(value: object, path: str) -> Discovery:
    fields = _Fields(value, path)
    tag = fields.optional("tag", _string)
    fields.done()
    if tag is None:
        return Discovery()
    key, equals, wanted = tag.partition("=")
    key = key.strip()
    if not _TAG_KEY_RE.fullmatch(key):
        raise InputError(f"{path}.tag: {key!r} is not a valid Azure tag name")
    return Discovery(tag_key=key, tag_value=wanted.strip() if equals else None)


def _cluster(value: object, path: str) -> ClusterConfig:
    fields = _Fields(value, path)
    resource_id = fields.required("id", _string)
    _naming(f"{path}.id", managed_cluster_id, resource_id)
    alias = fields.optional("alias", _tag_name)
    selectors = fields.list("selectors", _selector)
    credential = fields.optional("credential", _credential) or AzureAccess()
    node_subnets = fields.optional("nodeSubnets", _boolean)
    fields.done()
    names = [selector.name for selector in selectors]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise InputError(f"{path}.selectors: name {duplicate!r} is used twice")
    return ClusterConfig(resource_id, alias, tuple(selectors), credential, node_subnets)


def _tag_name(value: object, path: str) -> str:
    return _naming(path, check_cluster_name, _string(value, path))


def _selector(value: object, path: str) -> NamedSelector:
    fields = _Fields(value, path)
    name = fields.required("name", _string)
    match = fields.optional("match", lambda v, p: v if isinstance(v, str) else _string(v, p))
    namespace = fields.optional("namespace", _string)
    fields.done()
    return _naming(path, lambda text: named_selector(text, match or "", namespace), name)


def _credential(value: object, path: str) -> ClusterAccessKind:
    if value == "azure":
        return AzureAccess()
    fields = _Fields(value, path)
    kind = fields.required("kind", _string)
    if kind == "azure":
        fields.done()
        return AzureAccess()
    if kind != "token":
        raise InputError(f"{path}.kind: expected 'azure' or 'token'")
    server = fields.required("server", _https_url)
    secret = fields.required("secret", _string)
    ca = fields.optional("ca", _string)
    fields.done()
    if not _SECRET_NAME_RE.fullmatch(secret):
        raise InputError(f"{path}.secret: {secret!r} is not a Key Vault secret name")
    if ca is not None and "-----BEGIN CERTIFICATE-----" not in ca:
        raise InputError(f"{path}.ca: expected a PEM certificate")
    return TokenAccess(server=server, secret=secret, ca=ca)


def _panorama(value: object, path: str) -> PanoramaSettings:
    fields = _Fields(value, path)
    url = fields.required("host", panorama_host)
    given: dict[str, Any] = {
        "targets": fields.optional("targets", _targets),
        "vsys": fields.optional("vsys", vsys_name),
        "ca_bundle": fields.optional("caBundle", ca_bundle),
        "verify_tls": fields.optional("verifyTls", _boolean),
        "tag_timeout_s": fields.optional("tagTimeoutSeconds", tag_timeout_s),
        "batch_size": fields.optional("batchSize", batch_size),
    }
    fields.done()  # what is not given keeps PanoramaSettings' default
    return replace(PanoramaSettings(url), **{k: v for k, v in given.items() if v is not None})


# The fields the command line takes as options too (`aksfw_core.cli.options`): one check
# each, told `where` (document path or option); each raises InputError naming `where`.


def panorama_host(value: object, where: str) -> str:
    """`panorama.host`, `--panorama` as a base URL (`endpoints.panorama_url`)."""
    return _naming(where, panorama_url, _string(value, where))


def firewall_serial(value: object, where: str) -> str:
    """`panorama.targets.serials[]`, `--target`: a managed firewall's serial number."""
    text = _string(value, where)
    if not is_firewall_serial(text):
        raise InputError(f"{where}: {text!r} is not a firewall serial number")
    return text


def vsys_name(value: object, where: str) -> str:
    """`panorama.vsys`, `--vsys`: a virtual system on the target, e.g. `vsys1`."""
    return _string(value, where)


batch_size = _integer(1, 5000)
"""`panorama.batchSize`, `--batch-size`: IP entries per uid-message."""
tag_timeout_s = _integer(0, MAX_TAG_TIMEOUT_S)
"""`panorama.tagTimeoutSeconds`, `--tag-timeout`: seconds a registered tag lives (PAN-OS
takes up to 30 days; 0 = never expires)."""


def ca_bundle(value: object, where: str) -> str:
    """`panorama.caBundle`, `--ca-bundle`: a PEM file that exists and can be read, so the
    mistake shows at start-up instead of on the first request."""
    name = _string(value, where)
    if not os.path.isfile(name):
        raise InputError(f"{where}: {name} is not a file")
    try:
        with open(name, "rb") as file:
            file.read(1)
    except OSError as error:
        raise InputError(f"{where}: {name} cannot be read ({error.strerror})") from None
    return name


def _document_key(name: str) -> str:
    """`panorama_read_timeout_s` → `panoramaReadTimeoutSeconds`: the unit stays in the name."""
    if name.endswith("_s"):
        name = name.removesuffix("_s") + "_seconds"
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


_LIMIT_FIELDS = {_document_key(limit.name): limit for limit in dataclasses.fields(Limits)}


def _limits(value: object, path: str) -> Limits:
    if not isinstance(value, Mapping):
        raise InputError(f"{path}: expected an object")
    chosen: dict[str, float | int] = {}
    for key, number in value.items():
        limit = _LIMIT_FIELDS.get(key)
        if limit is None:
            raise InputError(f"{path}.{key}: unknown limit")
        whole = isinstance(limit.default, int)
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or (whole and not isinstance(number, int))
            or not number > 0
        ):
            kind = "a whole number" if whole else "a number"
            raise InputError(f"{path}.{key}: expected {kind} above 0")
        chosen[limit.name] = number
    return Limits(**chosen)  # type: ignore[arg-type]


def _targets(value: object, path: str) -> PanoramaTargets:
    if value == "panorama":
        return PanoramaTargets()
    fields = _Fields(value, path)
    targets = PanoramaTargets(
        panorama=fields.optional("panorama", _boolean) is True,
        device_groups=tuple(fields.list("deviceGroups", _string)),
        serials=tuple(fields.list("serials", firewall_serial)),
    )
    fields.done()
    if not (targets.panorama or targets.device_groups or targets.serials):
        raise InputError(f"{path}: names no target (panorama, deviceGroups or serials)")
    return targets


def _resync(value: object, path: str) -> ResyncConfig:
    fields = _Fields(value, path)
    schedule = fields.optional("schedule", _string)
    delay = fields.optional("followUpDelaySeconds", _integer(0, 3600))
    fields.done()
    if schedule is not None and len(schedule.split()) != 6:
        raise InputError(f"{path}.schedule: expected an NCRONTAB expression of six fields")
    defaults = ResyncConfig()
    return ResyncConfig(
        schedule=schedule or defaults.schedule,
        follow_up_delay_s=defaults.follow_up_delay_s if delay is None else delay,
    )


def _check_unique_clusters(clusters: list[ClusterConfig]) -> None:
    seen_ids: set[str] = set()
    for index, cluster in enumerate(clusters):
        key = cluster.id.casefold()
        if key in seen_ids:
            raise InputError(f"config.clusters[{index}].id: listed twice")
        seen_ids.add(key)
