"""aksfw's two annotations on a Service (DESIGN section 2): `aksfw.io/ignore: "true"` leaves
the Service untagged; `aksfw.io/tags: "pci, tier1"` asks for `aks.<cluster>.tag.pci` and
`aks.<cluster>.tag.tier1`, which the tag rules (`tags.compute_tags`) grant only in the
namespaces the cluster's `TagOptions` open. Here: reading them from a Service object,
bounded, and what their values say. Pure code: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aksfw_core.errors import InputError
from aksfw_core.rules.model import Service, TagWarning, WarningKind
from aksfw_core.rules.tag_options import TagOptions

IGNORE = "aksfw.io/ignore"
"""`"true"` (any letter case): the Service gets no tag at all, so a resync unregisters
those it had."""
TAGS = "aksfw.io/tags"
"""Tag values separated by commas or whitespace, each `[A-Za-z0-9_-]` (one tag segment)."""
READ = (IGNORE, TAGS)
"""The annotations a `Service` keeps; every other one is dropped when it is read."""
MAX_VALUE_LENGTH = 1024
"""Characters: a longer value of one of aksfw's annotations is ignored with a warning (the
API server allows 256 KiB for all annotations together; no tag list needs more)."""

_VALUE_RE = re.compile(r"[A-Za-z0-9_-]+")
"""One tag segment, as a cluster name is one: no dot, so `aks.<cluster>.tag.<value>` can
be no other family's tag."""
_SEPARATOR_RE = re.compile(r"[,\s]+")


def read_annotations(value: object, where: str, warnings: list[TagWarning]) -> dict[str, str]:
    """aksfw's annotations (`READ`) among a Service's `metadata.annotations`; a value longer
    than `MAX_VALUE_LENGTH` is left out with a warning. Other annotations are not looked at.

    Raises:
        InputError: the annotations are not an object, or one of aksfw's is not a string.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where} annotations is not an object")
    found: dict[str, str] = {}
    for key in READ:
        text = value.get(key)
        if text is None:
            continue
        if not isinstance(text, str):
            raise InputError(f"{where}: annotation {key} is not a string")
        if len(text) > MAX_VALUE_LENGTH:
            warnings.append(
                TagWarning(
                    WarningKind.ANNOTATION_INVALID,
                    f"{where}: annotation {key} is {len(text)} characters (max "
                    f"{MAX_VALUE_LENGTH}); ignored",
                )
            )
            continue
        found[key] = text
    return found


def ignored(cluster: str, service: Service, warnings: list[TagWarning]) -> bool:
    """True when `service` asks to be left untagged (`aksfw.io/ignore: "true"`, any letter
    case). A value other than true or false is not ignore, and is warned about."""
    text = service.annotations.get(IGNORE)
    if text is None:
        return False
    word = text.strip().lower()
    if word not in ("true", "false"):
        warnings.append(
            TagWarning(
                WarningKind.ANNOTATION_INVALID,
                f"cluster {cluster}: Service {service.namespace}/{service.name}: annotation "
                f'{IGNORE} is {text[:80]!r}, not "true" or "false"; the Service is tagged',
            )
        )
    return word == "true"


def tag_values(
    cluster: str, service: Service, options: TagOptions, room: int, warnings: list[TagWarning]
) -> list[str]:
    """The values of the Service's `aksfw.io/tags` that become tags, in order, each once:
    none, with a warning naming the Service and its namespace, in a namespace `options` do
    not open to annotation tags; a value that is not one tag segment, or longer than `room`
    characters (what `aks.<cluster>.tag.` leaves of a tag's 127), is skipped with a warning
    naming the Service."""
    text = service.annotations.get(TAGS)
    words = [] if text is None else [word for word in _SEPARATOR_RE.split(text) if word]
    if not words:
        return []
    where = f"cluster {cluster}: Service {service.namespace}/{service.name}"
    if not options.allows_annotation_tags(service.namespace):
        why = (
            f"open to {options.annotation_scope()} only" if options.annotation_namespaces else "off"
        )
        warnings.append(
            TagWarning(
                WarningKind.ANNOTATION_NOT_ALLOWED,
                f"{where}: annotation {TAGS} ignored in namespace {service.namespace}: "
                f"annotation tags are {why} (annotationTags)",
            )
        )
        return []
    values: list[str] = []
    for value in dict.fromkeys(words):
        if _VALUE_RE.fullmatch(value) and len(value) <= room:
            values.append(value)
            continue
        why = (
            "would make a tag longer than 127 characters"
            if _VALUE_RE.fullmatch(value)
            else "is not a tag value (letters, digits, '-' and '_')"
        )
        warnings.append(
            TagWarning(
                WarningKind.ANNOTATION_INVALID,
                f"{where}: {TAGS} value {value[:80]!r} {why}; skipped",
            )
        )
    return values
