"""`aksfw sync`: make a Panorama (or a firewall through it) hold exactly one cluster's
tags, from a saved service list or a live cluster; a sync that would remove most of them
is held back unless `--allow-mass-removal`. Prints the sync's report."""

from __future__ import annotations

import argparse

from aksfw_core.cli.command import EXIT_FAILED, Command, CommandParser
from aksfw_core.cli.console import print_json, read_json, say
from aksfw_core.cli.options import (
    cluster_arguments,
    panorama_address,
    panorama_arguments,
    panorama_settings,
    timeout_argument,
    waiting_for,
    wanted_tags,
    within_timeout,
    write_arguments,
)
from aksfw_core.cli.refusals import kubernetes_refusal, open_panorama, panorama_refusals
from aksfw_core.errors import AuthError
from aksfw_core.kube import KubernetesServices
from aksfw_core.limits import Limits
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.retry import current_deadline
from aksfw_core.rules.services import ServiceList, parse_service_items, parse_service_list


def _arguments(parser: CommandParser) -> None:
    cluster_arguments(parser)
    source = parser.add_one_of(required=True)
    source.add_argument("--services", metavar="FILE|-", help="a saved service list")
    source.add_argument("--kubeconfig", metavar="PATH", help="list Services from a live cluster")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    panorama_arguments(parser)
    write_arguments(parser)
    timeout_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--allow-mass-removal",
        action="store_true",
        help="apply a plan that removes more than half of the cluster's IP-tag pairs on the "
        "target (at least 10), or all of them; without it such a sync is refused (exit 1)",
    )


def _run(args: argparse.Namespace) -> int:
    settings = panorama_settings(args)  # the options checked before the cluster is read
    hold = None if args.allow_mass_removal else Limits()
    with within_timeout(args):  # one bound on the cluster's list and Panorama's calls
        wanted = wanted_tags(args, _services(args))
        with (
            waiting_for(panorama_address(settings)),
            open_panorama(settings) as panorama,
            panorama_refusals(settings),
        ):
            report = sync_cluster(wanted, panorama, dry_run=args.dry_run, hold_mass_removal=hold)
    print_json(report.as_json())
    if report.held_back is not None:
        why = (
            f"would remove {report.held_back.removing} of the {report.held_back.registered} "
            f"IP-tag pairs of cluster {report.cluster} on {report.target}: a wrong kubectl "
            "context, or an empty list from a misconfigured cluster? Pass --allow-mass-removal "
            "if that is meant"
        )
        if args.dry_run:
            say(f"aksfw: dry run: this sync would be held back: it {why}")
            return 0
        say(f"aksfw: held back, nothing changed: the sync {why}")
        return EXIT_FAILED
    if report.failures:
        say(f"aksfw: Panorama refused {len(report.failures)} entries")
        return EXIT_FAILED
    return 0


def _services(args: argparse.Namespace) -> ServiceList:
    """The service list of `--services`, or of the live cluster `--kubeconfig` reaches."""
    if args.services:
        return parse_service_list(read_json(args.services))
    source = KubernetesServices.from_kubeconfig(args.kubeconfig, args.context)
    context = f" --context {args.context}" if args.context else ""
    given = f"--kubeconfig {args.kubeconfig}{context}"
    bound = current_deadline()
    try:
        with waiting_for(f"Kubernetes ({given})"):
            items = source.list_items(bound.left() if bound is not None else None)
        return parse_service_items(items)
    except AuthError as error:
        raise kubernetes_refusal(error, source.server, given) from None
    finally:
        source.close()


COMMAND = Command("sync", "make Panorama hold exactly one cluster's tags", _arguments, _run)
