"""The resource declarations of a Bicep file, with the line of every property.

A reader of just enough Bicep for infra/schema/check.py: it finds each `resource` (top level
or nested in another's body, plain, `if (…)` or `[for …]`) and reads its body as object
literals, array literals, `for` loops, plain literals and opaque expressions. It does not
evaluate anything; pycep (which keeps no line numbers) parses the files in full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# --- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A string without interpolation, a number, true, false or null."""

    line: int
    value: str | int | bool | None


@dataclass(frozen=True)
class Expression:
    """Anything computed (a reference, a call, a conditional, an operator): not checked."""

    line: int


@dataclass(frozen=True)
class Property:
    line: int
    key: str | None  # None: an interpolated key, known only at deployment
    value: Value


@dataclass(frozen=True)
class ObjectLiteral:
    line: int
    properties: tuple[Property, ...]


@dataclass(frozen=True)
class ArrayLiteral:
    line: int
    items: tuple[Value, ...]


@dataclass(frozen=True)
class Loop:
    """`[for … in …: body]`: an array whose every item is body."""

    line: int
    body: Value


Value = Literal | Expression | ObjectLiteral | ArrayLiteral | Loop


@dataclass(frozen=True)
class Resource:
    file: Path
    line: int
    symbol: str
    type: str  # full type, e.g. Microsoft.Storage/storageAccounts/blobServices
    api_version: str
    existing: bool
    body: ObjectLiteral | None  # None when the body is not an object literal
    qualified: str  # parent__child for a resource declared in another's body (as pycep names it)


# --- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "string", "number", "newline", or the punctuation character itself
    text: str
    line: int
    interpolated: bool = False  # strings only


class BicepSyntaxError(ValueError):
    pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}


def tokens(text: str) -> list[Token]:
    """Bicep's tokens; comments dropped, runs of newlines kept as one."""
    out: list[Token] = []
    i, line = 0, 1
    while i < len(text):
        char = text[i]
        if char == "\n":
            if out and out[-1].kind != "newline":
                out.append(Token("newline", "\n", line))
            line += 1
            i += 1
        elif char in " \t\r":
            i += 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = len(text) if end < 0 else end + 2
            line += text.count("\n", i, end)
            i = end
        elif text.startswith("'''", i):
            end = text.find("'''", i + 3)
            if end < 0:
                raise BicepSyntaxError(f"line {line}: unterminated ''' string")
            out.append(Token("string", text[i + 3 : end], line))
            line += text.count("\n", i, end)
            i = end + 3
        elif char == "'":
            value, interpolated, end = _string(text, i, line)
            out.append(Token("string", value, line, interpolated))
            line += text.count("\n", i, end)
            i = end
        elif match := _NAME.match(text, i):
            out.append(Token("name", match.group(), line))
            i = match.end()
        elif match := _NUMBER.match(text, i):
            out.append(Token("number", match.group(), line))
            i = match.end()
        else:
            out.append(Token(char, char, line))
            i += 1
    return out


def _string(text: str, start: int, line: int) -> tuple[str, bool, int]:
    """The string literal at text[start] ("'"): its value, whether it interpolates, its end."""
    value: list[str] = []
    interpolated = False
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            value.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif char == "'":
            return "".join(value), interpolated, i + 1
        elif text.startswith("${", i):
            interpolated = True
            i = _interpolation_end(text, i + 2, line)
        else:
            value.append(char)
            i += 1
    raise BicepSyntaxError(f"line {line}: unterminated string")


def _interpolation_end(text: str, i: int, line: int) -> int:
    depth = 1
    while i < len(text):
        if text[i] == "'":
            i = _string(text, i, line)[2]
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            return i
    raise BicepSyntaxError(f"line {line}: unterminated ${{…}}")


