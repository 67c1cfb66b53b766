"""What a command reads and writes at the terminal: a JSON document from a file or
standard input, JSON on stdout, an answer as JSON or as a table, warnings on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from aksfw_core.errors import InputError
from aksfw_core.jsondoc import load_json
from aksfw_core.logs import printable
from aksfw_core.rules.model import TagWarning


def read_json(path: str) -> Any:
    """The JSON document in the file `path`, or on standard input for `-`.

    Raises:
        InputError: it cannot be read, is not UTF-8 text, or is not JSON.
    """
    name = "standard input" if path == "-" else path
    data: str | bytes
    try:
        if path == "-":
            data = sys.stdin.read()
        else:
            with open(path, "rb") as file:
                data = file.read()
    except OSError as error:
        raise InputError(f"cannot read {name}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text") from None
    return load_json(data, name)


def print_json(document: object) -> None:
    """`document` on stdout, indented."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_answer(as_json: bool, document: object, table: Callable[[object], str]) -> None:
    """An answer of the app on stdout: its JSON, or `table` of it for a person."""
    if as_json:
        print_json(document)
    else:
        sys.stdout.write(table(document))


def warn(warnings: Sequence[TagWarning]) -> None:
    """Each warning as one line on stderr."""
    for warning in warnings:
        say(f"warning: {warning}")


def say(line: str) -> None:
    """One line for a person on stderr, whatever names it holds (`logs.printable`)."""
    print(printable(line), file=sys.stderr)
