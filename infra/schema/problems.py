"""One problem the check reports, as `file:line: what: message`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str  # relative to the folder above infra/
    line: int
    what: str  # Type@version, `module x`, `param x`, `reference`, …
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}: {self.message}"
