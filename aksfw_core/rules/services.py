"""Read Kubernetes Service objects (a `kubectl get services -A -o json` document, or the
items of a list call) into `Service` records. Pure code: no I/O.

A malformed document raises rather than yielding fewer Services: a Service that silently
went missing would have its tags unregistered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aksfw_core.errors import InputError
from aksfw_core.rules.model import Service, TagWarning, WarningKind

_LIST_KINDS = {"ServiceList", "List"}


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
    return Service(namespace=namespace, name=name, labels=labels, ips=tuple(ips))


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
