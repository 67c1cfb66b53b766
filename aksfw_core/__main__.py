"""The command line: `python -m aksfw_core COMMAND` (installed as `aksfw`).

JSON on stdout, warnings on stderr; bad input exits non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.events import read_event, resolve
from aksfw_core.azure.identity import azure_credential
from aksfw_core.azure.inventory import inventory_from_json
from aksfw_core.azure.publisher import ChangePublisher
from aksfw_core.config import PanoramaSettings, load_settings, readable_file
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.jsondoc import load_json
from aksfw_core.kube import KubernetesServices
from aksfw_core.limits import Limits
from aksfw_core.logs import TerminalFormatter
from aksfw_core.operator import KEY_VARIABLE, AppClient
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import MAX_TAG_TIMEOUT_S, PanoramaClient, api_key
from aksfw_core.pipeline.storage import RESYNC_QUEUE, UPDATES_QUEUE
from aksfw_core.rules.model import TagWarning, ip_tags_json
from aksfw_core.rules.plan import owned_only
from aksfw_core.rules.resource_ids import managed_cluster_id
from aksfw_core.rules.selectors import NamedSelector, mistaken_label, named_selector
from aksfw_core.rules.services import ServiceList, parse_service_items, parse_service_list
from aksfw_core.rules.tags import ClusterTags, check_cluster_name, compute_tags, ownership
from aksfw_core.secret import Secret
from aksfw_core.tables import remaining_targets, replay_table, status_table, uninstall_table
from aksfw_core.watch import ServiceWatcher, kube_api_client

EXIT_FAILED = 1
"""The work could not be done (Panorama or the cluster refused or failed)."""
EXIT_BAD_INPUT = 2
"""The command line or an input file is wrong."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C."""
WATCH_CLUSTER_VARIABLE = "AKSFW_WATCH_CLUSTER_ID"
"""`aksfw watch --cluster-id` when the option is not given."""
WATCH_TOPIC_VARIABLE = "AKSFW_EVENTGRID_TOPIC_ENDPOINT"
"""`aksfw watch --topic-endpoint` when the option is not given."""
MAX_DEBOUNCE_S = 300.0


DESCRIPTION = """\
aksfw keeps Palo Alto Networks Panorama in step with AKS: it registers the IP addresses of
a cluster's LoadBalancer Services as IP-tags, so Dynamic Address Groups follow the Services.
JSON goes to stdout, warnings and errors to stderr."""

EPILOG = f"""\
environment:
  PANORAMA_API_KEY                  the XML API key (registered, sync)
  PANORAMA_USER, PANORAMA_PASSWORD  generate a key with these instead (keygen)
  AKSFW_CONFIG, AKSFW_CONFIG_FILE   the app's configuration, inline JSON or a file
                                    (clusters, resolve-event)
  {KEY_VARIABLE}                the Function App's function key (status, replay,
                                    uninstall)
  {WATCH_CLUSTER_VARIABLE}            watch --cluster-id when it is not given
  {WATCH_TOPIC_VARIABLE}    watch --topic-endpoint when it is not given
  AZURE_*                           read by azure-identity (DefaultAzureCredential): after
                                    `az login` none is needed; AZURE_CLIENT_ID,
                                    AZURE_TENANT_ID, AZURE_CLIENT_SECRET for a service
                                    principal, AZURE_CLIENT_ID for a managed identity

examples:
  aksfw tags --cluster prod1 --selector web=app=web examples/services.json
  kubectl get services -A -o json | aksfw tags --cluster prod1 -
  aksfw sync --cluster prod1 --kubeconfig ~/.kube/config --context prod1 \\
      --panorama https://panorama.example.com --dry-run

Each command has its own --help. -v shows progress (anywhere on the line), -vv everything."""

LIBRARY_LOGGERS = ("azure", "urllib3", "kubernetes", "msal", "requests", "py.warnings")
"""Loggers of the libraries aksfw uses: quiet (errors only) unless -v."""

