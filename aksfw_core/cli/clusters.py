"""`aksfw clusters`: the inventory the configuration (`AKSFW_CONFIG`) resolves to, read
from Azure as the app reads it: each cluster's tag name (its alias, or its AKS name) and
the clusters left out, with why, as the JSON inventory that `resolve-event --inventory`
reads back (DESIGN 8); or, with `--table`, as a table for a person."""

from __future__ import annotations

import argparse
import os

from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.identity import azure_credential
from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.console import print_answer, say
from aksfw_core.cli.tables import clusters_table
from aksfw_core.config import load_settings
from aksfw_core.rules.monitoring import SkipReason


def configured_discovery() -> ClusterDiscovery:
    """The app's cluster discovery, from the configuration in the environment.

    Raises:
        InputError: no configuration, or a wrong one.
    """
    settings = load_settings(os.environ)
    return ClusterDiscovery(settings, azure_credential(os.environ))


def _arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--table",
        action="store_true",
        help="print a table for a person instead of the JSON inventory "
        "(which `resolve-event --inventory` reads back)",
    )


def _run(args: argparse.Namespace) -> int:
    report = configured_discovery().survey()
    if not args.table:  # the table shows them; JSON on its way to a file would not
        for item in report.skipped:
            if item.reason in (SkipReason.NO_ACCESS, SkipReason.NOT_FOUND):
                say(f"warning: skipped {item.id}: {item.detail}")
    print_answer(not args.table, report.as_json(), clusters_table)
    return 0


COMMAND = Command(
    "clusters",
    "show the clusters the configuration (AKSFW_CONFIG) monitors, their tag names, and "
    "the clusters it skips and why",
    _arguments,
    _run,
    reads_only=True,
)
