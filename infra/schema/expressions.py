"""The values of a Bicep file as a tree (syntax.py), read from its tokens (tokens.py):
literals, objects, arrays, `for` loops with their `if`, references, property and index
access (`.`, `.?`, `::`, `[…]`), calls, unary and binary operators by Bicep's precedence,
`?:`, string interpolation and lambdas. bicep.py reads the declarations around them.
"""

from __future__ import annotations

from pathlib import Path

from syntax import (
    Access,
    ArrayLiteral,
    Call,
    Conditional,
    Decorator,
    Index,
    Interpolation,
    Lambda,
    Literal,
    Loop,
    ObjectLiteral,
    Operation,
    Property,
    Reference,
    Resource,
    Value,
)
from tokens import BicepSyntaxError, Token

OPENERS = {"(": ")", "[": "]", "{": "}"}
# Binary operators from the loosest to the tightest.
_BINARY = (("??",), ("||",), ("&&",), ("==", "!=", "=~", "!~"), ("<", "<=", ">", ">="))
_ARITHMETIC = (("+", "-"), ("*", "/", "%"))
_LEVELS = _BINARY + _ARITHMETIC
# Operators that may begin a continuation line (a value never starts with them).
_CONTINUATIONS = {"?", ":", "&&", "||", "??"}


