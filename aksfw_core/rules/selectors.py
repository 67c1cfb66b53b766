"""Kubernetes label selectors: parse the string form, match it against labels, print it back.

Follows `Parse` in k8s.io/apimachinery/pkg/labels/selector.go, which is what `kubectl -l`
accepts: equality (`app=web`, `app==web`, `tier!=db`), set-based (`env in (prod,stage)`,
`tier notin (db)`, where `()` is the set holding only the empty string), integer
comparison (`replicas>1`, `replicas<5`) and existence (`canary`, `!canary`), joined by
commas (AND). Pure code: no I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from aksfw_core.errors import InputError

_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_PREFIX_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_INT64_RE = re.compile(r"[+-]?[0-9]+")
_SELECTOR_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,31}")
_NAMESPACE_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_MAX_NAME, _MAX_PREFIX = 63, 253
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Kubernetes' lexer: only these four are blanks, and these seven characters end a word.
_BLANKS = " \t\r\n"
_SPECIAL = "=!<>(),"
# Punctuation no label key or value can hold: after a key (`app~=x`) or directly after
# `=` (`app=~x`) it is taken as an operator someone tried to use.
_OPERATOR_LIKE = frozenset("!\"#$%&'*+:;<=>?@[\\]^`{|}~")


class Operator(enum.Enum):
    """How one requirement tests a label; the value is how the selector spells it."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    GREATER_THAN = ">"
    LESS_THAN = "<"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_SINGLE_VALUE = frozenset(
    {
        Operator.EQUALS,
        Operator.DOUBLE_EQUALS,
        Operator.NOT_EQUALS,
        Operator.GREATER_THAN,
        Operator.LESS_THAN,
    }
)
_SYMBOLS = frozenset({"=", "==", "!=", ">", "<", "!"})
"""The operators spelled with `=`, `!`, `<`, `>`; any other run of those is an error."""


