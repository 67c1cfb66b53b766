"""The program: the parser of every command (`COMMANDS`), the refusal of an option that
means nothing for the command given, the logging set-up, and `main`, which runs one
command and turns what it raised into an exit code and one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from aksfw_core import __version__
from aksfw_core.cli import (
    clusters,
    config_check,
    keygen,
    registered,
    replay,
    resolve_event,
    status,
    sync,
    tags,
    uninstall,
    watch,
)
from aksfw_core.cli.app_api import KEY_VARIABLE
from aksfw_core.cli.command import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    Command,
    CommandGroup,
    CommandParser,
)
from aksfw_core.cli.console import say
from aksfw_core.cli.watch import WATCH_CLUSTER_VARIABLE, WATCH_TOPIC_VARIABLE
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.logs import TerminalFormatter

COMMANDS: tuple[Command | CommandGroup, ...] = (
    tags.COMMAND,
    registered.COMMAND,
    sync.COMMAND,
    config_check.GROUP,
    clusters.COMMAND,
    resolve_event.COMMAND,
    status.COMMAND,
    replay.COMMAND,
    uninstall.COMMAND,
    watch.COMMAND,
    keygen.COMMAND,
)
"""Every command, in the order `aksfw --help` lists them."""

DESCRIPTION = """\
aksfw keeps Palo Alto Networks Panorama in step with AKS: it registers the IP addresses of
a cluster's LoadBalancer Services as IP-tags, so Dynamic Address Groups follow the Services.
JSON goes to stdout, warnings and errors to stderr."""

EPILOG = f"""\
environment:
  PANORAMA_API_KEY                  the XML API key (registered, sync)
  PANORAMA_USER, PANORAMA_PASSWORD  generate a key with these instead (keygen)
  AKSFW_CONFIG, AKSFW_CONFIG_FILE   the app's configuration, inline JSON or a file
                                    (config check, clusters, resolve-event)
  {KEY_VARIABLE}                the Function App's function key (status, replay,
                                    uninstall)
  {WATCH_CLUSTER_VARIABLE}            watch --cluster-id when it is not given
  {WATCH_TOPIC_VARIABLE}    watch --topic-endpoint when it is not given
  AZURE_*                           read by azure-identity (DefaultAzureCredential): after
                                    `az login` none is needed; AZURE_CLIENT_ID,
                                    AZURE_TENANT_ID, AZURE_CLIENT_SECRET for a service
                                    principal, AZURE_CLIENT_ID for a managed identity

examples:
  aksfw config check aksfw.json
  aksfw tags --cluster prod1 --selector web=app=web examples/services.json
  kubectl get services -A -o json | aksfw tags --cluster prod1 -
  aksfw sync --cluster prod1 --kubeconfig ~/.kube/config --context prod1 \\
      --panorama https://panorama.example.com --dry-run

