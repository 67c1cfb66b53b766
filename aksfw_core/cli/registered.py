"""`aksfw registered`: what a Panorama (or a firewall through it) has registered now, all
of it or only the tags one cluster owns, as `{"<ip>": ["tag", ...]}`."""

from __future__ import annotations

import argparse

from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.console import print_json
from aksfw_core.cli.options import (
    panorama_address,
    panorama_arguments,
    panorama_settings,
    timeout_argument,
    waiting_for,
    within_timeout,
)
from aksfw_core.cli.refusals import open_panorama, panorama_refusals
from aksfw_core.rules.model import ip_tags_json
from aksfw_core.rules.plan import owned_only
from aksfw_core.rules.tags import check_cluster_name, ownership


def _arguments(parser: CommandParser) -> None:
    parser.add_argument("--cluster", help="only the tags this cluster owns")
    panorama_arguments(parser)
    timeout_argument(parser)


def _run(args: argparse.Namespace) -> int:
    settings = panorama_settings(args)
    with (
        within_timeout(args),
        waiting_for(panorama_address(settings)),
        open_panorama(settings) as panorama,
        panorama_refusals(settings),
    ):
        registered = panorama.registered()
    if args.cluster:
        registered = owned_only(registered, ownership(check_cluster_name(args.cluster)))
    print_json(ip_tags_json(registered))
    return 0


COMMAND = Command("registered", "print what is registered now", _arguments, _run, reads_only=True)
