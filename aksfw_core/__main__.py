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
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.events import read_event, resolve
from aksfw_core.azure.identity import azure_credential
from aksfw_core.azure.inventory import inventory_from_json
from aksfw_core.azure.publisher import ChangePublisher
from aksfw_core.azure.resource_ids import managed_cluster_id
from aksfw_core.config import PanoramaSettings, load_settings, readable_file
from aksfw_core.errors import AksfwError, InputError
from aksfw_core.jsondoc import load_json
from aksfw_core.kube import KubernetesServices
from aksfw_core.limits import Limits
from aksfw_core.operator import KEY_VARIABLE, AppClient, FunctionKey
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import MAX_TAG_TIMEOUT_S, ApiKey, PanoramaClient
from aksfw_core.pipeline.storage import RESYNC_QUEUE, UPDATES_QUEUE
from aksfw_core.rules.model import TagWarning, ip_tags_json
from aksfw_core.rules.plan import owned_only
from aksfw_core.rules.selectors import NamedSelector, named_selector
from aksfw_core.rules.services import ServiceList, parse_service_items, parse_service_list
from aksfw_core.rules.tags import ClusterTags, check_cluster_name, compute_tags, ownership
from aksfw_core.tables import replay_table, status_table
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"aksfw: {message} (see --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s %(message)s",
    )
    try:
        return int(args.run(args))
    except InputError as error:
        print(f"aksfw: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AksfwError as error:
        print(f"aksfw: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        if args.verbose:
            raise
        print(
            f"aksfw: internal error: {type(error).__name__}: {error} (-v shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aksfw", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress on stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    sync.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
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
        help="label selector giving aks_NAME.<cluster>.<service> tags; repeatable",
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
    with _panorama(args) as panorama:
        report = sync_cluster(wanted, panorama, dry_run=args.dry_run)
    _print_json(report.as_json())
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
    return named_selector(name, expression, namespace or None)


def _panorama(args: argparse.Namespace) -> PanoramaClient:
    if args.ca_bundle is not None:
        readable_file(args.ca_bundle, "--ca-bundle")
    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if not 0 <= args.tag_timeout <= MAX_TAG_TIMEOUT_S:
        raise InputError(f"--tag-timeout must be 0 to {MAX_TAG_TIMEOUT_S} seconds")
    settings = PanoramaSettings(
        url=args.panorama,
        target=args.target,
        vsys=args.vsys,
        ca_bundle=args.ca_bundle,
        verify_tls=not args.no_verify_tls,
        batch_size=args.batch_size,
        tag_timeout_s=args.tag_timeout,
    )
    if key := os.environ.get("PANORAMA_API_KEY"):
        return PanoramaClient(settings, ApiKey(key))
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
    return AppClient(args.app, FunctionKey(text) if text else None, args.ca_bundle)


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


if __name__ == "__main__":
    sys.exit(main())