WRITE_OPTIONS = frozenset({"--dry-run", "--batch-size", "--tag-timeout", "--allow-mass-removal"})
"""Options about writing: they mean nothing for a command that only reads."""
READ_ONLY_COMMANDS = frozenset({"tags", "registered", "clusters", "resolve-event", "status"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"aksfw: {message} (see `{self.prog} --help`)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parse(_parser(), sys.argv[1:] if argv is None else list(argv))
    verbosity = args.verbose + args.verbose_after
    _configure_logging(verbosity)
    try:
        return int(args.run(args))
    except InputError as error:
        print(f"aksfw: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AksfwError as error:
        print(f"aksfw: {error}", file=sys.stderr)
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
        print(
            f"aksfw: internal error, a bug: {error or 'no message'} (-v shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The command line read, or exit 2 with one line naming what is wrong: an option
    that means nothing for the command, or `--context` without `--kubeconfig`."""
    _complete(parser)
    args, extras = parser.parse_known_args(argv)
    command = args.command
    if extras:
        parser.exit(EXIT_BAD_INPUT, f"aksfw: {_refusal(parser, command, extras)}\n")
    if getattr(args, "context", None) is not None and not getattr(args, "kubeconfig", None):
        parser.exit(
            EXIT_BAD_INPUT,
            f"aksfw: {command}: --context needs --kubeconfig (it names a context in that "
            "file; aksfw reads no kubeconfig unless given one)\n",
        )
    return args


def _complete(parser: argparse.ArgumentParser) -> None:
    """What every command has: its one-line help as its description, the environment and
    the examples in `aksfw --help`, and -v after the command as well as before it."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, command in action.choices.items():
            command.description = command.description or helps.get(name)
            command.add_argument(
                "-v",
                "--verbose",
                action="count",
                default=0,
                dest="verbose_after",
                help="log progress on stderr (-vv: the libraries' lines too)",
            )


def _refusal(parser: argparse.ArgumentParser, command: str, extras: list[str]) -> str:
    """Why the words argparse could not place are refused, naming the first of them."""
    options = [word.partition("=")[0] for word in extras if word.startswith("-")]
    if not options:
        return f"{command} takes no argument {extras[0]!r} (see `aksfw {command} --help`)"
    option = options[0]
    if command in READ_ONLY_COMMANDS and option in WRITE_OPTIONS:
        return f"{option} means nothing for {command}: {command} only reads, it writes nothing"
    owners = sorted(
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, other in action.choices.items()
        if option in other._option_string_actions
    )
    if owners:
        return f"{option} means nothing for {command} (it is an option of {', '.join(owners)})"
    return f"{command} has no option {option} (see `aksfw {command} --help`)"


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
    """The installed package's version; pyproject.toml's in a source tree not installed."""
    try:
        return metadata.version("aksfw")
    except metadata.PackageNotFoundError:
        pass
    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aksfw",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log progress on stderr (-vv: the libraries' lines too)",
    )
    parser.add_argument("--version", action="version", version=f"aksfw {_version()}")
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )

    tags = commands.add_parser("tags", help="print the IP-tags a service list calls for")
    _cluster_arguments(tags)
    tags.add_argument("file", metavar="FILE|-", help="`kubectl get services -A -o json` output")
    tags.set_defaults(run=_run_tags)

    registered = commands.add_parser("registered", help="print what is registered now")
    registered.add_argument("--cluster", help="only the tags this cluster owns")
    _panorama_arguments(registered)
    registered.set_defaults(run=_run_registered)

    sync = commands.add_parser("sync", help="make Panorama hold exactly one cluster's tags")
    _cluster_arguments(sync)
    source = sync.add_mutually_exclusive_group(required=True)
    source.add_argument("--services", metavar="FILE|-", help="a saved service list")
    source.add_argument("--kubeconfig", metavar="PATH", help="list Services from a live cluster")
    sync.add_argument("--context", help="kubeconfig context (default: the current one)")
    _panorama_arguments(sync)
    _write_arguments(sync)
    sync.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sync.add_argument(
        "--allow-mass-removal",
        action="store_true",
        help="apply a plan that removes more than half of the cluster's IP-tag pairs on the "
        "target (at least 10), or all of them; without it such a sync is refused (exit 1)",
    )
    sync.set_defaults(run=_run_sync)

    clusters = commands.add_parser(
        "clusters", help="print the inventory the configuration (AKSFW_CONFIG) resolves to"
    )
    clusters.set_defaults(run=_run_clusters)

    resolve = commands.add_parser("resolve-event", help="print which clusters an event affects")
    resolve.add_argument("file", metavar="FILE|-", help="one Event Grid or CloudEvents event")
    resolve.add_argument(
        "--inventory", metavar="FILE", help="an inventory from `aksfw clusters` (no Azure calls)"
    )
    resolve.set_defaults(run=_run_resolve_event)
    _operator_commands(commands)
    _watch_command(commands)
    return parser


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True, help="cluster name (or alias) used in tags")
    parser.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="NAME=EXPR[@NAMESPACE]",
        help="label selector giving aks_NAME.<cluster>.<service> tags, e.g. "
        "web=app=web@shop; repeatable. A lone existence test is named after its label "
        "(canary=canary): tier=frontend reads as a label and is refused",
    )


