"""What counts as a change for `aksfw watch`: pure functions of plain Service objects.

A Service's tag view is what the engine computes tags from: its `Service` record when it is
a LoadBalancer (namespace, name, labels, ingress IPs, as `rules.services` reads them),
nothing for any other type, or the reason it cannot be read. A change is a change of some
Service's tag view, so status conditions, ports, annotations the engine does not read and
version-only updates change nothing, and whatever the engine reads (aksfw's own
annotations, `aksfw.io/ignore` and `aksfw.io/tags`, as labels) counts here without a
second list of fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from aksfw_core.errors import InputError
from aksfw_core.rules.model import Service
from aksfw_core.rules.services import parse_service_items

TagView = Service | str | None
"""What tags can see of one Service: its `Service` record (a LoadBalancer), None (any
other type, or no Service), or the reason it cannot be read (a malformed object)."""

ServiceKey = tuple[str, str]
"""(namespace, name)."""

Views = Mapping[ServiceKey, TagView]
"""The tag view of every Service that has one (None views are left out)."""


class ViewChange(NamedTuple):
    """A change that can change tags."""

    why: str
    """What happened: `added`, `modified`, `deleted`, `unreadable` (an object naming no
    Service) or `relist` (a new list differs from what the watch had)."""
    key: ServiceKey | None
    """The Service (None: not known, or a whole list)."""
    view: TagView = None
    """The Service's tag view from now on (None: it has none)."""


def tag_view(obj: object) -> TagView:
    """The tag-relevant view of one Service object, as the engine would read it."""
    try:
        parsed = parse_service_items([obj])
    except InputError as error:
        return f"unreadable: {error}"
    return parsed.services[0] if parsed.services else None


def service_key(obj: object) -> ServiceKey | None:
    """(namespace, name) of a Service object, or None if it names neither."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(metadata, Mapping):
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace", "default")
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return (namespace, name)


def list_views(items: Iterable[object]) -> dict[ServiceKey, TagView]:
    """The views of a complete list of Service objects."""
    views: dict[ServiceKey, TagView] = {}
    for item in items:
        key = service_key(item)
        view = tag_view(item)
        if key is not None and view is not None:
            views[key] = view
    return views


def event_change(views: Views, kind: str, obj: Mapping[str, Any]) -> ViewChange | None:
    """What one watch event (`ADDED`, `MODIFIED` or `DELETED` of `obj`) changes for tags,
    given the views before it; None if nothing. `views` is only read."""
    key = service_key(obj)
    if key is None:
        return ViewChange("unreadable", None)
    new = None if kind == "DELETED" else tag_view(obj)
    if views.get(key) == new:
        return None
    return ViewChange(kind.lower(), key, new)


class ServiceViews:
    """The views the watcher holds, updated by lists and events (one thread)."""

    def __init__(self) -> None:
        self._views: dict[ServiceKey, TagView] | None = None

    def relist(self, items: Iterable[object]) -> ViewChange | None:
        """Replace every view with those of a complete list: a change if they differ from
        the last list and events (the first list is the baseline, never a change)."""
        views, before = list_views(items), self._views
        self._views = views
        if before is None or before == views:
            return None
        return ViewChange("relist", None)

    def apply(self, kind: str, obj: Mapping[str, Any]) -> ViewChange | None:
        """Apply one watch event; the change it makes, if any."""
        views = self._views if self._views is not None else {}
        change = event_change(views, kind, obj)
        if change is not None and change.key is not None:
            if change.view is None:
                views.pop(change.key, None)
            else:
                views[change.key] = change.view
        self._views = views
        return change
