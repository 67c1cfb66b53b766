"""The values a resource property takes, against its REST model: the scalar type (a string
where the model wants an int or a bool, …), the enum (compared case-insensitively, as Azure
does), msrest's bounds (`maximum`, `max_length`, `pattern`, …) and ISO 8601 durations, and
the properties a request must give.

A value is checked where it is a literal, or resolves to literals (resolve.py: a variable, a
conditional's branches, a loop's items). A parameter is checked by its declared type and its
@allowed values and @minValue/@maxValue; any other computed value passes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from meanings import Known, Meaning, describe, rest_as_bicep, type_of
from rest_models import Field, Shape
from syntax import Literal, ObjectLiteral

# (resource type, property path, value lower-cased) -> why a value the model's enum lacks is
# right. Azure's enums are mostly extensible (the service takes values the SDK does not
# list), but a value outside the enum is almost always a typo: each exception says why not.
ENUM_EXCEPTIONS: dict[tuple[str, str, str], str] = {}

_DURATION = re.compile(
    r"^-?P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)
_BOUND_CHECKS: dict[str, tuple[type, Callable[[Any, Any], bool], str]] = {
    "maximum": (int, lambda v, b: v <= b, "at most"),
    "minimum": (int, lambda v, b: v >= b, "at least"),
    "max_length": (str, lambda v, b: len(v) <= b, "at most {} characters"),
    "min_length": (str, lambda v, b: len(v) >= b, "at least {} characters"),
    "pattern": (str, lambda v, b: re.match(b, v) is not None, "matching {}"),
}

_SCALARS = {"string", "int", "bool"}
Problem = tuple[int, str]  # (line, message)


@dataclass(frozen=True)
class Slot:
    """Where a value goes: a property of a model, at a path in a resource of a type."""

    field: Field
    models: ModuleType
    path: str
    line: int  # where the property is written
    resource_type: str

    @property
    def expected(self) -> str:
        return rest_as_bicep(self.field, self.models)


def scalar_problems(meaning: Meaning, slot: Slot) -> list[Problem]:
    """The problems of one value a scalar property may take."""
    if isinstance(meaning, Literal):
        return _literal_problems(meaning, slot)
    if isinstance(meaning, Known):
        return _known_problems(meaning, slot)
    return []


def _literal_problems(literal: Literal, slot: Slot) -> list[Problem]:
    value, path, expected = literal.value, slot.path, slot.expected
    if value is None:
        return []
    if expected in _SCALARS and type_of(literal) != expected:
        return [(literal.line, f"{path}: expected {_a(expected)}, got {describe(literal)}")]
    problems = [
        (literal.line, message)
        for message in _enum_problem(value, slot) + _bound_problems(value, slot.field, path)
    ]
    if slot.field.type == "duration" and isinstance(value, str) and not _DURATION.match(value):
        problems.append((literal.line, f"{path}: {value!r} is not an ISO 8601 duration (PT5M)"))
    return problems


def _known_problems(known: Known, slot: Slot) -> list[Problem]:
    path, line, expected = slot.path, slot.line, slot.expected
    known_type = known.type in _SCALARS | {"object", "array"}
    if expected in _SCALARS and known_type and known.type != expected:
        return [(line, f"{path}: expected {_a(expected)}, got {describe(known)}")]
    problems: list[Problem] = [
        (line, f"{message} (an @allowed value of {known.origin})")
        for value in known.allowed
        for message in _enum_problem(value, slot)
    ]
    for bound, limit in slot.field.bounds.items():
        declared = known.bounds.get({"maximum": "maxValue", "minimum": "minValue"}.get(bound, ""))
        if declared is not None and not _BOUND_CHECKS[bound][1](declared, limit):
            message = f"{path}: {known.origin} may be {declared}, the model allows {bound} {limit}"
            problems.append((line, message))
    return problems


def _enum_problem(value: object, slot: Slot) -> list[str]:
    field, path = slot.field, slot.path
    if not field.enum or not isinstance(value, str | int) or isinstance(value, bool):
        return []
    known = {str(v).lower(): v for v in field.enum}
    if str(value).lower() in known:
        return []
    if (slot.resource_type, path, str(value).lower()) in ENUM_EXCEPTIONS:
        return []
    near = difflib.get_close_matches(str(value), [str(v) for v in field.enum], n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    listed = ", ".join(repr(v) for v in field.enum)
    return [f"{path}: {value!r} is not one of {listed}{hint}"]


def _bound_problems(value: object, field: Field, path: str) -> list[str]:
    problems = []
    for bound, limit in field.bounds.items():
        check = _BOUND_CHECKS.get(bound)
        if check is None or not isinstance(value, check[0]) or isinstance(value, bool):
            continue
        if not check[1](value, limit):
            wanted = check[2].format(limit) if "{}" in check[2] else f"{check[2]} {limit}"
            problems.append(f"{path}: {value!r} is not {wanted}")
    return problems


def missing_required(literal: ObjectLiteral, tree: Shape, path: str) -> list[str]:
    """The paths of the properties a request must give that literal lacks (at its level:
    a flattened group such as `properties` counts when anything in it is required)."""
    if not literal.closed:
        return []
    given = {p.key for p in literal.properties}
    return [
        f"{path}.{key}" if path else key
        for key, node in tree.items()
        if key not in given and _required(node)
    ]


def _required(node: Field | Shape) -> bool:
    if isinstance(node, Field):
        return node.required and not node.read_only
    return any(_required(child) for child in node.values())


def _a(type_: str) -> str:
    return f"an {type_}" if type_[0] in "aeiou" else f"a {type_}"
