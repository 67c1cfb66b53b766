"""Azure's REST API models of the resource types infra/ declares, as the azure-mgmt-* SDKs
(requirements-infra.txt) carry them per API version.

A type@version is known when the SDK has, for that API version, a PUT operation on the type's
URL and the model class that operation sends; the URL also says at which scopes the type is
deployed (a resource group, a subscription, or any resource: an extension type such as
roleAssignments). A model's `_attribute_map` gives each property its REST path (flattened
ones with dots: `properties.serverFarmId`) and its type (`str`, `[Subnet]`, `{str}`, a class
name); `_validation` marks the read-only and the required ones and carries bounds
(`maximum`, `max_length`, `pattern`, …); `__init__`'s annotations name the enum of an
enum-typed property (`Union[str, "_models.SkuName"]`), whose values the models module holds;
`_subtype_map` names the subclass for each value of a discriminator
(`endpointType: 'AzureFunction'`).
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

# Resource type -> (SDK package, the model class its PUT operation sends). Add a row for a new
# resource type; the API version is looked up in the package.
RESOURCE_MODELS: dict[str, tuple[str, str]] = {
    "Microsoft.Authorization/roleAssignments": (
        "azure.mgmt.authorization",
        "RoleAssignmentCreateParameters",
    ),
    "Microsoft.Authorization/roleDefinitions": ("azure.mgmt.authorization", "RoleDefinition"),
    "Microsoft.ContainerService/managedClusters": ("azure.mgmt.containerservice", "ManagedCluster"),
    "Microsoft.EventGrid/systemTopics": ("azure.mgmt.eventgrid", "SystemTopic"),
    "Microsoft.EventGrid/systemTopics/eventSubscriptions": (
        "azure.mgmt.eventgrid",
        "EventSubscription",
    ),
    "Microsoft.EventGrid/topics": ("azure.mgmt.eventgrid", "Topic"),
    "Microsoft.EventGrid/topics/eventSubscriptions": ("azure.mgmt.eventgrid", "EventSubscription"),
    "Microsoft.Insights/actionGroups": ("azure.mgmt.monitor", "ActionGroupResource"),
    "Microsoft.Insights/components": (
        "azure.mgmt.applicationinsights",
        "ApplicationInsightsComponent",
    ),
    "Microsoft.Insights/diagnosticSettings": ("azure.mgmt.monitor", "DiagnosticSettingsResource"),
    "Microsoft.Insights/metricAlerts": ("azure.mgmt.monitor", "MetricAlertResource"),
    "Microsoft.Insights/scheduledQueryRules": ("azure.mgmt.monitor", "ScheduledQueryRuleResource"),
    "Microsoft.Insights/workbooks": ("azure.mgmt.applicationinsights", "Workbook"),
    "Microsoft.KeyVault/vaults": ("azure.mgmt.keyvault", "VaultCreateOrUpdateParameters"),
    "Microsoft.KeyVault/vaults/secrets": ("azure.mgmt.keyvault", "SecretCreateOrUpdateParameters"),
    "Microsoft.ManagedIdentity/userAssignedIdentities": ("azure.mgmt.msi", "Identity"),
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials": (
        "azure.mgmt.msi",
        "FederatedIdentityCredential",
    ),
    "Microsoft.Network/natGateways": ("azure.mgmt.network", "NatGateway"),
    "Microsoft.Network/networkSecurityGroups": ("azure.mgmt.network", "NetworkSecurityGroup"),
    "Microsoft.Network/privateDnsZones": ("azure.mgmt.privatedns", "PrivateZone"),
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks": (
        "azure.mgmt.privatedns",
        "VirtualNetworkLink",
    ),
    "Microsoft.Network/privateEndpoints": ("azure.mgmt.network", "PrivateEndpoint"),
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": (
        "azure.mgmt.network",
        "PrivateDnsZoneGroup",
    ),
    "Microsoft.Network/publicIPAddresses": ("azure.mgmt.network", "PublicIPAddress"),
    "Microsoft.Network/virtualNetworks": ("azure.mgmt.network", "VirtualNetwork"),
    "Microsoft.Network/virtualNetworks/subnets": ("azure.mgmt.network", "Subnet"),
    "Microsoft.OperationalInsights/workspaces": ("azure.mgmt.loganalytics", "Workspace"),
    "Microsoft.Resources/resourceGroups": ("azure.mgmt.resource.resources", "ResourceGroup"),
    "Microsoft.Storage/storageAccounts": ("azure.mgmt.storage", "StorageAccountCreateParameters"),
    "Microsoft.Storage/storageAccounts/blobServices": (
        "azure.mgmt.storage",
        "BlobServiceProperties",
    ),
    "Microsoft.Storage/storageAccounts/blobServices/containers": (
        "azure.mgmt.storage",
        "BlobContainer",
    ),
    "Microsoft.Storage/storageAccounts/queueServices": (
        "azure.mgmt.storage",
        "QueueServiceProperties",
    ),
    "Microsoft.Storage/storageAccounts/queueServices/queues": (
        "azure.mgmt.storage",
        "StorageQueue",
    ),
    "Microsoft.Web/serverfarms": ("azure.mgmt.web", "AppServicePlan"),
    "Microsoft.Web/sites": ("azure.mgmt.web", "Site"),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": (
        "azure.mgmt.web",
        "CsmPublishingCredentialsPoliciesEntity",
    ),
}

_KNOWN = {name.lower(): entry for name, entry in RESOURCE_MODELS.items()}
# The suffixes of a PUT model whose GET model is another class (StorageAccountCreateParameters
# sends what StorageAccount returns).
_PUT_SUFFIXES = ("CreateOrUpdateParameters", "CreateParameters", "Parameters")

SCALARS = frozenset(
    {
        "str",
        "int",
        "long",
        "float",
        "decimal",
        "bool",
        "iso-8601",
        "rfc-1123",
        "unix-time",
        "duration",
        "date",
        "time",
        "bytearray",
        "base64",
    }
)


class UnknownModel(LookupError):
    pass


# --- which models: the SDK's operations -------------------------------------------------

_BUILDER = re.compile(r"^def build_\w+\(.*?(?=^def |^class |\Z)", re.S | re.M)
_PUT = re.compile(r"""method=["']PUT["']""")
_URL = re.compile(r"""["']template_url["'],\s*["']([^"']+)["']""")
_VERSION = re.compile(
    r"""kwargs\.pop\(\s*["']api_version["'],\s*"""
    r"""(?:_params\.pop\(\s*["']api-version["'],\s*)?["']([^"']+)["']"""
)


def type_of_url(url: str) -> str | None:
    """The resource type a URL template addresses, e.g. Microsoft.Web/sites/config."""
    _, providers, tail = url.rpartition("/providers/")
    if not providers:
        segments = url.strip("/").split("/")
        if len(segments) == 4 and segments[2].lower() == "resourcegroups":
            return "Microsoft.Resources/resourceGroups"
        return None
    segments = tail.split("/")
    return "/".join([segments[0], *segments[1::2]])


def scope_of_url(url: str) -> str:
    """Where a PUT URL template puts its resource: resourceGroup, subscription, tenant,
    managementGroup, or extension (`/{scope}/providers/…`: on any resource or scope)."""
    head = url.partition("/providers/")[0].lower()
    if head.startswith("/{"):
        return "extension"
    if head.startswith("/subscriptions/{subscriptionid}/resourcegroups/{"):
        # A resource group itself (no /providers/) lives in its subscription.
        return "resourceGroup" if "/providers/" in url else "subscription"
    if head.startswith("/subscriptions/"):
        return "subscription"
    return "managementGroup" if "managementgroups" in head else "tenant"


@cache
def put_operations(operations: Path) -> dict[str, dict[str, frozenset[str]]]:
    """Lower-cased resource type -> API version -> the scopes of its PUT operations, in one
    package folder."""
    found: dict[str, dict[str, set[str]]] = {}
    for source in sorted(operations.glob("_*.py")):
        for builder in _BUILDER.finditer(source.read_text()):
            text = builder.group()
            url, version = _URL.search(text), _VERSION.search(text)
            if _PUT.search(text) and url and version and (type_ := type_of_url(url.group(1))):
                scopes = found.setdefault(type_.lower(), {}).setdefault(version.group(1), set())
                scopes.add(scope_of_url(url.group(1)))
    return {
        type_: {version: frozenset(scopes) for version, scopes in versions.items()}
        for type_, versions in found.items()
    }


def put_versions(operations: Path) -> dict[str, frozenset[str]]:
    """Lower-cased resource type -> the API versions of its PUT operations in a package folder."""
    return {type_: frozenset(v) for type_, v in put_operations(operations).items()}


def models_module(resource_type: str, api_version: str) -> tuple[ModuleType, type[Any]]:
    """The SDK models module of resource_type@api_version and the class its PUT sends.

    Raises UnknownModel when no installed SDK has that type at that version.
    """
    return _models_module(resource_type.lower(), api_version)


def deploy_scopes(resource_type: str, api_version: str) -> frozenset[str]:
    """The scopes (scope_of_url) the SDK's PUT operations of resource_type@api_version take.

    Raises UnknownModel when no installed SDK has that type at that version.
    """
    return _locate(resource_type.lower(), api_version)[1]


@cache
def _models_module(resource_type: str, api_version: str) -> tuple[ModuleType, type[Any]]:
    location, _ = _locate(resource_type, api_version)
    class_name = _KNOWN[resource_type][1]
    module = importlib.import_module(f"{location}.models")
    model = getattr(module, class_name, None)
    if not isinstance(model, type):
        raise UnknownModel(f"{location}.models has no {class_name}")
    return module, model


def read_shape(resource_type: str, api_version: str) -> Shape:
    """What a reference to a resource of resource_type@api_version may read: the properties of
    the model its PUT sends and of the one its GET returns, read-only ones included.

    Raises UnknownModel when no installed SDK has that type at that version.
    """
    module, model = models_module(resource_type, api_version)
    tree = shape(model)[0]
    suffix = next((s for s in _PUT_SUFFIXES if model.__name__.endswith(s)), None)
    read_model = getattr(module, model.__name__.removesuffix(suffix), None) if suffix else None
    if isinstance(read_model, type) and read_model is not model:
        tree = _merge(shape(read_model)[0], tree)
    return tree


def _merge(first: Shape, second: Shape) -> Shape:
    merged: Shape = dict(first)
    for key, node in second.items():
        mine = merged.get(key)
        merged[key] = (
            _merge(mine, node) if isinstance(mine, dict) and isinstance(node, dict) else node
        )
    return merged


@cache
def _locate(resource_type: str, api_version: str) -> tuple[str, frozenset[str]]:
    """The package (or versioned folder) holding resource_type@api_version, and its scopes."""
    if resource_type not in _KNOWN:
        raise UnknownModel(f"unknown resource type (no row for it in RESOURCE_MODELS, {__file__})")
    package, _ = _KNOWN[resource_type]
    # Multi-version packages keep each API version in a folder of its own (v2024_04_01);
    # others carry one API version per operation, at the package's root.
    versioned = f"{package}.v{api_version.replace('-', '_')}"
    location = versioned if _exists(versioned) else package
    spec = importlib.util.find_spec(location) if _exists(location) else None
    if spec is None or not spec.submodule_search_locations:
        raise UnknownModel(f"{package} is not installed (requirements-infra.txt)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    versions = put_operations(folder / "operations").get(resource_type.lower(), {})
    if api_version not in versions:
        carried = ", ".join(sorted(set(versions) | _folder_versions(package, resource_type)))
        raise UnknownModel(f"unknown API version (the installed models carry: {carried or 'none'})")
    return location, versions[api_version]


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _folder_versions(package: str, resource_type: str) -> set[str]:
    """The API versions of resource_type in a multi-version package's folders (for messages)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return set()
    root = Path(next(iter(spec.submodule_search_locations)))
    return {
        version
        for operations in root.glob("v*/operations")
        for version in put_versions(operations).get(resource_type.lower(), frozenset())
    }


# --- what a model holds -----------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One property of a model: its REST type, whether only the service sets it, whether a
    request must give it, the values of its enum (extensible or not), and its bounds
    (msrest's `maximum`, `minimum`, `max_length`, `min_length`, `pattern`, …)."""

    type: str
    read_only: bool
    required: bool = False
    enum: tuple[str | int, ...] = ()
    bounds: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


# A model's properties as a tree: flattened keys (properties.serverFarmId) become nesting.
Shape = dict[str, "Field | Shape"]

_DOT = re.compile(r"(?<!\\)\.")


@cache
def shape(model: type[Any]) -> tuple[Shape, bool]:
    """The property tree of a model class, and whether it takes any other key too
    (additionalProperties)."""
    tree: Shape = {}
    open_ = False
    validation: dict[str, dict[str, Any]] = getattr(model, "_validation", {})
    for name, attribute in getattr(model, "_attribute_map", {}).items():
        key: str = attribute["key"]
        if not key:  # additional_properties
            open_ = True
            continue
        *parents, leaf = [part.replace("\\.", ".") for part in _DOT.split(key)]
        node = tree
        for part in parents:
            child = node.setdefault(part, {})
            if isinstance(child, Field):  # both a typed property and a flattened parent
                break
            node = child
        else:
            rules = dict(validation.get(name, {}))
            read_only = bool(rules.pop("readonly", False))
            required = bool(rules.pop("required", False))
            enum_ = enum_values(model, name)
            node[leaf] = Field(attribute["type"], read_only, required, enum_, rules)
    return tree, open_


_WORD = re.compile(r"[A-Za-z_]\w*")


def enum_values(model: type[Any], attribute: str) -> tuple[str | int, ...]:
    """The values of the enum that model's __init__ annotates attribute with (`Union[str,
    "_models.Kind"]`, or `ForwardRef('Kind')` in some packages), or () when it names none."""
    annotation = _annotations(model).get(attribute)
    if annotation is None:
        return ()
    module = sys.modules.get(model.__module__.rpartition(".")[0])
    for name in _WORD.findall(str(annotation)):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, enum.Enum):
            return tuple(member.value for member in found)
    return ()


@cache
def _annotations(model: type[Any]) -> dict[str, Any]:
    init = model.__dict__.get("__init__")
    return dict(getattr(init, "__annotations__", {}) or {})


def discriminator(model: type[Any]) -> tuple[str, dict[str, str]] | None:
    """The REST key that picks a subclass of model, and its value -> class name map."""
    subtypes: dict[str, dict[str, str]] = getattr(model, "_subtype_map", {}) or {}
    for name, classes in subtypes.items():
        attribute = getattr(model, "_attribute_map", {}).get(name)
        if attribute:
            return attribute["key"].replace("\\.", "."), classes
    return None


def model_class(module: ModuleType, type_name: str) -> type[Any] | None:
    """The model class a REST type names, or None for scalars, enums and unknown names."""
    found = getattr(module, type_name, None)
    if not isinstance(found, type) or issubclass(found, enum.Enum):
        return None
    return found if hasattr(found, "_attribute_map") else None
