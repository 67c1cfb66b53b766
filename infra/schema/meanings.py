"""What a Bicep value may be besides its own syntax (resolve.py finds which): a value known
only by its type (a parameter, a function's result), a resource, a module and its outputs,
a part of a REST model, the object of a scope function; and what Bicep's functions return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rest_models import SCALARS, Field, Shape, model_class
from syntax import ArrayLiteral, BicepFile, Literal, Loop, Module, ObjectLiteral, Property, Resource

# --- what a value may be, besides its syntax ----------------------------------------------


@dataclass(frozen=True)
class Known:
    """A value known by its type only (string, int, bool, object, array, null or any), with
    the bounds its parameter declares, if it is one."""

    line: int
    type: str
    origin: str = ""  # what it is, for messages: "param location", "toLower(…)"
    allowed: tuple[Any, ...] = ()
    bounds: Mapping[str, int] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ResourceValue:
    """A resource symbol; collection: declared with a loop and not indexed."""

    resource: Resource
    collection: bool = False


@dataclass(frozen=True)
class ModuleValue:
    module: Module
    file: BicepFile | None  # the module's own file, when it is a local one that reads
    collection: bool = False


@dataclass(frozen=True)
class OutputsValue:
    """`<module>.outputs`."""

    module: Module
    file: BicepFile


@dataclass(frozen=True)
class ModelValue:
    """A part of a resource as its REST model says: a property tree, or a REST type name
    ('Subnet', '[Subnet]', '{str}')."""

    models: ModuleType
    node: Shape | str
    label: str


@dataclass(frozen=True)
class ShapeValue:
    """An object whose keys are known (environment(), subscription(), …); None: any value."""

    keys: Mapping[str, ShapeValue | None] = field(compare=False, hash=False)
    label: str = ""


Meaning = (
    Literal
    | ObjectLiteral
    | ArrayLiteral
    | Loop
    | Known
    | ResourceValue
    | ModuleValue
    | OutputsValue
    | ModelValue
    | ShapeValue
)
Env = Mapping[str, tuple["Candidate", ...]]
Candidate = tuple[Meaning, Env]
EMPTY: Env = {}

# --- Bicep's functions ------------------------------------------------------------------


def _shape(label: str, **keys: ShapeValue | None) -> ShapeValue:
    return ShapeValue(keys, label)


_ENVIRONMENT = _shape(
    "environment()",
    name=None,
    gallery=None,
    graph=None,
    portal=None,
    graphAudience=None,
    activeDirectoryDataLake=None,
    batch=None,
    media=None,
    sqlManagement=None,
    vmImageAliasDoc=None,
    resourceManager=None,
    authentication=_shape(
        "environment().authentication",
        loginEndpoint=None,
        audiences=None,
        tenant=None,
        identityProvider=None,
    ),
    suffixes=_shape(
        "environment().suffixes",
        acrLoginServer=None,
        azureDatalakeAnalyticsCatalogAndJob=None,
        azureDatalakeStoreFileSystem=None,
        azureFrontDoorEndpointSuffix=None,
        keyvaultDns=None,
        sqlServerHostname=None,
        storage=None,
    ),
)
# The objects of the scope functions (Bicep's documentation, "Scope functions").
SCOPE_OBJECTS = {
    "environment": _ENVIRONMENT,
    "subscription": _shape(
        "subscription()",
        id=None,
        subscriptionId=None,
        tenantId=None,
        displayName=None,
        managedByTenants=None,
        tags=None,
    ),
    "resourceGroup": _shape(
        "resourceGroup()",
        id=None,
        name=None,
        type=None,
        location=None,
        managedBy=None,
        tags=None,
        properties=_shape("resourceGroup().properties", provisioningState=None),
    ),
    "tenant": _shape("tenant()", countryCode=None, displayName=None, id=None, tenantId=None),
    "managementGroup": _shape("managementGroup()", id=None, name=None, type=None, properties=None),
    "deployer": _shape("deployer()", objectId=None, tenantId=None, userPrincipalName=None),
}

_STRING = """base64 base64ToString dataUri dataUriToString format guid newGuid padLeft replace
string substring toLower toUpper trim uniqueString uri uriComponent uriComponentToString utcNow
dateTimeAdd dateTimeFromEpoch resourceId subscriptionResourceId tenantResourceId
extensionResourceId managementGroupResourceId loadTextContent loadFileAsBase64 cidrSubnet
cidrHost join buildUri getSecret nameof"""
_INT = "length indexOf lastIndexOf int min max dateTimeToEpoch"
_BOOL = "empty contains startsWith endsWith bool"
_ARRAY = "split range array items filter map sort flatten pickZones providers objectKeys"
_OBJECT = "toObject shallowMerge parseCidr parseUri deployment groupBy mapValue"
_ANY = """any json reference reduce first last tryGet loadYamlContent fail
base64ToJson externalInput loadDirectoryFileInfo readEnvironmentVariable"""
# Functions whose result has the type of their first argument.
_LIKE_FIRST = "concat union intersection take skip"
RETURNS: dict[str, str] = {
    **dict.fromkeys(_STRING.split(), "string"),
    **dict.fromkeys(_INT.split(), "int"),
    **dict.fromkeys(_BOOL.split(), "bool"),
    **dict.fromkeys(_ARRAY.split(), "array"),
    **dict.fromkeys(_OBJECT.split(), "object"),
    **dict.fromkeys(_ANY.split(), "any"),
    **dict.fromkeys(_LIKE_FIRST.split(), "first"),
    **dict.fromkeys(SCOPE_OBJECTS, "object"),
    "coalesce": "arguments",
    "loadJsonContent": "json",
}
_DECORATORS = """description allowed minValue maxValue minLength maxLength secure metadata
batchSize export sealed discriminator onlyIfNotExists"""
DECORATORS = frozenset(_DECORATORS.split())

# REST types as Bicep types.
_REST_STRINGS = SCALARS - {"int", "long", "float", "decimal", "bool", "unix-time"}
_REST_TYPES = {
    **dict.fromkeys(_REST_STRINGS, "string"),
    **dict.fromkeys(("int", "long", "float", "decimal", "unix-time"), "int"),
    "bool": "bool",
    "object": "any",
}


def rest_as_bicep(field_: Field, models: ModuleType) -> str:
    """The Bicep type of a model's property."""
    if field_.type.startswith("["):
        return "array"
    if field_.type.startswith("{") or model_class(models, field_.type) is not None:
        return "object"
    if field_.enum:
        return "int" if all(isinstance(v, int) for v in field_.enum) else "string"
    return _REST_TYPES.get(field_.type, "any")