@dataclass(frozen=True)
class Requirement:
    """One comma-separated part of a selector.

    Raises:
        InputError: as Kubernetes' NewRequirement does: a bad key or value, no values for
            `in`/`notin`, not exactly one value for `=`, `==`, `!=`, `>`, `<`, a value for
            an existence test, or a `>`/`<` value that is not a 64-bit integer.
    """

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if problem := _key_problem(self.key):
            raise InputError(f"{self.key!r} is not a valid label key: {problem}")
        count, spelling = len(self.values), self.operator.value
        if self.operator in (Operator.IN, Operator.NOT_IN) and not count:
            raise InputError(f"'{self.key} {spelling} (...)' needs at least one value")
        if self.operator in _SINGLE_VALUE and count != 1:
            raise InputError(f"'{self.key}{spelling}' takes exactly one value, not {count}")
        if self.operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and count:
            raise InputError(f"{self.key!r} is an existence test and takes no values")
        for value in sorted(self.values):
            if problem := _value_problem(value):
                raise InputError(
                    f"{value!r} is not a valid label value for {self.key!r}: {problem}"
                )
            comparing = self.operator in (Operator.GREATER_THAN, Operator.LESS_THAN)
            if comparing and _int64(value) is None:
                raise InputError(
                    f"'{self.key}{spelling}' compares integers: {value!r} is not a 64-bit integer"
                )

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the labels satisfy this requirement.

        Absent keys satisfy `!=` and `notin`; `>` and `<` never match a label whose value is
        not an integer.
        """
        present = self.key in labels
        match self.operator:
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.EQUALS | Operator.DOUBLE_EQUALS | Operator.IN:
                return present and labels[self.key] in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or labels[self.key] not in self.values
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                actual = _int64(labels[self.key]) if present else None
                (bound,) = (_int64(value) for value in self.values)
                if actual is None or bound is None:
                    return False
                return actual > bound if self.operator is Operator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        """Kubernetes' spelling: `k=v`, `k in (a,b)` (values sorted), `k in ()`, `k`, `!k`."""
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.DOES_NOT_EXIST:
                return f"!{self.key}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator.value} ({','.join(sorted(self.values))})"
            case _:
                return f"{self.key}{self.operator.value}{''.join(self.values)}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector: all requirements must hold. No requirements matches everything."""

    text: str
    """The expression as written, without surrounding blanks; it parses back to this."""
    requirements: tuple[Requirement, ...]
    """Ordered by key, as Kubernetes orders them."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every requirement holds for these labels."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        """The form Kubernetes prints (`String()`); it parses back to the same requirements."""
        return ",".join(map(str, self.requirements))


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
    """Parse a label selector string as Kubernetes does.

    Raises:
        InputError: the expression is not a valid Kubernetes label selector; the message
            names the operator, value or key at fault.
    """
    requirements = _Parser(text).selector()
    return LabelSelector(
        text=text.strip(_BLANKS),
        requirements=tuple(sorted(requirements, key=lambda requirement: requirement.key)),
    )


def named_selector(name: str, match: str, namespace: str | None = None) -> NamedSelector:
    """Build a validated NamedSelector.

    Raises:
        InputError: the name is not `[A-Za-z0-9_-]{1,31}`, or the expression or namespace is bad.
    """
    if not _SELECTOR_NAME_RE.fullmatch(name):
        raise InputError(f"selector name {name!r} must match [A-Za-z0-9_-]{{1,31}}")
    if namespace is not None and not _NAMESPACE_RE.fullmatch(namespace):
        raise InputError(f"selector {name!r}: {namespace!r} is not a valid namespace name")
    return NamedSelector(name=name, selector=parse_selector(match), namespace=namespace)


def as_label(selector: NamedSelector) -> NamedSelector | None:
    """The selector that was meant if `NAME=EXPR` was written meaning the label `NAME=EXPR`
    (`tier=frontend`: the selector `tier` testing that a label `frontend` exists, where the
    label `tier=frontend` was likely meant), or None when `NAME=EXPR` is no such label.

    This is never a reason to refuse the selector: `c=k01` is a valid existence test the
    user may well mean. Only evidence (it selects nothing while Services carry the label
    it spells) makes it a likely mistake, and then this is the fix to suggest: the same
    namespace, the expression `NAME=EXPR`, named after the label's value
    (`frontend=tier=frontend`).
    """
    try:
        meant = parse_selector(f"{selector.name}={selector.selector.text}")
    except InputError:
        return None
    spelled = (selector.name, Operator.EQUALS, frozenset({selector.selector.text}))
    if [(r.key, r.operator, r.values) for r in meant.requirements] != [spelled]:
        return None  # `c=x,y` or `c=x in (y)`: not one label
    name = re.sub(r"[^A-Za-z0-9_-]", "-", selector.selector.text)[:31] or selector.name
    return NamedSelector(name=name, selector=meant, namespace=selector.namespace)


class _Kind(enum.Enum):
    WORD = "word"
    OPERATOR = "operator"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    END = "end"


class _Token(NamedTuple):
    kind: _Kind
    text: str
    start: int
    """Offset in the selector text."""

    def shown(self) -> str:
        return "the end" if self.kind is _Kind.END else repr(self.text)


def _lex(text: str) -> list[_Token]:
    """Split a selector into words, operators, parentheses and commas, ending with END.

    `in` and `notin` stay words: whether they are operators depends on where they stand.

    Raises:
        InputError: a run of `=`, `!`, `<`, `>` that is no operator (`>=`, `=!`, ...).
    """
    tokens: list[_Token] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _BLANKS:
            position += 1
        if position == len(text):
            tokens.append(_Token(_Kind.END, "", position))
            return tokens
        start, char = position, text[position]
        if char in "(),":
            tokens.append(_Token(_Kind(char), char, start))
            position += 1
            continue
        special = char in _SPECIAL
        while position < len(text) and (
            text[position] in "=!<>"
            if special
            else text[position] not in _SPECIAL and text[position] not in _BLANKS
        ):
            position += 1
        literal = text[start:position]
        if special and literal not in _SYMBOLS:
            raise InputError(f"selector {text!r}: unsupported operator {literal!r}")
        tokens.append(_Token(_Kind.OPERATOR if special else _Kind.WORD, literal, start))


class _Parser:
    """Recursive descent over `_lex` tokens, after Kubernetes' grammar:

    selector    ::= "" | requirement ("," requirement)*
    requirement ::= "!" KEY | KEY | KEY ("in"|"notin") "(" [VALUE] ("," [VALUE])* ")"
                  | KEY ("="|"=="|"!="|">"|"<") [VALUE]
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.position = 0

    def selector(self) -> list[Requirement]:
        if self._peek().kind is _Kind.END:
            return []
        requirements = [self._requirement()]
        while (token := self._take()).kind is not _Kind.END:
            if token.kind is not _Kind.COMMA:
                raise self._error(f"found {token.shown()} where ',' or the end was expected")
            if self._peek().kind in (_Kind.COMMA, _Kind.END):
                raise self._error("empty requirement after ','")
            requirements.append(self._requirement())
        return requirements

    def _requirement(self) -> Requirement:
        token = self._take()
        if token.kind is _Kind.OPERATOR and token.text == "!":
            key = self._key(self._take())
            if (following := self._peek()).kind not in (_Kind.COMMA, _Kind.END):
                raise self._error(
                    f"'!{key}' tests that the key is absent and takes no operator or value,"
                    f" found {following.shown()}"
                )
            return self._build(key, Operator.DOES_NOT_EXIST, ())
        key = self._key(token)
        operator = self._take()
        match operator.kind:
            case _Kind.COMMA | _Kind.END:
                self.position -= 1
                return self._build(key, Operator.EXISTS, ())
            case _Kind.WORD if operator.text in ("in", "notin"):
                return self._build(key, Operator(operator.text), self._value_list(key, operator))
            case _Kind.OPERATOR if operator.text != "!":
                return self._build(key, Operator(operator.text), self._exact_value(operator))
            case _Kind.WORD | _Kind.OPERATOR:
                raise self._error(f"unsupported operator {operator.text!r} after key {key!r}")
            case _Kind.OPEN:
                raise self._error(f"expected an operator between {key!r} and '('")
            case _Kind.CLOSE:
                raise self._error(f"unbalanced ')' after {key!r}")

    def _key(self, token: _Token) -> str:
        if token.kind is not _Kind.WORD:
            if token.kind is _Kind.COMMA:
                raise self._error("empty requirement before ','")
            raise self._error(f"found {token.shown()} where a label key was expected")
        literal = token.text
        if problem := _key_problem(literal):
            cut = next((i for i, char in enumerate(literal) if char in _OPERATOR_LIKE), 0)
            if cut and not _key_problem(literal[:cut]):
                tried = self._operator_like(token.start + cut)
                raise self._error(f"unsupported operator {tried!r} after key {literal[:cut]!r}")
            raise self._error(f"{literal!r} is not a valid label key: {problem}")
        return literal

    def _value_list(self, key: str, operator: _Token) -> list[str]:
        if (opening := self._take()).kind is not _Kind.OPEN:
            raise self._error(
                f"{key!r} {operator.text} needs a list of values in '(...)',"
                f" found {opening.shown()}"
            )
        values: list[str] = []
        expecting = True  # a value may stand here; an empty place is the empty string
        while True:
            token = self._take()
            if token.kind is _Kind.WORD and expecting:
                values.append(token.text)
                expecting = False
            elif token.kind in (_Kind.COMMA, _Kind.CLOSE):
                if expecting:
                    values.append("")
                if token.kind is _Kind.CLOSE:
                    return values
                expecting = True
            elif token.kind is _Kind.END:
                raise self._error(f"unbalanced '(': the values of {key!r} are never closed")
            elif token.kind is _Kind.WORD:
                raise self._error(
                    f"values of {key!r} are separated by ',': found {token.text!r}"
                    f" after {values[-1]!r}"
                )
            else:
                raise self._error(f"found {token.shown()} among the values of {key!r}")

    def _exact_value(self, operator: _Token) -> list[str]:
        token = self._peek()
        if token.kind in (_Kind.COMMA, _Kind.END):
            return [""]  # `key=` is the empty value, as in Kubernetes
        self._take()
        if token.kind is not _Kind.WORD:
            raise self._error(
                f"found {token.shown()} where a value after {operator.text!r} was expected"
            )
        adjacent = token.start == operator.start + len(operator.text)
        if adjacent and token.text[0] in _OPERATOR_LIKE:
            tried = operator.text + self._operator_like(token.start)
            raise self._error(f"unsupported operator {tried!r}")
        return [token.text]

    def _build(self, key: str, operator: Operator, values: Iterable[str]) -> Requirement:
        try:
            return Requirement(key, operator, frozenset(values))
        except InputError as error:
            raise self._error(str(error)) from None

    def _operator_like(self, start: int) -> str:
        end = start
        while end < len(self.text) and self.text[end] in _OPERATOR_LIKE:
            end += 1
        return self.text[start:end]

    def _peek(self) -> _Token:
        return self.tokens[self.position]

    def _take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _error(self, message: str) -> InputError:
        return InputError(f"selector {self.text!r}: {message}")


