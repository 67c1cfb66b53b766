"""The options several commands share, and what they are turned into: the cluster and
its selectors (`tags`, `sync`), a Panorama and how to write to it (`registered`, `sync`),
a Function App and its key (`status`, `replay`, `uninstall`), and `--timeout`, the
bound on a whole command that talks to one of them.

An option that is also a field of the configuration is checked by the configuration's
own check (`PANORAMA_OPTIONS`), so both refuse the same values with the same message
and take the same defaults (those of `PanoramaSettings`).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, NamedTuple

from aksfw_core import config, limits
from aksfw_core.cli.app_api import KEY_VARIABLE, AppClient
from aksfw_core.cli.command import CommandParser
from aksfw_core.cli.console import warn
from aksfw_core.config import PanoramaSettings
from aksfw_core.errors import AksfwError, InputError, Retryable
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.retry import current_deadline, overall_deadline
from aksfw_core.rules.selectors import NamedSelector, named_selector
from aksfw_core.rules.services import ServiceList
from aksfw_core.rules.tag_options import TagOptions, annotation_namespaces
from aksfw_core.rules.tags import ClusterTags, compute_tags
from aksfw_core.secret import Secret


class SharedOption(NamedTuple):
    """An option that is a field of the configuration's `panorama` too."""

    option: str
    """The option, `--batch-size`."""
    field: str
    """The `PanoramaSettings` field it sets, also the option's `dest`."""
    check: Callable[[object, str], Any]
    """The configuration's check of the field (`aksfw_core.config`)."""


PANORAMA_OPTIONS = (
    SharedOption("--target", "target", config.firewall_serial),
    SharedOption("--vsys", "vsys", config.vsys_name),
    SharedOption("--ca-bundle", "ca_certificates", config.ca_bundle),
    SharedOption("--certificate-sha256", "certificate_sha256", config.certificate_sha256),
    SharedOption("--batch-size", "batch_size", config.batch_size),
    SharedOption("--tag-timeout", "tag_timeout_s", config.tag_timeout_s),
)
"""Options checked as the configuration checks `panorama.targets.serials[]`, `vsys`,
`caCertificates` (from the file `--ca-bundle` names), `certificateSha256`, `batchSize` and
`tagTimeoutSeconds` (`--panorama` too, as `host`)."""


def cluster_arguments(parser: CommandParser) -> None:
    """`--cluster`, `--selector`, `--namespace-tags` and `--annotation-tags-in`: whose tags,
    the selectors' tags, and the opt-in tags (`namespaceTags`, `annotationTags`)."""
    parser.add_argument("--cluster", required=True, help="cluster name (or alias) used in tags")
    parser.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="NAME=EXPR[@NAMESPACE]",
        help="label selector giving aks_NAME.<cluster>.<service> tags, e.g. "
        "web=app=web@shop; repeatable. NAME is up to the first '=': tier=frontend is the "
        "selector tier testing that a label frontend exists",
    )
    parser.add_argument(
        "--namespace-tags",
        action="store_true",
        help="also tag each Service's IPs aks.<cluster>.ns.<namespace> (namespaceTags)",
    )
    parser.add_argument(
        "--annotation-tags-in",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="let Services of this namespace ('*': of every namespace) add "
        "aks.<cluster>.tag.<value> tags by their aksfw.io/tags annotation (annotationTags); "
        "repeatable. Without it the annotation adds nothing",
    )


def panorama_arguments(parser: CommandParser) -> None:
    """Which Panorama, which target on it, and how to trust it."""
    parser.add_argument(
        "--panorama",
        required=True,
        metavar="URL",
        help="https://host[:port] (http:// for a local simulator)",
    )
    parser.add_argument("--target", metavar="SERIAL", help="act on this managed firewall")
    parser.add_argument("--vsys", help="virtual system on the target, e.g. vsys1")
    parser.add_argument(
        "--ca-bundle",
        dest="ca_certificates",
        metavar="FILE",
        help="PEM file of the CAs to trust (or of Panorama's own certificate)",
    )
    parser.add_argument(
        "--certificate-sha256",
        metavar="HEX",
        help="accept only the certificate with this SHA-256 fingerprint, whatever its name "
        "(Panorama's self-signed one)",
    )
    parser.add_argument(
        "--no-verify-tls", action="store_true", help="do not check the certificate (unsafe)"
    )


def write_arguments(parser: CommandParser) -> None:
    """How a command that registers tags writes them (default: `PanoramaSettings`')."""
    parser.add_argument("--batch-size", type=int, help="IP entries per request")
    parser.add_argument(
        "--tag-timeout",
        type=int,
        dest="tag_timeout_s",
        metavar="SECONDS",
        help="registered tags expire after this long unless synced again (default 0: never)",
    )


def app_arguments(parser: CommandParser) -> None:
    """Which Function App, its key, how to trust it, and whether to print its JSON."""
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


def wanted_tags(args: argparse.Namespace, services: ServiceList) -> ClusterTags:
    """The tags `--cluster`, `--selector`, `--namespace-tags` and `--annotation-tags-in`
    call for, the warnings printed on stderr.

    Raises:
        InputError: a cluster name, a selector or a namespace that is wrong.
    """
    selectors = [selector(text) for text in args.selector]
    wanted = compute_tags(args.cluster, services.services, selectors, tag_options(args))
    warn((*services.warnings, *wanted.warnings))
    return wanted


