"""A stand-in `az` for the hook tests: it logs each call's arguments, one line per call, and
answers with the first rule whose shell pattern matches them (anything else: no output, exit 0,
as a list that finds nothing)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    """One answer: `pattern` is a shell glob over the arguments joined by spaces, where only
    `*` is special, e.g. `"functionapp show *--name func-x*"`."""

    pattern: str
    stdout: str = ""
    status: int = 0


def glob(pattern: str) -> str:
    """`pattern` as a `case` pattern: its `*` are wildcards, everything else is literal."""
    return "*".join(shlex.quote(piece) if piece else "" for piece in pattern.split("*"))


def write_az(bin_dir: Path, rules: Sequence[Rule]) -> Path:
    """Put an executable `az` in `bin_dir` answering by `rules`; returns the file it logs to."""
    log = bin_dir.parent / "az.log"
    answers = bin_dir.parent / "az-answers"
    answers.mkdir(exist_ok=True)
    cases = []
    for index, rule in enumerate(rules):
        answer = answers / str(index)
        answer.write_text(rule.stdout + ("\n" if rule.stdout else ""))
        failure = f'echo "ERROR: stand-in az failed ({rule.status})" >&2; ' if rule.status else ""
        cases.append(f'  {glob(rule.pattern)}) cat "{answer}"; {failure}exit {rule.status};;\n')
    az = bin_dir / "az"
    az.write_text(
        "#!/bin/sh\n"
        f'printf \'%s\\n\' "$*" >> "{log}"\n'
        'case "$*" in\n' + "".join(cases) + "esac\nexit 0\n"
    )
    az.chmod(0o755)
    return log


def az_calls(log: Path) -> list[str]:
    """The calls `az` was given, in order (empty when it was never called)."""
    return log.read_text().splitlines() if log.exists() else []
