"""`aksfw clusters`: the inventory the configuration (`AKSFW_CONFIG`) resolves to, read
from Azure as the app reads it; `resolve-event --inventory` reads it back."""

from __future__ import annotations

import argparse
import os

from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.identity import azure_credential
from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.console import print_json
from aksfw_core.config import load_settings


def configured_discovery() -> ClusterDiscovery:
    """The app's cluster discovery, from the configuration in the environment.

    Raises:
        InputError: no configuration, or a wrong one.
    """
    settings = load_settings(os.environ)
    return ClusterDiscovery(settings, azure_credential(os.environ))


def _arguments(parser: CommandParser) -> None:
    pass


def _run(args: argparse.Namespace) -> int:
    print_json(configured_discovery().inventory().as_json())
    return 0


COMMAND = Command(
    "clusters",
    "print the inventory the configuration (AKSFW_CONFIG) resolves to",
    _arguments,
    _run,
    reads_only=True,
)
