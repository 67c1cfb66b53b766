"""What each command of the command line is made of: a `Command` (name, one-line help,
its options, what it runs), a `CommandGroup` of commands under one word (`config check`),
and the `CommandParser` its options go on, which refuses a mistake in one line (exit 2)
and knows the option strings it was given. Also the exit codes, which `docs/cli.md`
documents.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

EXIT_FAILED = 1
"""The work could not be done (Panorama or the cluster refused or failed)."""
EXIT_BAD_INPUT = 2
"""The command line or an input file is wrong."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C."""


class CommandParser(argparse.ArgumentParser):
    """An argument parser that says what is wrong in one line and exits 2, and that
    records the option strings added to it (`options`) for the refusals that name the
    command an option belongs to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: set[str] = set()  # before argparse adds -h, --help through add_argument
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """`ArgumentParser.add_argument`, recording the option strings."""
        action = super().add_argument(*args, **kwargs)
        self.options.update(action.option_strings)
        return action

    def add_one_of(self, *, required: bool) -> OneOf:
        """A group of options of which at most one (with `required`, exactly one) is given."""
        return OneOf(self, required)

    def error(self, message: str) -> NoReturn:
        """Exit 2 with one line: the message and where help is."""
        self.exit(EXIT_BAD_INPUT, f"aksfw: {message} (see `{self.prog} --help`)\n")


class OneOf:
    """Mutually exclusive options of one `CommandParser`, recorded as its options."""

    def __init__(self, parser: CommandParser, required: bool) -> None:
        self._parser = parser
        self._group = parser.add_mutually_exclusive_group(required=required)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """Add one of the options (as `ArgumentParser.add_argument`)."""
        action = self._group.add_argument(*args, **kwargs)
        self._parser.options.update(action.option_strings)
        return action


@dataclass(frozen=True)
class Command:
    """One command: `aksfw NAME ...`."""

    name: str
    """What is typed: `tags`, `sync`, `resolve-event`, ..."""
    help: str
    """One line: in `aksfw --help`, and as the description in `aksfw NAME --help`."""
    arguments: Callable[[CommandParser], None]
    """Adds the command's options and arguments to its parser."""
    run: Callable[[argparse.Namespace], int]
    """Does the work with the parsed line; returns the exit code. Raises `InputError` for
    bad input (exit 2) and other `AksfwError`s for work that failed (exit 1)."""
    reads_only: bool = False
    """It writes nothing, so the options about writing (`--dry-run`, ...) mean nothing."""


@dataclass(frozen=True)
class CommandGroup:
    """Commands under one word: `aksfw config check`. The group itself does nothing; its
    commands are refused and helped as `config check`."""

    name: str
    """The first word: `config`."""
    help: str
    """One line: in `aksfw --help`, and as the description in `aksfw NAME --help`."""
    commands: tuple[Command, ...]
    """The commands of the group, each named by its second word."""