# --- declarations ---------------------------------------------------------------------

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_ENDS = {"newline", ",", ")", "]", "}", "eof"}


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.tokens = tokens(text)
        self.tokens.append(Token("eof", "", self.tokens[-1].line if self.tokens else 1))
        self.i = 0
        self.resources: list[Resource] = []

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def expect(self, kind: str) -> Token:
        token = self.token
        if token.kind != kind:
            raise BicepSyntaxError(f"line {token.line}: expected {kind!r}, found {token.text!r}")
        self.i += 1
        return token

    def skip_newlines(self) -> None:
        while self.token.kind == "newline":
            self.i += 1

    def file(self) -> list[Resource]:
        while self.token.kind != "eof":
            self.skip_newlines()
            if self.token.kind == "name" and self.token.text == "resource":
                self.declaration(parent=None)
            else:
                self.skip_expression()
                if self.token.kind in {")", "]", "}"}:
                    raise BicepSyntaxError(f"line {self.token.line}: unbalanced {self.token.text}")
        return self.resources

    def declaration(self, parent: Resource | None) -> None:
        line = self.expect("name").line  # resource
        symbol = self.expect("name").text
        type_text = self.expect("string").text
        existing = self.token.kind == "name" and self.token.text == "existing"
        if existing:
            self.i += 1
        self.expect("=")
        type_, _, api_version = type_text.partition("@")
        if parent is not None and "/" not in type_:  # 'blobServices' inside a storage account
            type_, api_version = f"{parent.type}/{type_}", api_version or parent.api_version
        qualified = f"{parent.qualified}__{symbol}" if parent else symbol
        placeholder = Resource(
            self.path, line, symbol, type_, api_version, existing, None, qualified
        )
        body = self.value(placeholder)
        while isinstance(body, Loop):
            body = body.body
        resource = Resource(
            self.path,
            line,
            symbol,
            type_,
            api_version,
            existing,
            body if isinstance(body, ObjectLiteral) else None,
            qualified,
        )
        self.resources.append(resource)

    def value(self, resource: Resource | None = None) -> Value:
        """One value; resource: the declaration whose body this is, if it is one."""
        start = self.token
        if start.kind == "name" and start.text == "if" and self.peek().kind == "(":
            self.i += 1
            self.balanced()  # the condition of a resource, module or loop item
            self.skip_newlines()
            return self.value(resource)
        if start.kind == "{":
            value: Value = self.object_literal(resource)
        elif start.kind == "[" and self.peek().kind == "name" and self.peek().text == "for":
            value = self.loop(resource)
        elif start.kind == "[":
            value = self.array_literal()
        elif start.kind == "string" and not start.interpolated and self.peek().kind in _ENDS:
            self.i += 1
            return Literal(start.line, start.text)
        elif start.kind == "number" and self.peek().kind in _ENDS:
            self.i += 1
            return Literal(start.line, int(start.text))
        elif start.kind == "name" and start.text in {"true", "false", "null"}:
            if self.peek().kind in _ENDS:
                self.i += 1
                return Literal(start.line, {"true": True, "false": False}.get(start.text))
            value = Expression(start.line)
        else:
            value = Expression(start.line)
        if self.token.kind not in _ENDS:  # `{…}.key`, `[…][0]`, `x ? y : z`, `a.b`, …
            self.skip_expression()
            return Expression(start.line)
        return value

    def object_literal(self, resource: Resource | None) -> ObjectLiteral:
        line = self.expect("{").line
        properties: list[Property] = []
        while True:
            while self.token.kind in {"newline", ","}:
                self.i += 1
            token = self.token
            if token.kind == "}":
                self.i += 1
                return ObjectLiteral(line, tuple(properties))
            if token.kind == "@":  # a decorator (of a nested resource)
                self.skip_expression()
                continue
            if (
                resource is not None
                and token.kind == "name"
                and token.text == "resource"
                and self.peek().kind == "name"
            ):
                self.declaration(parent=resource)
                continue
            if token.kind not in {"name", "string"}:
                raise BicepSyntaxError(
                    f"line {token.line}: expected a property, found {token.text!r}"
                )
            self.i += 1
            self.expect(":")
            key = None if token.interpolated else token.text
            properties.append(Property(token.line, key, self.value()))

    def array_literal(self) -> ArrayLiteral:
        line = self.expect("[").line
        items: list[Value] = []
        while True:
            while self.token.kind in {"newline", ","}:
                self.i += 1
            if self.token.kind == "]":
                self.i += 1
                return ArrayLiteral(line, tuple(items))
            items.append(self.value())

    def loop(self, resource: Resource | None) -> Loop:
        line = self.expect("[").line
        depth = 0  # find the ':' that ends `for x in y`
        while not (depth == 0 and self.token.kind == ":"):
            if self.token.kind == "eof":
                raise BicepSyntaxError(f"line {line}: unterminated for")
            depth += (self.token.kind in _OPENERS) - (self.token.kind in _OPENERS.values())
            self.i += 1
        self.i += 1
        self.skip_newlines()
        body = self.value(resource)
        self.skip_newlines()
        self.expect("]")
        return Loop(line, body)

    def balanced(self) -> None:
        """Skip one bracketed group, starting at its opening bracket."""
        closer = _OPENERS[self.token.kind]
        line = self.token.line
        self.i += 1
        while self.token.kind != closer:
            if self.token.kind == "eof":
                raise BicepSyntaxError(f"line {line}: unclosed bracket")
            if self.token.kind in _OPENERS:
                self.balanced()
            else:
                self.i += 1
        self.i += 1

    def skip_expression(self) -> None:
        """Skip to the end of the current value or statement (at least one token)."""
        first = True
        while first or self.token.kind not in _ENDS:
            first = False
            if self.token.kind in _OPENERS:
                self.balanced()
            elif self.token.kind != "eof":
                self.i += 1
            else:
                return


def resources(path: Path) -> list[Resource]:
    """Every resource declared in the Bicep file at path, nested ones included.

    Raises BicepSyntaxError where the file is not Bicep as this reader knows it.
    """
    try:
        return _Reader(path, path.read_text()).file()
    except BicepSyntaxError as error:
        raise BicepSyntaxError(f"{path}: {error}") from None
