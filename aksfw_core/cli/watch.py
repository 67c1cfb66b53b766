"""`aksfw watch`: watch a cluster's Services (in the cluster, or through a kubeconfig)
and tell the app through an Event Grid topic when tags may change, until stopped."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from aksfw_core import limits
from aksfw_core.azure.identity import azure_credential
from aksfw_core.azure.publisher import ChangePublisher
from aksfw_core.cli.command import Command, CommandParser
from aksfw_core.cli.console import print_json
from aksfw_core.config import pem_file
from aksfw_core.errors import InputError
from aksfw_core.kube import kube_api_client
from aksfw_core.limits import Limits
from aksfw_core.rules.resource_ids import managed_cluster_id
from aksfw_core.watcher import ServiceWatcher

WATCH_CLUSTER_VARIABLE = "AKSFW_WATCH_CLUSTER_ID"
"""`aksfw watch --cluster-id` when the option is not given."""
WATCH_TOPIC_VARIABLE = "AKSFW_EVENTGRID_TOPIC_ENDPOINT"
"""`aksfw watch --topic-endpoint` when the option is not given."""


def _arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--cluster-id",
        metavar="ID",
        help=f"the managed cluster's resource ID (default: ${WATCH_CLUSTER_VARIABLE})",
    )
    parser.add_argument(
        "--topic-endpoint",
        metavar="URL",
        help=f"the Event Grid custom topic, https://... (default: ${WATCH_TOPIC_VARIABLE})",
    )
    parser.add_argument(
        "--topic-ca-bundle", metavar="PEM", help="CA certificates to trust for the topic"
    )
    parser.add_argument(
        "--kubeconfig", metavar="PATH", help="watch this cluster (default: the pod's own)"
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument(
        "--debounce-seconds",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="at most one event per this many seconds; a burst of changes is one event",
    )


def _run(args: argparse.Namespace) -> int:
    cluster_id = args.cluster_id or os.environ.get(WATCH_CLUSTER_VARIABLE)
    endpoint = args.topic_endpoint or os.environ.get(WATCH_TOPIC_VARIABLE)
    if not cluster_id:
        raise InputError(f"--cluster-id (or {WATCH_CLUSTER_VARIABLE}) is required")
    if not endpoint:
        raise InputError(f"--topic-endpoint (or {WATCH_TOPIC_VARIABLE}) is required")
    managed_cluster_id(cluster_id)
    most = limits.COMMAND_LINE.watch_max_debounce_s
    if not 0 <= args.debounce_seconds <= most:
        raise InputError(f"--debounce-seconds must be 0 to {most:g}")
    topic_ca = args.topic_ca_bundle
    if topic_ca is not None:
        topic_ca = pem_file(topic_ca, "--topic-ca-bundle")
    app_limits = Limits()
    api_client = kube_api_client(args.kubeconfig, args.context)
    publisher = ChangePublisher(
        endpoint, cluster_id, azure_credential(os.environ), app_limits, ca_file=topic_ca
    )
    watcher = ServiceWatcher(
        api_client, publisher.publish, limits=app_limits, debounce_s=args.debounce_seconds
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
    print_json({"published": watcher.published, "resourceVersion": watcher.resource_version})
    return 0


COMMAND = Command(
    "watch",
    "watch a cluster's Services; tell the app through Event Grid when tags may change",
    _arguments,
    _run,
)