Each command has its own --help. -v shows progress (anywhere on the line), -vv everything."""

LIBRARY_LOGGERS = ("azure", "urllib3", "kubernetes", "msal", "requests", "py.warnings")
"""Loggers of the libraries aksfw uses: quiet (errors only) unless -v."""

WRITE_OPTIONS = frozenset({"--dry-run", "--batch-size", "--tag-timeout", "--allow-mass-removal"})
"""Options about writing: they mean nothing for a command that only reads."""

_VERBOSE_HELP = "log progress on stderr (-vv: the libraries' lines too)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (`docs/cli.md`): 0 done, 1 failed,
    2 bad input, 130 interrupted. Raises nothing but `SystemExit` (argparse's refusals,
    `--help`, `--version`), and with -v an unexpected exception, to show its traceback."""
    args = parse(sys.argv[1:] if argv is None else list(argv))
    verbosity = args.verbose + args.verbose_after
    _configure_logging(verbosity)
    try:
        return int(args.run(args))
    except InputError as error:
        say(f"aksfw: {error}")
        return EXIT_BAD_INPUT
    except AksfwError as error:
        say(f"aksfw: {error}")
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        if verbosity:
            raise
        say(f"aksfw: internal error, a bug: {error or 'no message'} (-v shows the traceback)")
        return EXIT_FAILED


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line read, its command's `run` in `run`.

    Raises:
        SystemExit: 2 with one line naming what is wrong: what argparse refuses, an
            option that means nothing for the command, or `--context` without
            `--kubeconfig`; 0 after `--help` or `--version`.
    """
    parser, commands = _parser()
    args, extras = parser.parse_known_args(argv)
    command = " ".join(filter(None, (args.command, getattr(args, "subcommand", None))))
    if extras:
        parser.exit(EXIT_BAD_INPUT, f"aksfw: {_refusal(commands, command, extras)}\n")
    if getattr(args, "context", None) is not None and not getattr(args, "kubeconfig", None):
        parser.exit(
            EXIT_BAD_INPUT,
            f"aksfw: {command}: --context needs --kubeconfig (it names a context in that "
            "file; aksfw reads no kubeconfig unless given one)\n",
        )
    return args


def _parser() -> tuple[CommandParser, dict[str, tuple[Command, CommandParser]]]:
    """`aksfw`'s parser, and each command with its own parser, by name (`config check` for
    one in a group). Every command has its one-line help as its description, and -v after
    the command as well as before."""
    parser = CommandParser(
        prog="aksfw",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"aksfw {_version()}")
    parser.set_defaults(verbose_after=0)  # each command's -v counts only when given
    subparsers = parser.add_subparsers(
        dest="command", required=True, parser_class=CommandParser, metavar="COMMAND"
    )
    commands: dict[str, tuple[Command, CommandParser]] = {}
    for command in COMMANDS:
        if isinstance(command, CommandGroup):
            group = subparsers.add_parser(command.name, help=command.help, description=command.help)
            _add_verbose(group)
            words = group.add_subparsers(
                dest="subcommand", required=True, parser_class=CommandParser, metavar="COMMAND"
            )
            for member in command.commands:
                commands[f"{command.name} {member.name}"] = (member, _add_command(words, member))
        else:
            commands[command.name] = (command, _add_command(subparsers, command))
    return parser, commands


def _add_command(
    subparsers: argparse._SubParsersAction[CommandParser], command: Command
) -> CommandParser:
    """The parser of `command`, added to `subparsers`."""
    own = subparsers.add_parser(command.name, help=command.help, description=command.help)
    command.arguments(own)
    _add_verbose(own)
    own.set_defaults(run=command.run)
    return own


def _add_verbose(parser: CommandParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        dest="verbose_after",
        help=_VERBOSE_HELP,
    )


def _refusal(
    commands: Mapping[str, tuple[Command, CommandParser]], name: str, extras: list[str]
) -> str:
    """Why the words argparse could not place are refused, naming the first of them."""
    options = [word.partition("=")[0] for word in extras if word.startswith("-")]
    if not options:
        return f"{name} takes no argument {extras[0]!r} (see `aksfw {name} --help`)"
    option = options[0]
    if commands[name][0].reads_only and option in WRITE_OPTIONS:
        return f"{option} means nothing for {name}: {name} only reads, it writes nothing"
    owners = sorted(other for other, (_, own) in commands.items() if option in own.options)
    if owners:
        return f"{option} means nothing for {name} (it is an option of {', '.join(owners)})"
    return f"{name} has no option {option} (see `aksfw {name} --help`)"


def _configure_logging(verbosity: int) -> None:
    """aksfw's warnings (retries) as sentences on stderr; its progress with -v; the
    libraries' own lines (urllib3, azure-identity, azure-core, kubernetes) only with -v
    (warnings) or -vv (everything)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalFormatter())
    level = (logging.WARNING, logging.INFO)[verbosity] if verbosity < 2 else logging.DEBUG
    logging.basicConfig(level=level, handlers=[handler])
    logging.captureWarnings(True)  # urllib3's InsecureRequestWarning and the like
    library_level = (logging.ERROR, logging.WARNING)[verbosity] if verbosity < 2 else 0
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(library_level)


def _version() -> str:
    """The release: `aksfw_core.__version__`, the one place it lives (docs/release.md)."""
    return __version__