class ValueReader:
    """A cursor over tokens that reads values (expressions) from them."""

    def __init__(self, path: Path, stream: list[Token] | tuple[Token, ...], line: int = 1) -> None:
        self.path = path
        self.tokens: list[Token] = [*stream, Token("eof", "", stream[-1].line if stream else line)]
        self.i = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.token.kind == kind and (text is None or self.token.text == text)

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.token
        if not self.at(kind, text):
            wanted = text or kind
            raise BicepSyntaxError(f"line {token.line}: expected {wanted!r}, found {token.text!r}")
        self.i += 1
        return token

    def before(self, kind: str) -> bool:
        """Whether the token is kind; raises at the end of the file."""
        if self.at("eof"):
            raise BicepSyntaxError(f"line {self.token.line}: expected {kind!r} before the end")
        return self.at(kind)

    def skip_newlines(self) -> None:
        while self.token.kind == "newline":
            self.i += 1

    def fail(self, what: str) -> BicepSyntaxError:
        return BicepSyntaxError(f"line {self.token.line}: {what}, found {self.token.text!r}")

    # --- statements -------------------------------------------------------------------

    def advance(self) -> None:
        self.i += 1

    def skip_balanced(self) -> None:
        closer = OPENERS[self.token.kind]
        line = self.token.line
        self.i += 1
        while not self.at(closer):
            if self.at("eof"):
                raise BicepSyntaxError(f"line {line}: unclosed bracket")
            self.skip_balanced() if self.token.kind in OPENERS else self.advance()
        self.i += 1

    # --- types ------------------------------------------------------------------------

    def decorator(self) -> Decorator:
        line = self.expect("@").line
        node = self.postfix(self.primary())
        if isinstance(node, Call):
            return Decorator(line, node.name, node.args)
        if isinstance(node, Reference):
            return Decorator(line, node.name, ())
        raise BicepSyntaxError(f"line {line}: not a decorator")

    def condition(self) -> Value:
        self.expect("name", "if")
        self.expect("(")
        self.skip_newlines()
        condition = self.value()
        self.skip_newlines()
        self.expect(")")
        self.skip_newlines()
        return condition

    def value(self, resource: Resource | None = None) -> Value:
        """One expression; resource: the declaration whose body this is, if it is one."""
        condition = self.binary(0, resource)
        if not self.continues("?"):
            return condition
        self.expect("?")
        self.skip_newlines()
        then = self.value()
        self.continues(":")
        self.expect(":")
        self.skip_newlines()
        return Conditional(condition_line(condition), condition, then, self.value())

    def continues(self, kind: str) -> bool:
        """Whether the next token (past newlines) is kind; if so, move to it."""
        ahead = self.i
        while self.tokens[ahead].kind == "newline":
            ahead += 1
        if self.tokens[ahead].kind == kind and kind in _CONTINUATIONS:
            self.i = ahead
            return True
        return False

    def binary(self, level: int, resource: Resource | None = None) -> Value:
        if level == len(_LEVELS):
            return self.unary(resource)
        left = self.binary(level + 1, resource)
        while self.token.kind in _LEVELS[level] or any(
            op in _CONTINUATIONS and self.continues(op) for op in _LEVELS[level]
        ):
            operator = self.token.kind
            self.i += 1
            self.skip_newlines()
            right = self.binary(level + 1)
            left = Operation(condition_line(left), operator, (left, right))
        return left

    def unary(self, resource: Resource | None = None) -> Value:
        if self.token.kind in {"!", "-"}:
            line, operator = self.token.line, self.token.kind
            self.i += 1
            operand = self.unary()
            if operator == "-" and isinstance(operand, Literal) and isinstance(operand.value, int):
                return Literal(line, -operand.value)
            return Operation(line, operator, (operand,))
        return self.postfix(self.primary(resource))

    def postfix(self, node: Value) -> Value:
        while True:
            token = self.token
            if token.kind == ".":
                self.i += 1
                safe = self.at("?")
                if safe:
                    self.i += 1
                name = self.expect("name").text
                if self.at("("):
                    node = Call(token.line, name, self.arguments(), node)
                else:
                    node = Access(token.line, node, name, safe)
            elif token.kind == "::":
                self.i += 1
                node = Access(token.line, node, self.expect("name").text, nested=True)
            elif token.kind == "[":
                self.i += 1
                safe = self.at("?")
                if safe:
                    self.i += 1
                self.skip_newlines()
                index = self.value()
                self.skip_newlines()
                self.expect("]")
                node = Index(token.line, node, index, safe)
            elif token.kind == "!" and self.peek().kind not in {"name", "(", "string", "number"}:
                self.i += 1  # the non-null assertion
            else:
                return node

    def arguments(self) -> tuple[Value, ...]:
        self.expect("(")
        args: list[Value] = []
        self.skip_newlines()
        while not self.before(")"):
            args.append(self.value())
            self.skip_newlines()
            if self.at(","):
                self.i += 1
                self.skip_newlines()
            elif not self.at(")"):
                raise self.fail("expected ',' or ')'")
        self.i += 1
        return tuple(args)

    def primary(self, resource: Resource | None = None) -> Value:
        token = self.token
        if token.kind == "(":
            return self.lambda_() if self.lambda_ahead() else self.parenthesized()
        if token.kind == "{":
            return self.object_literal(resource)
        if token.kind == "[":
            ahead = self.i + 1
            while self.tokens[ahead].kind == "newline":
                ahead += 1
            if self.tokens[ahead].kind == "name" and self.tokens[ahead].text == "for":
                return self.loop(resource)
            return self.array_literal()
        if token.kind in {"string", "number", "name"}:
            self.i += 1
            return self.word(token)
        raise self.fail("expected a value")

    def parenthesized(self) -> Value:
        self.expect("(")
        self.skip_newlines()
        inner = self.value()
        self.skip_newlines()
        self.expect(")")
        return inner

    def word(self, token: Token) -> Value:
        """The value a string, number or name token (just read) begins."""
        if token.kind == "string" and token.parts:
            parts = tuple(
                ValueReader(self.path, part, token.line).whole_value() for part in token.parts
            )
            return Interpolation(token.line, parts)
        if token.kind != "name":
            return Literal(token.line, token.text if token.kind == "string" else int(token.text))
        if token.text in {"true", "false", "null"}:
            return Literal(token.line, {"true": True, "false": False}.get(token.text))
        if self.at("=>"):
            self.i += 1
            self.skip_newlines()
            return Lambda(token.line, (token.text,), self.value())
        if self.at("("):
            return Call(token.line, token.text, self.arguments())
        return Reference(token.line, token.text)

    def whole_value(self) -> Value:
        value = self.value()
        if not self.at("eof"):
            raise self.fail("unexpected text in ${…}")
        return value

    def lambda_ahead(self) -> bool:
        """Whether `(` opens a lambda's parameters: `(a, b) => …`."""
        ahead = self.i + 1
        while self.tokens[ahead].kind in {"name", ","}:
            ahead += 1
        return self.tokens[ahead].kind == ")" and self.tokens[ahead + 1].kind == "=>"

    def lambda_(self) -> Lambda:
        line = self.expect("(").line
        names: list[str] = []
        while not self.before(")"):
            if self.at("name"):
                names.append(self.token.text)
            self.i += 1
        self.i += 1
        self.expect("=>")
        self.skip_newlines()
        return Lambda(line, tuple(names), self.value())

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
            if token.kind == "@":  # a decorator (of a nested resource or an object type)
                self.decorator()
                continue
            if token.kind == "...":
                self.i += 1
                properties.append(Property(token.line, None, self.value()))
                continue
            if (
                resource is not None
                and token.kind == "name"
                and token.text == "resource"
                and self.peek().kind == "name"
            ):
                self.i += 1
                self.nested(token.line, resource)
                continue
            if token.kind not in {"name", "string"}:
                raise self.fail("expected a property")
            self.i += 1
            self.expect(":")
            self.skip_newlines()
            key = None if token.interpolated else token.text
            properties.append(Property(token.line, key, self.value()))
            if self.token.kind not in {"newline", ",", "}"}:
                raise self.fail("expected the end of the property")

    def array_literal(self) -> ArrayLiteral:
        line = self.expect("[").line
        items: list[Value] = []
        while True:
            while self.token.kind in {"newline", ","}:
                self.i += 1
            if self.at("]"):
                self.i += 1
                return ArrayLiteral(line, tuple(items))
            items.append(self.value())
            if self.token.kind not in {"newline", ",", "]"}:
                raise self.fail("expected the end of the item")

    def loop(self, resource: Resource | None) -> Loop:
        line = self.expect("[").line
        self.skip_newlines()
        self.expect("name", "for")
        variables: list[str] = []
        if self.at("("):
            self.i += 1
            while not self.before(")"):
                if self.at("name"):
                    variables.append(self.token.text)
                self.i += 1
            self.i += 1
        else:
            variables.append(self.expect("name").text)
        self.expect("name", "in")
        source = self.value()
        self.expect(":")
        self.skip_newlines()
        condition = self.condition() if self.at("name", "if") else None
        body = self.value(resource)
        self.skip_newlines()
        self.expect("]")
        return Loop(line, body, tuple(variables), source, condition)

    def nested(self, line: int, parent: Resource) -> None:
        """A resource declared in another's body (bicep.py reads it)."""
        raise BicepSyntaxError(f"line {line}: a resource declaration here")


def condition_line(value: Value) -> int:
    return value.line
