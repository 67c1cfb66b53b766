"""Parsing the configuration document (`AKSFW_CONFIG` inline JSON or `AKSFW_CONFIG_FILE`
path) into `Settings`: every error names the field at fault. Loading reads the
environment (and the file it names) and nothing else.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import replace

from aksfw_core.config.model import (
    PUBLIC_ARM_ENDPOINT,
    AzureAccess,
    ClusterAccessKind,
    ClusterConfig,
    Discovery,
    PanoramaSettings,
    ResyncConfig,
    Settings,
    TokenAccess,
)
from aksfw_core.config.panorama import CA_CERTIFICATES_SETTING, panorama_section
from aksfw_core.config.reader import (
    Fields,
    boolean,
    https_url,
    integer,
    naming,
    string,
    unknown_key,
)
from aksfw_core.errors import InputError
from aksfw_core.jsondoc import load_json
from aksfw_core.limits import Limits
from aksfw_core.rules.resource_ids import is_subscription_id, managed_cluster_id
from aksfw_core.rules.selectors import NamedSelector, named_selector
from aksfw_core.rules.tag_options import annotation_namespaces, check_namespace
from aksfw_core.rules.tags import check_cluster_name

_TAG_KEY_RE = re.compile(r"[^<>%&\\?/]{1,512}")
_SECRET_NAME_RE = re.compile(r"[0-9A-Za-z-]{1,127}")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build the settings from `AKSFW_CONFIG` or `AKSFW_CONFIG_FILE`, `AKSFW_ARM_ENDPOINT`
    and `PANORAMA_CA_CERTIFICATES` (`panorama.caCertificates` kept out of the document, so
    that in Azure it can be a Key Vault reference).

    Raises:
        InputError: no document, an unreadable file, or an invalid document.
    """
    inline, path = environ.get("AKSFW_CONFIG"), environ.get("AKSFW_CONFIG_FILE")
    if inline and path:
        raise InputError("set AKSFW_CONFIG or AKSFW_CONFIG_FILE, not both")
    text: str | bytes
    if path:
        try:
            with open(path, "rb") as file:
                text = file.read()
        except OSError as error:
            raise InputError(f"AKSFW_CONFIG_FILE {path}: {error.strerror}") from None
        where = path
    elif inline:
        text, where = inline, "AKSFW_CONFIG"
    else:
        raise InputError("set AKSFW_CONFIG (JSON) or AKSFW_CONFIG_FILE (path)")
    return settings_from(load_json(text, where), environ)


def settings_from(document: object, environ: Mapping[str, str]) -> Settings:
    """Validate a configuration document with the settings the environment adds to it:
    `AKSFW_ARM_ENDPOINT` and `PANORAMA_CA_CERTIFICATES`.

    Raises:
        InputError: naming the first field, or setting, that is wrong.
    """
    arm = environ.get("AKSFW_ARM_ENDPOINT") or PUBLIC_ARM_ENDPOINT
    environ_ca = environ.get("PANORAMA_CA_CERTIFICATES") or None  # CA_CERTIFICATES_SETTING
    return parse_settings(document, arm_endpoint=arm, environ_ca=environ_ca)


def require_app_settings(settings: Settings) -> PanoramaSettings:
    """What the Functions app requires beyond a valid document, checked at its start-up
    (`Engine.from_environ`) and by `aksfw config check`: a `panorama` section; returns it.

    Raises:
        InputError: naming what is missing.
    """
    if settings.panorama is None:
        raise InputError("config.panorama: required by the Functions app")
    return settings.panorama


def parse_settings(
    document: object, arm_endpoint: str = PUBLIC_ARM_ENDPOINT, environ_ca: str | None = None
) -> Settings:
    """Validate a configuration document; `environ_ca` is the `PANORAMA_CA_CERTIFICATES`
    setting, if set.

    Raises:
        InputError: naming the first field that is wrong.
    """
    root = Fields(document, "config")
    subscriptions = root.list("subscriptions", _subscription)
    discovery = root.optional("discovery", _discovery) or Discovery()
    clusters = root.list("clusters", _cluster)
    panorama = root.optional("panorama", lambda value, at: panorama_section(value, at, environ_ca))
    resync = root.optional("resync", _resync) or ResyncConfig()
    key_vault = root.optional("keyVault", https_url)
    limits = root.optional("limits", _limits) or Limits()
    node_subnets = root.optional("nodeSubnets", boolean) is True
    namespace_tags = root.optional("namespaceTags", boolean) is True
    annotation_tags = root.optional("annotationTags", _annotation_tags) or frozenset()
    egress_tags = root.optional("egressTags", boolean) is True
    root.done()
    if environ_ca is not None and panorama is None:
        raise InputError(f"{CA_CERTIFICATES_SETTING}: set, but config.panorama is not")
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
        arm_endpoint=https_url(arm_endpoint, "AKSFW_ARM_ENDPOINT", allow_http=True),
        limits=limits,
        node_subnets=node_subnets,
        namespace_tags=namespace_tags,
        annotation_namespaces=annotation_tags,
        egress_tags=egress_tags,
    )


def _subscription(value: object, path: str) -> str:
    text = string(value, path)
    if not is_subscription_id(text):
        raise InputError(f"{path}: {text!r} is not a subscription ID (a GUID)")
    return text.lower()


def _discovery(value: object, path: str) -> Discovery:
    fields = Fields(value, path)
    tag = fields.optional("tag", string)
    fields.done()
    if tag is None:
        return Discovery()
    key, equals, wanted = tag.partition("=")
    key = key.strip()
    if not _TAG_KEY_RE.fullmatch(key):
        raise InputError(f"{path}.tag: {key!r} is not a valid Azure tag name")
    return Discovery(tag_key=key, tag_value=wanted.strip() if equals else None)


