"""Bicep's tokens, for the reader in bicep.py and expressions.py: names, numbers, strings
(with the tokens of each `${…}` they interpolate), operators and newlines; comments dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "string", "number", "newline", "eof", or the punctuation itself
    text: str
    line: int
    parts: tuple[tuple[Token, ...], ...] = ()  # strings: the tokens of each ${…}

    @property
    def interpolated(self) -> bool:
        return bool(self.parts)


class BicepSyntaxError(ValueError):
    pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}
_OPERATORS = ("...", "==", "!=", "=~", "!~", "<=", ">=", "&&", "||", "??", "=>", "::")


def tokens(text: str, line: int = 1) -> list[Token]:
    """Bicep's tokens; comments dropped, runs of newlines kept as one."""
    out: list[Token] = []
    i = 0
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
            value, spans, end = _string(text, i, line)
            parts = tuple(
                tuple(tokens(text[start:stop], line + text.count("\n", i, start)))
                for start, stop in spans
            )
            out.append(Token("string", value, line, parts))
            line += text.count("\n", i, end)
            i = end
        elif match := _NAME.match(text, i):
            out.append(Token("name", match.group(), line))
            i = match.end()
        elif match := _NUMBER.match(text, i):
            out.append(Token("number", match.group(), line))
            i = match.end()
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, i)), char)
            out.append(Token(operator, operator, line))
            i += len(operator)
    return out


def _string(text: str, start: int, line: int) -> tuple[str, list[tuple[int, int]], int]:
    """The string literal at text[start] ("'"): its text, its ${…} spans, its end."""
    value: list[str] = []
    spans: list[tuple[int, int]] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            value.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif char == "'":
            return "".join(value), spans, i + 1
        elif text.startswith("${", i):
            end = _interpolation_end(text, i + 2, line)
            spans.append((i + 2, end - 1))
            i = end
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