def tag_options(args: argparse.Namespace) -> TagOptions:
    """The opt-in tags `--namespace-tags` and `--annotation-tags-in` ask for.

    Raises:
        InputError: a namespace that is not a namespace name or `*`.
    """
    try:
        namespaces = annotation_namespaces(args.annotation_tags_in)
    except InputError as error:
        raise InputError(f"--annotation-tags-in: {error}") from None
    return TagOptions(args.namespace_tags, namespaces)


def selector(text: str) -> NamedSelector:
    """One `--selector NAME=EXPR[@NAMESPACE]`.

    Raises:
        InputError: not of that form, a bad name or namespace, or an expression
            Kubernetes refuses. A valid selector is never refused: `tier=frontend` (the
            selector `tier` testing that a label `frontend` exists) is one; if it selects
            nothing while Services carry the label `tier=frontend`, `compute_tags` warns.
    """
    name, equals, rest = text.partition("=")
    if not equals:
        raise InputError(f"--selector {text!r}: expected NAME=EXPR[@NAMESPACE]")
    expression, at, namespace = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if at and not namespace:
        raise InputError(f"--selector {text!r}: empty namespace after '@'")
    return named_selector(name, expression, namespace or None)


def panorama_settings(args: argparse.Namespace) -> PanoramaSettings:
    """The Panorama settings the options give, checked by the configuration's checks; an
    option not given (a command that only reads has no write options) keeps the default.

    Raises:
        InputError: naming the first option that is wrong.
    """
    url = config.panorama_host(args.panorama, "--panorama")
    given = {
        shared.field: shared.check(value, shared.option)
        for shared in PANORAMA_OPTIONS
        if (value := getattr(args, shared.field, None)) is not None
    }
    settings = replace(PanoramaSettings(url, verify_tls=not args.no_verify_tls), **given)
    config.check_trust(settings)
    return settings


def panorama_client(settings: PanoramaSettings) -> PanoramaClient:
    """A client of that Panorama with the key of the environment: `PANORAMA_API_KEY`, or
    one generated with `PANORAMA_USER` and `PANORAMA_PASSWORD`.

    Raises:
        InputError: none of them is set, or the key is not one.
        AuthError, Retryable, NonRetryable: generating a key failed.
    """
    if key := os.environ.get("PANORAMA_API_KEY"):
        return PanoramaClient(settings, api_key(key))
    user, password = os.environ.get("PANORAMA_USER"), os.environ.get("PANORAMA_PASSWORD")
    if user and password:
        return PanoramaClient(settings, PanoramaClient.keygen(settings, user, password))
    raise InputError("set PANORAMA_API_KEY, or PANORAMA_USER and PANORAMA_PASSWORD")


def app_client(args: argparse.Namespace) -> AppClient:
    """A client of `--app` with `--key` (or `AKSFW_FUNCTION_KEY`) and `--ca-bundle`.

    Raises:
        InputError: the address, the key or the CA bundle is wrong.
    """
    bundle = None if args.ca_bundle is None else config.pem_file(args.ca_bundle, "--ca-bundle")
    text = args.key if args.key is not None else os.environ.get(KEY_VARIABLE)
    key = Secret(text, "function key") if text else None
    return AppClient(args.app, key, bundle, limits.COMMAND_LINE)


class TimedOut(Retryable):
    """A command's `--timeout` passed before what it waited for answered."""


def timeout_argument(parser: CommandParser) -> None:
    """`--timeout`: the bound on the whole command, retries and their waits included."""
    bounds = limits.COMMAND_LINE
    parser.add_argument(
        "--timeout",
        type=_timeout_seconds,
        metavar="SECONDS",
        help=f"give up after this long in all, retries included (default "
        f"{bounds.command_timeout_s:g}, at most {bounds.command_max_timeout_s:g})",
    )


def _timeout_seconds(text: str) -> float:
    most = limits.COMMAND_LINE.command_max_timeout_s
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= most:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {most:g}, not {text!r}")
    return seconds


def timeout_s(args: argparse.Namespace) -> float:
    """The command's `--timeout`, or the default (`CommandLineLimits.command_timeout_s`)."""
    given: float | None = getattr(args, "timeout", None)
    return limits.COMMAND_LINE.command_timeout_s if given is None else given


@contextmanager
def within_timeout(args: argparse.Namespace) -> Iterator[None]:
    """Bound every request and retry of the block by `--timeout` in all
    (`retry.overall_deadline`)."""
    with overall_deadline(timeout_s(args)):
        yield


@contextmanager
def waiting_for(what: str) -> Iterator[None]:
    """Turn a failure of the block that came of the `--timeout` passing into one sentence
    naming `what` ("Panorama at https://...") and how long it waited.

    Raises:
        TimedOut: the block failed once the overall deadline had passed (or a retry loop
            stopped because its next wait would have passed it).
    """
    try:
        yield
    except InputError:
        raise
    except AksfwError:
        bound = current_deadline()
        if bound is None or not bound.reached():
            raise
        raise TimedOut(f"{what} did not answer within {bound.seconds:g} s (--timeout)") from None


def panorama_address(settings: PanoramaSettings) -> str:
    """`Panorama at URL`, for the `--timeout` sentence."""
    return f"Panorama at {settings.url}"


def app_address(client: AppClient) -> str:
    """`the Function App at URL`, for the `--timeout` sentence."""
    return f"the Function App at {client.url}"
