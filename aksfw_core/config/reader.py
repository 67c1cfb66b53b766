"""Reading one JSON object of the document: each field by its check, the path of the
field at fault in every error, and unknown keys refused."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aksfw_core.errors import InputError

T = TypeVar("T")


class Fields:
    """Reads the fields of one JSON object, tracking the path and unknown keys."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            raise InputError(f"{path}: expected an object")
        self.value: Mapping[str, Any] = value
        self.path = path
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def optional(self, key: str, parse: Callable[[Any, str], T]) -> T | None:
        self.seen.add(key)
        if self.value.get(key) is None:
            return None
        return parse(self.value[key], self.at(key))

    def required(self, key: str, parse: Callable[[Any, str], T]) -> T:
        result = self.optional(key, parse)
        if result is None:
            raise InputError(f"{self.at(key)}: required")
        return result

    def list(self, key: str, parse: Callable[[Any, str], T]) -> list[T]:
        self.seen.add(key)
        items = self.value.get(key)
        if items is None:
            return []
        if not isinstance(items, list):
            raise InputError(f"{self.at(key)}: expected a list")
        return [parse(item, f"{self.at(key)}[{index}]") for index, item in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            raise InputError(f"{self.at(unknown[0])}: unknown field")


def string(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{path}: expected a non-empty string")
    return value.strip()


def integer(low: int, high: int) -> Callable[[object, str], int]:
    def parse(value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{path}: expected a whole number from {low} to {high}")
        return value

    return parse


def naming(where: str, check: Callable[[str], T], text: str) -> T:
    """`check(text)`, its InputError prefixed with `where`."""
    try:
        return check(text)
    except InputError as error:
        raise InputError(f"{where}: {error}") from None


def boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{path}: expected true or false")
    return value


def https_url(value: object, path: str, allow_http: bool = False) -> str:
    text = string(value, path)
    schemes = ("https://", "http://") if allow_http else ("https://",)
    if not text.lower().startswith(schemes) or any(c.isspace() for c in text):
        raise InputError(f"{path}: expected an https:// URL")
    return text.rstrip("/")
