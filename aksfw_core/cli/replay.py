"""`aksfw replay`: move a running app's poisoned messages back to their queue once the
cause is fixed (`POST /api/replay`); those that would fail again are reported and kept."""

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
from aksfw_core.cli.tables import replay_table
from aksfw_core.errors import InputError
from aksfw_core.pipeline.storage import RESYNC_QUEUE, UPDATES_QUEUE


def _arguments(parser: CommandParser) -> None:
    app_arguments(parser)
    timeout_argument(parser)
    parser.add_argument(
        "--queue",
        choices=(RESYNC_QUEUE, UPDATES_QUEUE),
        help="replay only this queue's poisoned messages (default: both)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed, move nothing"
    )
    parser.add_argument(
        "--max",
        type=int,
        metavar="N",
        help="read at most N poisoned messages (default and ceiling: limits.replayMaxMessages)",
    )


def _run(args: argparse.Namespace) -> int:
    # The ceiling is the app's (`limits.replayMaxMessages`): it refuses more itself.
    if args.max is not None and args.max < 1:
        raise InputError("--max must be at least 1")
    with app_client(args) as client, within_timeout(args), waiting_for(app_address(client)):
        document = client.replay(args.queue, args.dry_run, args.max)
    print_answer(args.json, document, replay_table)
    return 0


COMMAND = Command(
    "replay",
    "move poisoned messages back to their queue once the cause is fixed "
    "(POST /api/replay); those that would fail again are reported and kept",
    _arguments,
    _run,
)
