"""Reading one JSON object of the document: each field by its check, the path of the
field at fault in every error, and unknown keys refused, with the known key that was
likely meant (`config.panorama.hots: unknown field; did you mean host?`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from aksfw_core.errors import InputError

T = TypeVar("T")

CLOSE_ENOUGH = 0.7
"""How alike (difflib's ratio, 0 to 1) an unknown key and a known one must be for the
known one to be suggested: `hots`/`host` is 0.75, `alais`/`alias` 0.8, while
`server`/`secret` (two different fields) is 0.67."""
_LONGEST_COMPARED = 200
"""Characters: a longer unknown key is refused without a suggestion (difflib's cost grows
with the product of the lengths)."""


def meant_key(key: str, known: Iterable[str]) -> str | None:
    """The known key that `key` most likely misspells: one that differs only in letter
    case (`HOST`, `verifyTLS`), else the closest at `CLOSE_ENOUGH` or above
    (`hots` → `host`); None when none is close."""
    by_folded = {name.casefold(): name for name in sorted(known, reverse=True)}
    folded = key.casefold()
    if folded in by_folded:
        return by_folded[folded]
    if len(key) > _LONGEST_COMPARED:
        return None
    close = difflib.get_close_matches(folded, sorted(by_folded), n=1, cutoff=CLOSE_ENOUGH)
    return by_folded[close[0]] if close else None


def unknown_key(where: str, key: str, known: Iterable[str], what: str = "field") -> InputError:
    """`<where>: unknown field` (or `what`), with `; did you mean <known>?` when `key`
    looks like one of `known` (`meant_key`)."""
    meant = meant_key(key, known)
    return InputError(f"{where}: unknown {what}" + (f"; did you mean {meant}?" if meant else ""))


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
        """The field `key`, which must be given.

        Raises:
            InputError: it is missing (naming a key given in its place, if one looks like
                it: `hots` for `host`), or `parse` refused it.
        """
        result = self.optional(key, parse)
        if result is None:
            misspelt = sorted(
                given
                for given in self.value
                if given not in self.seen and meant_key(given, [key]) == key
            )
            if misspelt:
                raise unknown_key(self.at(misspelt[0]), misspelt[0], [key])
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
        """Refuse a key that none of the reads asked for.

        Raises:
            InputError: naming the first such key, and the known key it likely misspells
                among those not given.
        """
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            raise unknown_key(self.at(unknown[0]), unknown[0], self.seen - set(self.value))


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
