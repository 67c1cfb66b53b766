"""`aksfw keygen`: generate the XML API key of an administrator (PAN-OS `type=keygen`),
trusting Panorama's certificate as the app will (`--ca-bundle`, `--certificate-sha256`),
so the first step of a deployment proves the trust settings too.

The password is read from `PANORAMA_PASSWORD`, or asked for without echo; it goes only in
the request's body, to the configured host. The key is printed on stdout, alone.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.options import (
    panorama_address,
    panorama_arguments,
    panorama_settings,
    timeout_argument,
    waiting_for,
    within_timeout,
)
from aksfw_core.errors import InputError
from aksfw_core.panorama.client import PanoramaClient

PASSWORD_VARIABLE = "PANORAMA_PASSWORD"  # noqa: S105 (a variable's name)


def _arguments(parser: CommandParser) -> None:
    parser.add_argument("--user", required=True, help="the administrator, e.g. aksfw-api")
    panorama_arguments(parser)
    timeout_argument(parser)


def _password(user: str) -> str:
    if password := os.environ.get(PASSWORD_VARIABLE):
        return password
    if not sys.stdin.isatty():
        raise InputError(f"set {PASSWORD_VARIABLE}, or run keygen in a terminal to be asked")
    password = getpass.getpass(f"password of {user} (not echoed): ")
    if not password:
        raise InputError("no password given")
    return password


def _run(args: argparse.Namespace) -> int:
    settings = panorama_settings(args)
    if args.target is not None or args.vsys is not None:
        raise InputError("keygen asks Panorama itself: --target and --vsys mean nothing here")
    password = _password(args.user)
    with within_timeout(args), waiting_for(panorama_address(settings)):
        key = PanoramaClient.keygen(settings, args.user, password)
    print(key.reveal())
    return 0


COMMAND = Command(
    "keygen",
    "generate an administrator's API key (the password from PANORAMA_PASSWORD or asked)",
    _arguments,
    _run,
    reads_only=True,
)