def _cluster(value: object, path: str) -> ClusterConfig:
    fields = Fields(value, path)
    resource_id = fields.required("id", string)
    naming(f"{path}.id", managed_cluster_id, resource_id)
    alias = fields.optional("alias", _tag_name)
    selectors = fields.list("selectors", _selector)
    credential = fields.optional("credential", _credential) or AzureAccess()
    node_subnets = fields.optional("nodeSubnets", boolean)
    namespace_tags = fields.optional("namespaceTags", boolean)
    annotation_tags = fields.optional("annotationTags", _annotation_tags)
    egress_tags = fields.optional("egressTags", boolean)
    fields.done()
    names = [selector.name for selector in selectors]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise InputError(f"{path}.selectors: name {duplicate!r} is used twice")
    return ClusterConfig(
        resource_id,
        alias,
        tuple(selectors),
        credential,
        node_subnets,
        namespace_tags=namespace_tags,
        annotation_namespaces=annotation_tags,
        egress_tags=egress_tags,
    )


def _annotation_tags(value: object, path: str) -> frozenset[str]:
    """`{"namespaces": ["shop", ...]}` (`["*"]`: every namespace; `[]`: none)."""
    fields = Fields(value, path)
    names = fields.required("namespaces", _namespace_list)
    fields.done()
    return annotation_namespaces(names)


def _namespace_list(value: object, path: str) -> list[str]:
    if not isinstance(value, list):
        raise InputError(f'{path}: expected a list of namespace names, or ["*"]')
    return [
        naming(f"{path}[{index}]", check_namespace, string(name, f"{path}[{index}]"))
        for index, name in enumerate(value)
    ]


def _tag_name(value: object, path: str) -> str:
    return naming(path, check_cluster_name, string(value, path))


def _selector(value: object, path: str) -> NamedSelector:
    fields = Fields(value, path)
    name = fields.required("name", string)
    match = fields.optional("match", lambda v, p: v if isinstance(v, str) else string(v, p))
    namespace = fields.optional("namespace", string)
    fields.done()
    return naming(path, lambda text: named_selector(text, match or "", namespace), name)


def _credential(value: object, path: str) -> ClusterAccessKind:
    if value == "azure":
        return AzureAccess()
    fields = Fields(value, path)
    kind = fields.required("kind", string)
    if kind == "azure":
        fields.done()
        return AzureAccess()
    if kind != "token":
        raise InputError(f"{path}.kind: expected 'azure' or 'token'")
    server = fields.required("server", https_url)
    secret = fields.required("secret", string)
    ca = fields.optional("ca", string)
    fields.done()
    if not _SECRET_NAME_RE.fullmatch(secret):
        raise InputError(f"{path}.secret: {secret!r} is not a Key Vault secret name")
    if ca is not None and "-----BEGIN CERTIFICATE-----" not in ca:
        raise InputError(f"{path}.ca: expected a PEM certificate")
    return TokenAccess(server=server, secret=secret, ca=ca)


def _document_key(name: str) -> str:
    """`panorama_read_timeout_s` → `panoramaReadTimeoutSeconds`: the unit stays in the name."""
    if name.endswith("_s"):
        name = name.removesuffix("_s") + "_seconds"
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


_LIMIT_FIELDS = {_document_key(limit.name): limit for limit in dataclasses.fields(Limits)}
_FORMER_LIMIT_KEYS = {"eventResyncWindowSeconds": "resyncRefillSeconds"}
"""Limits renamed since a release: the old key still sets the new one (0.1.0's documents
keep working)."""


def _limits(value: object, path: str) -> Limits:
    if not isinstance(value, Mapping):
        raise InputError(f"{path}: expected an object")
    chosen: dict[str, float | int] = {}
    for given, number in value.items():
        key: str = _FORMER_LIMIT_KEYS.get(given) or given
        if key != given and key in value:
            raise InputError(f"{path}.{given}: now called {key}: give only that")
        limit = _LIMIT_FIELDS.get(key)
        if limit is None:
            raise unknown_key(f"{path}.{key}", key, set(_LIMIT_FIELDS) - set(value), "limit")
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


def _resync(value: object, path: str) -> ResyncConfig:
    fields = Fields(value, path)
    schedule = fields.optional("schedule", string)
    delay = fields.optional("followUpDelaySeconds", integer(0, 3600))
    fields.done()
    if schedule is not None and len(schedule.split()) != 6:
        raise InputError(f"{path}.schedule: expected an NCRONTAB expression of six fields")
    defaults = ResyncConfig()
    return ResyncConfig(
        schedule=schedule or defaults.schedule,
        follow_up_delay_s=defaults.follow_up_delay_s if delay is None else delay,
    )


def _check_unique_clusters(clusters: list[ClusterConfig]) -> None:
    """One entry per cluster, and one tag name per entry: two listed clusters that would
    tag under one name are refused here, before any of them is read from Azure."""
    seen_ids: set[str] = set()
    for index, cluster in enumerate(clusters):
        key = cluster.id.casefold()
        if key in seen_ids:
            raise InputError(f"config.clusters[{index}].id: listed twice")
        seen_ids.add(key)
    by_tag_name: dict[str, int] = {}
    for index, cluster in enumerate(clusters):
        other = by_tag_name.setdefault(cluster.tag_name, index)
        if other != index:
            field, fix = ("alias", "another alias") if cluster.alias else ("id", "an alias")
            raise InputError(
                f"config.clusters[{index}].{field}: would tag as {cluster.tag_name!r}, as "
                f"config.clusters[{other}] does; give one {fix}"
            )
