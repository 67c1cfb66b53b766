"""A cluster's tag options (DESIGN section 11): whether its Services' IPs also carry their
namespace's tag, and in which namespaces a Service's `aksfw.io/tags` annotation may add
tags. One value per cluster, from the configuration (`namespaceTags`, `annotationTags`,
each overridable per cluster) or the command line (`--namespace-tags`,
`--annotation-tags-in`), given to the one tag rule (`tags.compute_tags`). Pure code.

Who may annotate a Service is not who may write firewall policy: annotation tags are off
unless the configuration opens a namespace to them, so that nobody can put a Service's IP
into a Dynamic Address Group an operator did not open to its namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from aksfw_core.errors import InputError

ALL_NAMESPACES = "*"
"""In `annotationTags.namespaces` (and `--annotation-tags-in`): every namespace."""

_NAMESPACE_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""A Kubernetes namespace name: a DNS-1123 label."""


@dataclass(frozen=True)
class TagOptions:
    """The opt-in tags of one cluster; the default is the tags of DESIGN section 2 only."""

    namespace_tags: bool = False
    """`namespaceTags`: each LoadBalancer Service's IPs also carry
    `aks.<cluster>.ns.<namespace>`."""
    annotation_namespaces: frozenset[str] = frozenset()
    """`annotationTags.namespaces`: the namespaces whose Services' `aksfw.io/tags`
    annotation adds `aks.<cluster>.tag.<value>` tags; `*` (`ALL_NAMESPACES`) is every
    namespace; empty: annotation tags are off (`aksfw.io/ignore` works regardless)."""

    def allows_annotation_tags(self, namespace: str) -> bool:
        """True when a Service in `namespace` may add tags by its annotation."""
        found = self.annotation_namespaces
        return ALL_NAMESPACES in found or namespace in found

    def annotation_scope(self) -> str:
        """The namespaces annotation tags are open to, for a person: `every namespace`,
        `namespaces shop, web`, or `no namespace`."""
        found = self.annotation_namespaces
        if ALL_NAMESPACES in found:
            return "every namespace"
        if not found:
            return "no namespace"
        plural = "namespace" if len(found) == 1 else "namespaces"
        return f"{plural} {', '.join(sorted(found))}"


def check_namespace(text: str) -> str:
    """Return `text` if it names a namespace for `annotationTags` (a DNS-1123 label) or is
    `*`.

    Raises:
        InputError: it is neither.
    """
    if text == ALL_NAMESPACES or _NAMESPACE_RE.fullmatch(text):
        return text
    raise InputError(f"{text[:80]!r} is not a namespace name (a DNS-1123 label) or '*'")


def annotation_namespaces(names: Iterable[str]) -> frozenset[str]:
    """The namespaces of `annotationTags.namespaces`, each checked; `*` among them stands
    for every namespace, so it alone is kept.

    Raises:
        InputError: a name is not a namespace name or `*`.
    """
    found = frozenset(check_namespace(name) for name in names)
    return frozenset({ALL_NAMESPACES}) if ALL_NAMESPACES in found else found