def _panorama_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--panorama",
        required=True,
        metavar="URL",
        help="https://host[:port] (http:// for a local simulator)",
    )
    parser.add_argument("--target", metavar="SERIAL", help="act on this managed firewall")
    parser.add_argument("--vsys", help="virtual system on the target, e.g. vsys1")
    parser.add_argument("--ca-bundle", metavar="PEM", help="CA certificates to trust")
    parser.add_argument(
        "--no-verify-tls", action="store_true", help="do not check the certificate (unsafe)"
    )


def _write_arguments(parser: argparse.ArgumentParser) -> None:
    """How a command that registers tags writes them."""
    parser.add_argument("--batch-size", type=int, default=1000, help="IP entries per request")
    parser.add_argument(
        "--tag-timeout",
        type=int,
        default=0,
        metavar="SECONDS",
        help="registered tags expire after this long unless synced again (default 0: never)",
    )


def _run_tags(args: argparse.Namespace) -> int:
    wanted = _wanted_tags(args, parse_service_list(_read_json(args.file)))
    _print_json(ip_tags_json(wanted.tags))
    return 0


def _run_registered(args: argparse.Namespace) -> int:
    with _panorama(args) as panorama:
        registered = panorama.registered()
    if args.cluster:
        registered = owned_only(registered, ownership(check_cluster_name(args.cluster)))
    _print_json(ip_tags_json(registered))
    return 0