def json_value(data: Any, line: int) -> Literal | ObjectLiteral | ArrayLiteral:
    """JSON data as Bicep values, all on one line (that of the loadJsonContent call)."""
    if isinstance(data, dict):
        return ObjectLiteral(
            line, tuple(Property(line, str(k), json_value(v, line)) for k, v in data.items())
        )
    if isinstance(data, list):
        return ArrayLiteral(line, tuple(json_value(v, line) for v in data))
    if isinstance(data, float):
        return Literal(line, int(data))
    return Literal(line, data)


def type_of(meaning: Meaning) -> str:
    """The Bicep type of a meaning: string, int, bool, null, object, array, resource, module
    or any."""
    if isinstance(meaning, Literal):
        names = {bool: "bool", int: "int", str: "string"}
        return "null" if meaning.value is None else names[type(meaning.value)]
    if isinstance(meaning, Known):
        return meaning.type
    if isinstance(meaning, ResourceValue | ModuleValue):
        kind = "resource" if isinstance(meaning, ResourceValue) else "module"
        return "array" if meaning.collection else kind
    if isinstance(meaning, ModelValue):
        return "array" if isinstance(meaning.node, str) and meaning.node[:1] == "[" else "object"
    return _TYPES.get(type(meaning), "any")


_TYPES = {
    ObjectLiteral: "object",
    ShapeValue: "object",
    OutputsValue: "object",
    ArrayLiteral: "array",
    Loop: "array",
}


def describe(meaning: Meaning) -> str:
    """A meaning as a message says it: 'a string', "'Standard'", 'param tags (object)'."""
    if isinstance(meaning, Literal):
        return "null" if meaning.value is None else json.dumps(meaning.value).replace('"', "'")
    if isinstance(meaning, Known) and meaning.origin:
        return f"{meaning.origin} ({meaning.type})"
    kind = type_of(meaning)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
