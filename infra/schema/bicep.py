"""The declarations of a Bicep file, with the line of every node, for the checks in
infra/schema/ (no Bicep compiler can run here).

It reads what infra/ writes and the Bicep language around it: targetScope, param, var,
resource (top level, nested in another's body, `if (…)`, `[for …]`), module, output, type,
func, import and metadata statements with their decorators; values are read by
expressions.py, tokens by tokens.py. It evaluates nothing, and reads a type for its base
(string, int, …) only. pycep, which keeps no line numbers, parses the same files in full,
and check.py compares what both found.
"""

from __future__ import annotations

import functools
from pathlib import Path

from expressions import OPENERS, ValueReader
from syntax import (
    BicepFile,
    Decorator,
    Function,
    Literal,
    Loop,
    Module,
    ObjectLiteral,
    Output,
    Param,
    Resource,
    TypeRef,
    Value,
    Variable,
)
from tokens import BicepSyntaxError, Token, tokens

_BASE_TYPES = {"string", "int", "bool", "object", "array", "any"}


class FileReader(ValueReader):
    """Reads one file's statements into a BicepFile."""

    def __init__(self, path: Path, stream: list[Token]) -> None:
        super().__init__(path, stream)
        self.file = BicepFile(path)

    # --- statements -------------------------------------------------------------------

    def read(self) -> BicepFile:
        while True:
            self.skip_newlines()
            if self.at("eof"):
                return self.file
            decorators: list[Decorator] = []
            while self.at("@"):
                decorators.append(self.decorator())
                self.skip_newlines()
            self.statement(tuple(decorators))
            if not (self.at("newline") or self.at("eof")):
                raise self.fail("expected the end of the line")

    def statement(self, decorators: tuple[Decorator, ...]) -> None:
        keyword = self.expect("name")
        handler = {
            "targetScope": self.target_scope,
            "param": self.param,
            "var": self.variable,
            "output": self.output,
            "resource": self.resource_statement,
            "module": self.module,
            "type": self.type_alias,
            "func": self.function,
            "import": self.import_,
            "metadata": self.metadata,
            "extension": self.skip_line,
            "provider": self.skip_line,
            "using": self.skip_line,
        }.get(keyword.text)
        if handler is None:
            raise BicepSyntaxError(f"line {keyword.line}: unknown statement {keyword.text!r}")
        handler(keyword.line, decorators)

    def declare(self, line: int, name: str, table: dict[str, object] | None = None) -> None:
        names = (
            set(self.file.params)
            | set(self.file.variables)
            | set(self.file.modules)
            | {r.symbol for r in self.file.resources if r.parent is None}
            | set(self.file.functions)
        )
        if table is not None:
            names = set(table)
        if name in names:
            self.file.duplicates.append((line, name))

    def target_scope(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        self.expect("=")
        value = self.value()
        if not (isinstance(value, Literal) and isinstance(value.value, str)):
            raise BicepSyntaxError(f"line {line}: targetScope must be a string")
        self.file.target_scope, self.file.target_scope_line = value.value, line

    def param(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        name = self.expect("name").text
        type_ = self.type_ref()
        default = None
        if self.at("="):
            self.i += 1
            default = self.value()
        self.declare(line, name)
        self.file.params[name] = Param(line, name, type_, default, decorators)

    def variable(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        name = self.expect("name").text
        if not self.at("="):
            self.type_ref()
        self.expect("=")
        self.declare(line, name)
        self.file.variables[name] = Variable(line, name, self.value())

    def output(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        name = self.expect("name").text
        type_ = self.type_ref()
        self.expect("=")
        self.declare(line, name, dict(self.file.outputs))
        self.file.outputs[name] = Output(line, name, type_, self.value())

    def type_alias(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        name = self.expect("name").text
        self.expect("=")
        self.file.types[name] = self.type_ref()

    def function(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        name = self.expect("name").text
        self.expect("(")
        parameters: list[str] = []
        while not self.before(")"):
            self.skip_newlines()
            parameters.append(self.expect("name").text)
            self.skip_type(stop={",", ")"})
            if self.at(","):
                self.i += 1
        self.expect(")")
        self.skip_type(stop={"=>"})
        self.expect("=>")
        self.declare(line, name)
        self.file.functions[name] = Function(line, name, tuple(parameters), self.value())

    def import_(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        if self.at("{"):
            self.i += 1
            while not self.before("}"):
                if self.at("name"):
                    name = self.expect("name").text
                    if self.at("name", "as"):
                        self.i += 1
                        name = self.expect("name").text
                    self.file.imports.add(name)
                else:
                    self.i += 1
            self.i += 1
        elif self.at("*"):
            self.i += 1
            self.expect("name", "as")
            self.file.imports.add(self.expect("name").text)
        self.skip_line(line, decorators)

    def metadata(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        self.expect("name")
        self.expect("=")
        self.file.metadata.append(self.value())

    def skip_line(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        while not (self.at("newline") or self.at("eof")):
            self.skip_balanced() if self.token.kind in OPENERS else self.advance()

    # --- types ------------------------------------------------------------------------

    def skip_type(self, stop: set[str]) -> None:
        while not (self.token.kind in stop or self.at("newline") or self.at("eof")):
            self.skip_balanced() if self.token.kind in OPENERS else self.advance()

    def type_ref(self) -> TypeRef:
        """A type, up to `=` or the end of the line; only its base is kept."""
        start = self.i
        self.skip_type(stop={"="})
        words = self.tokens[start : self.i]
        if not words:
            raise BicepSyntaxError(f"line {self.token.line}: expected a type")
        nullable = words[-1].kind == "?" or any(w.text == "null" for w in words)
        base, literals = _type_base(words)
        return TypeRef(words[0].line, base, nullable, literals)

    # --- resources and modules --------------------------------------------------------

    def resource_statement(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        self.declaration(line, parent=None)

    def declaration(self, line: int, parent: Resource | None) -> None:
        symbol = self.expect("name").text
        type_text = self.expect("string").text
        existing = self.at("name", "existing")
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
        if parent is None:
            self.declare(line, symbol)
        body, condition, loop = self.declaration_body(placeholder)
        self.file.resources.append(
            Resource(
                self.path,
                line,
                symbol,
                type_,
                api_version,
                existing,
                body,
                qualified,
                condition,
                loop,
                parent.qualified if parent else None,
            )
        )

    def declaration_body(
        self, resource: Resource | None
    ) -> tuple[ObjectLiteral | None, Value | None, Loop | None]:
        """A resource's or module's `{…}`, `if (…) {…}` or `[for …: …]`."""
        condition = None
        if self.at("name", "if"):
            condition = self.condition()
        value = self.value(resource)
        loop = value if isinstance(value, Loop) else None
        if loop is not None:
            condition, value = loop.condition, loop.body
        return (value if isinstance(value, ObjectLiteral) else None), condition, loop

    def module(self, line: int, decorators: tuple[Decorator, ...]) -> None:
        symbol = self.expect("name").text
        path = self.expect("string").text
        self.expect("=")
        self.declare(line, symbol)
        body, condition, loop = self.declaration_body(None)
        self.file.modules[symbol] = Module(line, symbol, path, body, condition, loop)

    # --- values -----------------------------------------------------------------------

    def nested(self, line: int, parent: Resource) -> None:
        self.declaration(line, parent)


def _type_base(words: list[Token]) -> tuple[str, tuple[str | int | bool, ...]]:
    """The base of a type's tokens (string, int, bool, object, array, resource, any, or
    custom:<name> for a declared type) and its literal values, if it is a union of them."""
    first = words[0]
    after = words[1].kind if len(words) > 1 else ""
    if first.kind in {"string", "number"} or first.text in {"true", "false"}:
        literals = tuple(v for w in words if (v := _literal_type(w)) is not None)
        kinds = {type(v) for v in literals}
        names = {str: "string", int: "int", bool: "bool"}
        return (names[kinds.pop()] if len(kinds) == 1 else "any"), literals
    if first.kind == "name" and after == "[":
        return "array", ()
    if first.kind == "name" and first.text in _BASE_TYPES | {"resource"}:
        return first.text, ()
    if first.kind in {"{", "["}:
        return ("object" if first.kind == "{" else "array"), ()
    if first.kind == "name" and after in {"", "?"}:
        return f"custom:{first.text}", ()
    return "any", ()


def _literal_type(token: Token) -> str | int | bool | None:
    if token.kind == "number":
        return int(token.text)
    if token.kind == "string":
        return token.text
    return {"true": True, "false": False}.get(token.text)


@functools.cache
def _read(path: Path, text: str) -> BicepFile:
    return FileReader(path, tokens(text)).read()


def read(path: Path) -> BicepFile:
    """The Bicep file at path, read once per content.

    Raises BicepSyntaxError (its message starts with the line) where the file is not Bicep
    as this reader knows it.
    """
    return _read(path, path.read_text())
