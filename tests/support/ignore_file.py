"""Reads a gitignore-syntax file (.funcignore, .gitignore) and says whether it leaves a path
out, for tests/deploy/test_function_package.py.

It knows the syntax these files use: comments, `!` negation, a trailing `/` for directories
only, a leading or inner `/` that anchors a pattern to the root, and the globs `*`, `?` and
`**`. It refuses anything else (character classes, escapes), so that a new pattern is never
misread quietly. As in git, a path under an excluded directory stays excluded whatever later
patterns say, and the last pattern that matches a path decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _regex(glob: str) -> re.Pattern[str]:
    """The regular expression of a gitignore glob, `/` separating path components.

    Raises ValueError on syntax this reader does not know.
    """
    parts: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            parts.append("/.*")
            i += 3
        elif glob[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            parts.append("[^/]")
            i += 1
        elif glob[i] in "[]\\":
            raise ValueError(f"{glob!r}: character classes and escapes are not supported here")
        else:
            parts.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(parts))


@dataclass(frozen=True)
class Pattern:
    """One line of an ignore file."""

    text: str
    negated: bool
    directory_only: bool
    anchored: bool
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, line: str) -> Pattern:
        """Raises ValueError on syntax this reader does not know."""
        text = line.rstrip()
        body = text.removeprefix("!")
        directory_only = body.endswith("/")
        body = body.rstrip("/")
        return cls(
            text=text,
            negated=text.startswith("!"),
            directory_only=directory_only,
            anchored="/" in body,
            regex=_regex(body.lstrip("/")),
        )

    def matches(self, path: str, *, is_dir: bool) -> bool:
        if self.directory_only and not is_dir:
            return False
        target = path if self.anchored else path.rsplit("/", 1)[-1]
        return self.regex.fullmatch(target) is not None


@dataclass(frozen=True)
class IgnoreFile:
    patterns: tuple[Pattern, ...]

    @classmethod
    def parse(cls, text: str) -> IgnoreFile:
        """Raises ValueError on syntax this reader does not know."""
        lines = (line for line in text.splitlines() if line.strip())
        return cls(tuple(Pattern.parse(line) for line in lines if not line.startswith("#")))

    def ignores(self, path: str, *, is_dir: bool) -> bool:
        """Whether the file or directory at `path` (relative, `/`-separated) is left out."""
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if self._decides_out(prefix, is_dir=is_dir or depth < len(parts)):
                return True
        return False

    def _decides_out(self, path: str, *, is_dir: bool) -> bool:
        out = False
        for pattern in self.patterns:
            if pattern.matches(path, is_dir=is_dir):
                out = not pattern.negated
        return out
