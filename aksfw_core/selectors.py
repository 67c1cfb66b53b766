"""Kubernetes label selectors: parse the string form and match it against labels.

Supports what `kubectl -l` accepts for labels: equality (`app=web`, `app==web`,
`tier!=db`), set-based (`env in (prod,stage)`, `tier notin (db)`), existence (`canary`,
`!canary`), joined by commas (AND). Pure code: no I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aksfw_core.errors import InputError

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_RE = re.compile(rf"(({_PREFIX})/)?{_NAME}")
_VALUE_RE = re.compile(rf"({_NAME})?")
_SELECTOR_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,31}")

_SET_RE = re.compile(r"(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")
_EQUALITY_RE = re.compile(r"(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)")
_EXISTS_RE = re.compile(r"(?P<negate>!?)\s*(?P<key>[^\s!=(),]+)")


class Operator(enum.Enum):
    """How one requirement tests a label."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True)
class Requirement:
    """One comma-separated part of a selector."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the labels satisfy this requirement (absent keys satisfy `!=`/`notin`)."""
        present = self.key in labels
        match self.operator:
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.EQUALS | Operator.IN:
                return present and labels[self.key] in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector: all requirements must hold. No requirements matches everything."""

    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every requirement holds for these labels."""
        return all(requirement.matches(labels) for requirement in self.requirements)


@dataclass(frozen=True)
class NamedSelector:
    """A selector defined for a cluster: Services it matches get `aks_<name>.<cluster>.<svc>`."""

    name: str
    selector: LabelSelector
    namespace: str | None = None
    """Only Services in this namespace match; None means any namespace."""

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """True when a Service in `namespace` with `labels` is selected."""
        if self.namespace is not None and namespace != self.namespace:
            return False
        return self.selector.matches(labels)


def parse_selector(text: str) -> LabelSelector:
    """Parse a label selector string.

    Raises:
        InputError: the expression is not a valid Kubernetes label selector.
    """
    requirements = tuple(_parse_requirement(part, text) for part in _split_requirements(text))
    return LabelSelector(text=text.strip(), requirements=requirements)


def named_selector(name: str, match: str, namespace: str | None = None) -> NamedSelector:
    """Build a validated NamedSelector.

    Raises:
        InputError: the name is not `[A-Za-z0-9_-]{1,31}`, or the expression or namespace is bad.
    """
    if not _SELECTOR_NAME_RE.fullmatch(name):
        raise InputError(f"selector name {name!r} must match [A-Za-z0-9_-]{{1,31}}")
    if namespace is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
        raise InputError(f"selector {name!r}: {namespace!r} is not a valid namespace name")
    return NamedSelector(name=name, selector=parse_selector(match), namespace=namespace)


def _split_requirements(text: str) -> list[str]:
    """Split on the commas that are not inside a parenthesised value set."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InputError(f"selector {text!r}: unbalanced ')'")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise InputError(f"selector {text!r}: unbalanced '('")
    parts.append("".join(current))
    if len(parts) == 1 and not parts[0].strip():
        return []
    return parts


def _parse_requirement(part: str, text: str) -> Requirement:
    stripped = part.strip()
    if not stripped:
        raise InputError(f"selector {text!r}: empty requirement between commas")
    if found := _SET_RE.fullmatch(stripped):
        values = [value.strip() for value in found["values"].split(",")]
        if values == [""]:
            raise InputError(f"selector {text!r}: {found['op']!r} needs at least one value")
        operator = Operator.IN if found["op"] == "in" else Operator.NOT_IN
        return Requirement(_key(found["key"], text), operator, _values(values, text))
    if found := _EQUALITY_RE.fullmatch(stripped):
        operator = Operator.NOT_EQUALS if found["op"] == "!=" else Operator.EQUALS
        return Requirement(_key(found["key"], text), operator, _values([found["value"]], text))
    if found := _EXISTS_RE.fullmatch(stripped):
        operator = Operator.DOES_NOT_EXIST if found["negate"] else Operator.EXISTS
        return Requirement(_key(found["key"], text), operator)
    raise InputError(f"selector {text!r}: cannot parse {stripped!r}")


def _key(key: str, text: str) -> str:
    prefix, _, name = key.rpartition("/")
    if not _KEY_RE.fullmatch(key) or len(prefix) > 253 or len(name) > 63:
        raise InputError(f"selector {text!r}: {key!r} is not a valid label key")
    return key


def _values(values: list[str], text: str) -> frozenset[str]:
    for value in values:
        if not _VALUE_RE.fullmatch(value):
            raise InputError(f"selector {text!r}: {value!r} is not a valid label value")
    return frozenset(values)