def _run_sync(args: argparse.Namespace) -> int:
    if args.services:
        services = parse_service_list(_read_json(args.services))
    else:
        source = KubernetesServices.from_kubeconfig(args.kubeconfig, args.context)
        try:
            services = parse_service_items(source.list_items())
        finally:
            source.close()
    wanted = _wanted_tags(args, services)
    hold = None if args.allow_mass_removal else Limits()
    with _panorama(args) as panorama:
        report = sync_cluster(wanted, panorama, dry_run=args.dry_run, hold_mass_removal=hold)
    _print_json(report.as_json())
    if report.held_back is not None:
        why = (
            f"would remove {report.held_back.removing} of the {report.held_back.registered} "
            f"IP-tag pairs of cluster {report.cluster} on {report.target}: a wrong kubectl "
            "context, or an empty list from a misconfigured cluster? Pass --allow-mass-removal "
            "if that is meant"
        )
        if args.dry_run:
            print(f"aksfw: dry run: this sync would be held back: it {why}", file=sys.stderr)
            return 0
        print(f"aksfw: held back, nothing changed: the sync {why}", file=sys.stderr)
        return EXIT_FAILED
    if report.failures:
        print(f"aksfw: Panorama refused {len(report.failures)} entries", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _run_clusters(args: argparse.Namespace) -> int:
    _print_json(_discovery().inventory().as_json())
    return 0


def _run_resolve_event(args: argparse.Namespace) -> int:
    event = read_event(_read_json(args.file))
    if args.inventory:
        resolution = resolve(event, inventory_from_json(_read_json(args.inventory)))
    else:
        discovery = _discovery()
        resolution = resolve(event, discovery.inventory())
        if resolution.unknown_cluster:
            resolution = resolve(event, discovery.inventory_knowing(resolution.unknown_cluster))
    _print_json(resolution.as_json())
    return 0


def _discovery() -> ClusterDiscovery:
    settings = load_settings(os.environ)
    return ClusterDiscovery(settings, azure_credential(os.environ))


def _wanted_tags(args: argparse.Namespace, services: ServiceList) -> ClusterTags:
    selectors = [_selector(text) for text in args.selector]
    wanted = compute_tags(args.cluster, services.services, selectors)
    _warn((*services.warnings, *wanted.warnings))
    return wanted


def _selector(text: str) -> NamedSelector:
    name, equals, rest = text.partition("=")
    if not equals:
        raise InputError(f"--selector {text!r}: expected NAME=EXPR[@NAMESPACE]")
    expression, at, namespace = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if at and not namespace:
        raise InputError(f"--selector {text!r}: empty namespace after '@'")
    selector = named_selector(name, expression, namespace or None)
    if meant := mistaken_label(name, selector):
        raise InputError(
            f"--selector {text!r} reads as a label, not a selector: --selector takes "
            f"NAME=EXPR[@NAMESPACE]: did you mean --selector {meant}? (a selector that "
            f"tests whether a label exists is named after it: {selector.selector.text}="
            f"{selector.selector.text})"
        )
    return selector


def _panorama(args: argparse.Namespace) -> PanoramaClient:
    if args.ca_bundle is not None:
        readable_file(args.ca_bundle, "--ca-bundle")
    # Commands that only read have no write options (`_write_arguments`).
    batch_size, tag_timeout = getattr(args, "batch_size", 1000), getattr(args, "tag_timeout", 0)
    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if not 0 <= tag_timeout <= MAX_TAG_TIMEOUT_S:
        raise InputError(f"--tag-timeout must be 0 to {MAX_TAG_TIMEOUT_S} seconds")
    settings = PanoramaSettings(
        url=args.panorama,
        target=args.target,
        vsys=args.vsys,
        ca_bundle=args.ca_bundle,
        verify_tls=not args.no_verify_tls,
        batch_size=batch_size,
        tag_timeout_s=tag_timeout,
    )
    if key := os.environ.get("PANORAMA_API_KEY"):
        return PanoramaClient(settings, api_key(key))
    user, password = os.environ.get("PANORAMA_USER"), os.environ.get("PANORAMA_PASSWORD")
    if user and password:
        return PanoramaClient(settings, PanoramaClient.keygen(settings, user, password))
    raise InputError("set PANORAMA_API_KEY, or PANORAMA_USER and PANORAMA_PASSWORD")


def _read_json(path: str) -> Any:
    name = "standard input" if path == "-" else path
    data: str | bytes
    try:
        if path == "-":
            data = sys.stdin.read()
        else:
            with open(path, "rb") as file:
                data = file.read()
    except OSError as error:
        raise InputError(f"cannot read {name}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text") from None
    return load_json(data, name)


def _warn(warnings: Sequence[TagWarning]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _print_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


# ---------------------------------------------------------------------- operator verbs


def _operator_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`status` and `replay`: calls on a running app's HTTP API (`aksfw_core.operator`)."""
    status = commands.add_parser(
        "status", help="show a running app's clusters, targets and queues (GET /api/status)"
    )
    _app_arguments(status)
    status.set_defaults(run=_run_status)

    replay = commands.add_parser(
        "replay",
        help="move poisoned messages back to their queue once the cause is fixed "
        "(POST /api/replay); those that would fail again are reported and kept",
    )
    _app_arguments(replay)
    replay.add_argument(
        "--queue",
        choices=(RESYNC_QUEUE, UPDATES_QUEUE),
        help="replay only this queue's poisoned messages (default: both)",
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed, move nothing"
    )
    replay.add_argument(
        "--max",
        type=int,
        metavar="N",
        help="read at most N poisoned messages (default and ceiling: limits.replayMaxMessages)",
    )
    replay.set_defaults(run=_run_replay)
    _uninstall_command(commands)


def _app_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        required=True,
        metavar="URL",
        help="the Function App, https://<name>.azurewebsites.net (http:// only to localhost)",
    )
    parser.add_argument(
        "--key", help=f"a function key (better: the environment variable {KEY_VARIABLE})"
    )
    parser.add_argument("--ca-bundle", metavar="PEM", help="CA certificates to trust")
    parser.add_argument("--json", action="store_true", help="print the app's JSON answer")


def _run_status(args: argparse.Namespace) -> int:
    with _app_client(args) as client:
        document = client.status()
    _print_answer(args, document, status_table)
    return 0


def _run_replay(args: argparse.Namespace) -> int:
    if args.max is not None and args.max < 1:
        raise InputError("--max must be at least 1")
    with _app_client(args) as client:
        document = client.replay(args.queue, args.dry_run, args.max)
    _print_answer(args, document, replay_table)
    return 0


def _app_client(args: argparse.Namespace) -> AppClient:
    if args.ca_bundle is not None:
        readable_file(args.ca_bundle, "--ca-bundle")
    text = args.key if args.key is not None else os.environ.get(KEY_VARIABLE)
    return AppClient(args.app, Secret(text, "function key") if text else None, args.ca_bundle)


def _print_answer(
    args: argparse.Namespace, document: object, table: Callable[[object], str]
) -> None:
    if args.json:
        _print_json(document)
    else:
        sys.stdout.write(table(document))


# ---------------------------------------------------------------------- the watcher


def _watch_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    watch = commands.add_parser(
        "watch",
        help="watch a cluster's Services; tell the app through Event Grid when tags may change",
    )
    watch.add_argument(
        "--cluster-id",
        metavar="ID",
        help=f"the managed cluster's resource ID (default: ${WATCH_CLUSTER_VARIABLE})",
    )
    watch.add_argument(
        "--topic-endpoint",
        metavar="URL",
        help=f"the Event Grid custom topic, https://... (default: ${WATCH_TOPIC_VARIABLE})",
    )
    watch.add_argument(
        "--topic-ca-bundle", metavar="PEM", help="CA certificates to trust for the topic"
    )
    watch.add_argument(
        "--kubeconfig", metavar="PATH", help="watch this cluster (default: the pod's own)"
    )
    watch.add_argument("--context", help="kubeconfig context (default: the current one)")
    watch.add_argument(
        "--debounce-seconds",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="at most one event per this many seconds; a burst of changes is one event",
    )
    watch.set_defaults(run=_run_watch)


def _run_watch(args: argparse.Namespace) -> int:
    cluster_id = args.cluster_id or os.environ.get(WATCH_CLUSTER_VARIABLE)
    endpoint = args.topic_endpoint or os.environ.get(WATCH_TOPIC_VARIABLE)
    if not cluster_id:
        raise InputError(f"--cluster-id (or {WATCH_CLUSTER_VARIABLE}) is required")
    if not endpoint:
        raise InputError(f"--topic-endpoint (or {WATCH_TOPIC_VARIABLE}) is required")
    managed_cluster_id(cluster_id)
    if not 0 <= args.debounce_seconds <= MAX_DEBOUNCE_S:
        raise InputError(f"--debounce-seconds must be 0 to {MAX_DEBOUNCE_S:g}")
    if args.topic_ca_bundle is not None:
        readable_file(args.topic_ca_bundle, "--topic-ca-bundle")
    limits = Limits()
    api_client = kube_api_client(args.kubeconfig, args.context)
    publisher = ChangePublisher(
        endpoint,
        cluster_id,
        azure_credential(os.environ),
        limits,
        ca_file=args.topic_ca_bundle,
    )
    watcher = ServiceWatcher(
        api_client, publisher.publish, limits=limits, debounce_s=args.debounce_seconds
    )
    # A pod is stopped with SIGTERM: end the watch cleanly instead of dying mid-publish.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    try:
        watcher.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        publisher.close()
    _print_json({"published": watcher.published, "resourceVersion": watcher.resource_version})
    return 0


# ---------------------------------------------------------------------- uninstall

UNINSTALL_POLL_S = 5.0
"""Seconds between two reads of `GET /api/status` while `aksfw uninstall --wait` waits."""
UNINSTALL_RESEND_S = 30.0
"""Seconds after which a wait that still sees tags, and no snapshot left in the updates
queue, asks for the uninstall again (a snapshot that raced the first call)."""
MAX_UNINSTALL_WAIT_S = 3600.0


def _uninstall_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    uninstall = commands.add_parser(
        "uninstall",
        help="remove every tag aksfw registered, on every target (POST /api/uninstall); "
        "resyncs are held back meanwhile",
    )
    _app_arguments(uninstall)
    uninstall.add_argument(
        "--dry-run", action="store_true", help="show what would be removed, remove nothing"
    )
    uninstall.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="then wait up to SECONDS until no cluster holds a target (GET /api/status); "
        "exit 1 with what remains if some still do",
    )
    uninstall.set_defaults(run=_run_uninstall)


