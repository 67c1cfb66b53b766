"""A credential in memory: it never prints itself, so no log line, exception text or repr
can carry it; `reveal()` gives it for the one request header it belongs in."""

from __future__ import annotations

from aksfw_core.errors import InputError


class Secret:
    """A credential (`what` names it in errors: "Panorama API key", "function key")."""

    __slots__ = ("_value", "what")

    def __init__(self, value: str, what: str) -> None:
        """Raises:
        InputError: empty, or holding what a request header cannot carry.
        """
        if not value or not value.isascii() or not value.isprintable() or " " in value:
            raise InputError(f"the {what} is empty or holds characters a header cannot")
        self._value = value
        self.what = what

    def reveal(self) -> str:
        """The credential itself, for the request header only."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.what}: ***)"

    __str__ = __repr__
