"""`aksfw tags`: the IP-tags a saved service list calls for, as `{"<ip>": ["tag", ...]}`."""

from __future__ import annotations

import argparse

from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.console import print_json, read_json
from aksfw_core.cli.options import cluster_arguments, wanted_tags
from aksfw_core.rules.model import ip_tags_json
from aksfw_core.rules.services import parse_service_list


def _arguments(parser: CommandParser) -> None:
    cluster_arguments(parser)
    parser.add_argument("file", metavar="FILE|-", help="`kubectl get services -A -o json` output")


def _run(args: argparse.Namespace) -> int:
    wanted = wanted_tags(args, parse_service_list(read_json(args.file)))
    print_json(ip_tags_json(wanted.tags))
    return 0


COMMAND = Command(
    "tags", "print the IP-tags a service list calls for", _arguments, _run, reads_only=True
)
