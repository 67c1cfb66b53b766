"""`aksfw resolve-event`: which clusters one Event Grid or CloudEvents event affects, and
why; against a saved inventory (no Azure calls) or the configuration's."""

from __future__ import annotations

import argparse

from aksfw_core.azure.events import read_event, resolve
from aksfw_core.azure.inventory import Inventory, inventory_from_json
from aksfw_core.cli.clusters import configured_discovery
from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.console import print_json, read_json
from aksfw_core.errors import InputError


def _arguments(parser: CommandParser) -> None:
    parser.add_argument("file", metavar="FILE|-", help="one Event Grid or CloudEvents event")
    parser.add_argument(
        "--inventory",
        metavar="FILE",
        help="an inventory from `aksfw clusters` (no Azure calls)",
    )


def _run(args: argparse.Namespace) -> int:
    event = read_event(read_json(args.file))
    if args.inventory:
        resolution = resolve(event, _saved_inventory(args.inventory))
    else:
        discovery = configured_discovery()
        resolution = resolve(event, discovery.inventory())
        if resolution.unknown_cluster:
            resolution = resolve(event, discovery.inventory_knowing(resolution.unknown_cluster))
    print_json(resolution.as_json())
    return 0


def _saved_inventory(path: str) -> Inventory:
    """The inventory in the file `path`.

    Raises:
        InputError: it is not one, saying how one is written (a table is not).
    """
    try:
        document = read_json(path)
    except InputError as error:
        raise InputError(f"{error} (`aksfw clusters` writes an inventory)") from None
    return inventory_from_json(document)


COMMAND = Command(
    "resolve-event", "print which clusters an event affects", _arguments, _run, reads_only=True
)
