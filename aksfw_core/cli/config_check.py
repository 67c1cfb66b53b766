"""`aksfw config check [FILE|-]`: a configuration document checked offline (no Azure, no
Panorama) by the very checks the Functions app makes at start-up (`Engine.from_environ`):
the document (`config.settings_from`, with `AKSFW_ARM_ENDPOINT` and
`PANORAMA_CA_CERTIFICATES` from the environment), what the app requires beyond it
(`config.require_app_settings`), and `PANORAMA_API_KEY` by the app's own check when it is
set. A refusal is the one line the app would log; a valid document prints what it will
do (`config_summary`).

`PANORAMA_API_KEY` is not required: the check runs before `azd up`, on a machine that
holds no key, while the app reads it from its settings (a Key Vault reference).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from aksfw_core.cli.command import Command, CommandGroup, CommandParser
from aksfw_core.cli.config_summary import ConfigSummary
from aksfw_core.cli.console import print_json, read_json, say
from aksfw_core.config import (
    CA_CERTIFICATES_SETTING,
    Settings,
    load_settings,
    require_app_settings,
    settings_from,
)
from aksfw_core.panorama.client import api_key

API_KEY_VARIABLE = "PANORAMA_API_KEY"


def check(path: str | None, environ: Mapping[str, str]) -> ConfigSummary:
    """The configuration in the file `path` (`-`: standard input; None: `AKSFW_CONFIG` or
    `AKSFW_CONFIG_FILE`, read as the app reads them), checked as the app checks it at
    start-up, the API key only when set.

    Raises:
        InputError: the line the app would log, naming the field or setting at fault.
    """
    settings, source = _read(path, environ)
    panorama = require_app_settings(settings)
    key = environ.get(API_KEY_VARIABLE)
    if key:
        api_key(key)  # the app's check; the value is never shown
    return ConfigSummary(
        source=source,
        settings=settings,
        panorama=panorama,
        api_key_set=bool(key),
        ca_setting=bool(environ.get(CA_CERTIFICATES_SETTING)),
    )


def _read(path: str | None, environ: Mapping[str, str]) -> tuple[Settings, str]:
    if path is None:
        settings = load_settings(environ)  # its errors are the app's, word for word
        if environ.get("AKSFW_CONFIG_FILE"):
            return settings, f"AKSFW_CONFIG_FILE {environ['AKSFW_CONFIG_FILE']}"
        return settings, "AKSFW_CONFIG"
    source = "standard input" if path == "-" else path
    return settings_from(read_json(path), environ), source


def _arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE|-",
        help="the configuration document (JSON), `-` for standard input; without it, "
        "AKSFW_CONFIG or AKSFW_CONFIG_FILE, as the app reads them",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _run(args: argparse.Namespace) -> int:
    summary = check(args.file, os.environ)
    for warning in summary.warnings():
        say(f"warning: {warning}")
    if args.json:
        print_json(summary.as_json())
    else:
        sys.stdout.write(summary.text())
    return 0


COMMAND = Command(
    "check",
    "check a configuration document offline, as the app does at start-up, and show the "
    "tags each cluster will produce",
    _arguments,
    _run,
    reads_only=True,
)

GROUP = CommandGroup(
    "config", "the app's configuration: `config check [FILE]` checks a document offline", (COMMAND,)
)
"""`aksfw config ...`."""
