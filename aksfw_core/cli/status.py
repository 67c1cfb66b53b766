"""`aksfw status`: a running app's clusters, targets and queues (`GET /api/status`), as a
table or as the app's JSON."""

from __future__ import annotations

import argparse

from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.console import print_answer
from aksfw_core.cli.options import (
    app_address,
    app_arguments,
    app_client,
    timeout_argument,
    waiting_for,
    within_timeout,
)
from aksfw_core.cli.tables import status_table


def _arguments(parser: CommandParser) -> None:
    app_arguments(parser)
    timeout_argument(parser)


def _run(args: argparse.Namespace) -> int:
    with app_client(args) as client, within_timeout(args), waiting_for(app_address(client)):
        document = client.status()
    print_answer(args.json, document, status_table)
    return 0


COMMAND = Command(
    "status",
    "show a running app's clusters, targets and queues (GET /api/status)",
    _arguments,
    _run,
    reads_only=True,
)
