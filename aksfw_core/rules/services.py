"""Read Kubernetes Service objects (a `kubectl get services -A -o json` document, or the
items of a list call) into `Service` records, and reduce a Service object to the fields
that reading uses (`tag_fields`), so a list can drop the rest as its pages arrive. Pure
code: no I/O.

A malformed document raises rather than yielding fewer Services: a Service that silently
went missing would have its tags unregistered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aksfw_core.errors import InputError
from aksfw_core.rules.annotations import read_annotations
from aksfw_core.rules.model import Service, TagWarning, WarningKind

_LIST_KINDS = {"ServiceList", "List"}
ANNOTATION_PREFIX = "aksfw.io/"
"""Annotations under this prefix (`aksfw.io/ignore`, `aksfw.io/tags`) are aksfw's; a
reduced Service keeps them and drops every other annotation."""


@dataclass(frozen=True)
class ServiceList:
    """The LoadBalancer Services found in a document, and what was skipped."""

    services: tuple[Service, ...]
    warnings: tuple[TagWarning, ...]


def parse_service_list(document: object) -> ServiceList:
    """Read a ServiceList (or kubectl's `List`) document.

    Raises:
        InputError: the document is not a list of Services, or an item is malformed.
    """
    if not isinstance(document, Mapping):
        raise InputError("expected a JSON object with kind ServiceList or List")
    kind = document.get("kind")
    if kind not in _LIST_KINDS:
        raise InputError(f"expected kind ServiceList or List, got {kind!r}")
    items = document.get("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise InputError("'items' must be a list")
    return parse_service_items(items)


def parse_service_items(items: Iterable[object]) -> ServiceList:
    """Read Service objects; keep those of type LoadBalancer.

    Raises:
        InputError: an item is not a Service or lacks its name or namespace.
    """
    services: list[Service] = []
    warnings: list[TagWarning] = []
    for index, item in enumerate(items):
        service = _parse_item(index, item, warnings)
        if service is not None:
            services.append(service)
    return ServiceList(tuple(services), tuple(warnings))


def _parse_item(index: int, item: object, warnings: list[TagWarning]) -> Service | None:
    where = f"items[{index}]"
    if not isinstance(item, Mapping):
        raise InputError(f"{where} is not an object")
    kind = item.get("kind", "Service")
    if kind != "Service":
        raise InputError(f"{where} has kind {kind!r}, expected Service")
    metadata = _mapping(item.get("metadata"), f"{where}.metadata")
    name = metadata.get("name")
    namespace = metadata.get("namespace", "default")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}.metadata.name is missing")
    if not isinstance(namespace, str) or not namespace:
        raise InputError(f"{where}.metadata.namespace is not a string")
    where = f"service {namespace}/{name}"
    spec = _mapping(item.get("spec"), f"{where} spec")
    if spec.get("type") != "LoadBalancer":
        return None
    labels = _labels(metadata.get("labels"), where)
    annotations = read_annotations(metadata.get("annotations"), where, warnings)
    status = _mapping(item.get("status"), f"{where} status")
    load_balancer = _mapping(status.get("loadBalancer"), f"{where} status.loadBalancer")
    ingress = load_balancer.get("ingress") or []
    if not isinstance(ingress, list):
        raise InputError(f"{where}: status.loadBalancer.ingress is not a list")
    ips: list[str] = []
    for entry in ingress:
        if not isinstance(entry, Mapping):
            raise InputError(f"{where}: an ingress entry is not an object")
        raw = entry.get("ip")
        if raw is None:
            continue  # hostname-only ingress: nothing to register
        ip = _normalise_ip(raw)
        if ip is None:
            warnings.append(
                TagWarning(WarningKind.INVALID_IP, f"{where}: ingress ip {raw!r} skipped")
            )
        elif ip not in ips:
            ips.append(ip)
    return Service(
        namespace=namespace, name=name, labels=labels, ips=tuple(ips), annotations=annotations
    )


def tag_fields(item: object) -> object:
    """The part of one Service object that tags can depend on, in the object's own shape:
    `kind`, `metadata.name`, `.namespace`, `.labels`, the `aksfw.io/` annotations,
    `spec.type` and, for a LoadBalancer, each ingress entry's `ip`. Every other field
    (`managedFields`, other annotations, ports, conditions) is dropped.

    `parse_service_items` reads the reduced object exactly as the original: the same
    Service, the same warnings and, for a malformed object, the same error (a value of the
    wrong type at a path it reads is kept as it is, so that it is refused alike).
    """
    if not isinstance(item, Mapping):
        return item
    reduced: dict[str, object] = {}
    if "kind" in item:
        reduced["kind"] = item["kind"]
    metadata = item.get("metadata")
    spec = item.get("spec")
    load_balancer = isinstance(spec, Mapping) and spec.get("type") == "LoadBalancer"
    if isinstance(metadata, Mapping):
        reduced["metadata"] = _tag_metadata(metadata, load_balancer)
    elif "metadata" in item:
        reduced["metadata"] = metadata
    if isinstance(spec, Mapping):
        reduced["spec"] = {"type": spec["type"]} if "type" in spec else {}
    elif "spec" in item:
        reduced["spec"] = spec
    if load_balancer and "status" in item:
        reduced["status"] = _tag_status(item["status"])
    return reduced


def _tag_metadata(metadata: Mapping[str, Any], load_balancer: bool) -> dict[str, object]:
    kept: dict[str, object] = {k: metadata[k] for k in ("name", "namespace") if k in metadata}
    if not load_balancer:
        return kept  # another type: nothing past its name is read
    if "labels" in metadata:
        kept["labels"] = metadata["labels"]
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping):
        ours = {
            key: value
            for key, value in annotations.items()
            if isinstance(key, str) and key.startswith(ANNOTATION_PREFIX)
        }
        if ours:
            kept["annotations"] = ours
    elif annotations is not None:
        kept["annotations"] = annotations  # malformed: refused alike if ever read
    return kept


def _tag_status(status: object) -> object:
    if not isinstance(status, Mapping):
        return status
    if "loadBalancer" not in status:
        return {}
    load_balancer = status["loadBalancer"]
    if not isinstance(load_balancer, Mapping):
        return {"loadBalancer": load_balancer}
    if "ingress" not in load_balancer:
        return {"loadBalancer": {}}
    ingress = load_balancer["ingress"]
    if isinstance(ingress, list):
        ingress = [_tag_ingress(entry) for entry in ingress]
    return {"loadBalancer": {"ingress": ingress}}


def _tag_ingress(entry: object) -> object:
    if not isinstance(entry, Mapping):
        return entry
    return {"ip": entry["ip"]} if "ip" in entry else {}  # hostname-only: nothing to keep


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where} is not an object")
    return value


def _labels(value: object, where: str) -> dict[str, str]:
    labels = _mapping(value, f"{where} labels")
    for key, label in labels.items():
        if not isinstance(key, str) or not isinstance(label, str):
            raise InputError(f"{where}: labels must map strings to strings")
    return dict(labels)


def _normalise_ip(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None