def _run_uninstall(args: argparse.Namespace) -> int:
    if args.wait is not None:
        if args.dry_run:
            raise InputError("--wait means nothing with --dry-run (nothing is removed)")
        if not 0 < args.wait <= MAX_UNINSTALL_WAIT_S:
            raise InputError(f"--wait must be more than 0 and at most {MAX_UNINSTALL_WAIT_S:g}")
    with _app_client(args) as client:
        document = client.uninstall(args.dry_run)
        _print_answer(args, document, uninstall_table)
        if args.wait is None:
            return 0
        return _wait_uninstalled(client, args.wait)


def _wait_uninstalled(client: AppClient, wait_s: float) -> int:
    """Poll the status until no cluster holds a target; 1 with what remains at the end."""
    started = time.monotonic()
    sent = started
    while True:
        status = client.status()
        remaining = remaining_targets(status)
        now = time.monotonic()
        if not remaining:
            done = f"uninstalled in {now - started:.0f} s: no cluster holds a target"
            print(f"aksfw: {done}", file=sys.stderr)
            return 0
        queues = status.get("queues") if isinstance(status, dict) else None
        depths = queues if isinstance(queues, dict) else {}
        if now >= started + wait_s:
            names = ", ".join(f"{cluster}/{target}" for cluster, target in remaining)
            print(f"aksfw: after {wait_s:g} s tags remain on {names}", file=sys.stderr)
            poisoned = depths.get(f"{UPDATES_QUEUE}-poison")
            if poisoned:
                print(
                    f"aksfw: {poisoned} message(s) on {UPDATES_QUEUE}-poison: see "
                    "`aksfw status` for the last error, then `aksfw replay`",
                    file=sys.stderr,
                )
            return EXIT_FAILED
        if not depths.get(UPDATES_QUEUE) and now - sent >= UNINSTALL_RESEND_S:
            client.uninstall(False)
            sent = now
        time.sleep(min(UNINSTALL_POLL_S, max(started + wait_s - now, 0.0)))


if __name__ == "__main__":
    sys.exit(main())
