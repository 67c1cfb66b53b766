"""`aksfw uninstall`: remove every tag aksfw registered, on every target, through a
running app (`POST /api/uninstall`; resyncs are held back meanwhile), and with `--wait`
poll `GET /api/status` until no cluster holds a target; `--cancel` ends the pause of
resyncs an uninstall started (`POST /api/uninstall {"cancel": true}`)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from aksfw_core import limits
from aksfw_core.cli.app_api import AppClient
from aksfw_core.cli.command import EXIT_FAILED, Command, CommandParser
from aksfw_core.cli.console import print_answer, say
from aksfw_core.cli.options import (
    app_address,
    app_arguments,
    app_client,
    timeout_argument,
    timeout_s,
    waiting_for,
)
from aksfw_core.cli.tables import cancel_sentence, remaining_targets, uninstall_table
from aksfw_core.errors import InputError
from aksfw_core.pipeline.storage import UPDATES_QUEUE
from aksfw_core.retry import overall_deadline


def _arguments(parser: CommandParser) -> None:
    app_arguments(parser)
    timeout_argument(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be removed, remove nothing"
    )
    parser.add_argument(
        "--cancel",
        action="store_true",
        help="end the pause of resyncs an uninstall started (tags come back with the "
        "next resync), remove nothing",
    )
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="then wait up to SECONDS until no cluster holds a target (GET /api/status); "
        "exit 1 with what remains if some still do",
    )


def _run(args: argparse.Namespace) -> int:
    if args.cancel:
        if args.dry_run or args.wait is not None:
            raise InputError("--cancel goes with neither --dry-run nor --wait")
        with app_client(args) as client:
            with _each_call(args, client):
                answer = client.cancel_uninstall()
            print_answer(args.json, answer, cancel_sentence)
        return 0
    if args.wait is not None:
        if args.dry_run:
            raise InputError("--wait means nothing with --dry-run (nothing is removed)")
        most = limits.COMMAND_LINE.uninstall_max_wait_s
        if not 0 < args.wait <= most:
            raise InputError(f"--wait must be more than 0 and at most {most:g}")
    with app_client(args) as client:
        with _each_call(args, client):
            document = client.uninstall(args.dry_run)
        print_answer(args.json, document, uninstall_table)
        if args.wait is None:
            return 0
        return _wait_uninstalled(client, args.wait, lambda: _each_call(args, client))


@contextmanager
def _each_call(args: argparse.Namespace, client: AppClient) -> Iterator[None]:
    """`--timeout` bounds each call on the app (`--wait` has its own bound)."""
    with overall_deadline(timeout_s(args)), waiting_for(app_address(client)):
        yield


def _wait_uninstalled(
    client: AppClient,
    wait_s: float,
    each_call: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> int:
    """Poll the status until no cluster holds a target; 1 with what remains at the end."""
    bounds = limits.COMMAND_LINE
    started = time.monotonic()
    sent = started
    while True:
        with each_call():
            status = client.status()
        remaining = remaining_targets(status)
        now = time.monotonic()
        if not remaining:
            done = f"uninstalled in {now - started:.0f} s: no cluster holds a target"
            say(f"aksfw: {done}")
            return 0
        queues = status.get("queues") if isinstance(status, dict) else None
        depths = queues if isinstance(queues, dict) else {}
        if now >= started + wait_s:
            names = ", ".join(f"{cluster}/{target}" for cluster, target in remaining)
            say(f"aksfw: after {wait_s:g} s tags remain on {names}")
            poisoned = depths.get(f"{UPDATES_QUEUE}-poison")
            if poisoned:
                say(
                    f"aksfw: {poisoned} message(s) on {UPDATES_QUEUE}-poison: see "
                    "`aksfw status` for the last error, then `aksfw replay`"
                )
            return EXIT_FAILED
        if not depths.get(UPDATES_QUEUE) and now - sent >= bounds.uninstall_resend_s:
            with each_call():
                client.uninstall(False)
            sent = now
        time.sleep(min(bounds.uninstall_poll_s, max(started + wait_s - now, 0.0)))


COMMAND = Command(
    "uninstall",
    "remove every tag aksfw registered, on every target (POST /api/uninstall); "
    "resyncs are held back meanwhile (--cancel ends that)",
    _arguments,
    _run,
)