def _key_problem(key: str) -> str | None:
    """Why `key` is no label key (an optional DNS-subdomain prefix and '/', then a name)."""
    prefix, slash, name = key.rpartition("/")
    bad_prefix = len(prefix) > _MAX_PREFIX or not _PREFIX_RE.fullmatch(prefix)
    problems = (
        ("/" in prefix, "it has more than one '/'"),
        (
            bool(slash) and bad_prefix,
            f"the prefix before '/' must be a lowercase DNS subdomain of at most"
            f" {_MAX_PREFIX} characters",
        ),
        (not name, "the name is empty"),
        (len(name) > _MAX_NAME, f"the name is longer than {_MAX_NAME} characters"),
        (
            not _NAME_RE.fullmatch(name),
            "the name must be letters, digits, '-', '_' or '.', alphanumeric at both ends",
        ),
    )
    return next((problem for found, problem in problems if found), None)


def _value_problem(value: str) -> str | None:
    """Why `value` is no label value (empty, or like a key's name part)."""
    if len(value) > _MAX_NAME:
        return f"it is longer than {_MAX_NAME} characters"
    if value and not _NAME_RE.fullmatch(value):
        return "it must be letters, digits, '-', '_' or '.', alphanumeric at both ends"
    return None


def _int64(text: str) -> int | None:
    """The integer Go's strconv.ParseInt(text, 10, 64) reads, or None when it refuses."""
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None
