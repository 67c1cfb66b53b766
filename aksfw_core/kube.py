"""The Kubernetes wing: the one place that builds a `kubernetes` API client (kubeconfig or
in-cluster service account, bounded connections), bounds its requests in time and
classifies its failures, and the paged Service list built on them. `aksfw watch`
(`aksfw_core.watcher`) opens its watch requests with the same client, bounds and errors.

The list is read in pages (`limit`/`continue`) and is all or nothing: a failure on any
page raises, so a partial list can never look like Services that went away. Every page
is bounded in time (a total deadline) and bytes, and the list in pages: a server that
keeps handing out pages, or the same `continue` token twice, is stopped with an error.

The whole list is bounded too, in memory and time: as each page arrives its Services are
reduced to what tags read (`rules.services.tag_fields`) and the page is dropped before
the next is asked for, what is kept is capped (`kube_max_services`, `kube_max_list_bytes`),
and one deadline (`kube_list_deadline_s`) covers every page and retry, each request cut
to the time that is left.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aksfw_core.errors import (
    InputError,
    NonRetryable,
    Retryable,
    http_error,
    retry_after_seconds,
)
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings, retrying
from aksfw_core.rules.services import tag_fields
from aksfw_core.transport import (
    DeadlineExceeded,
    ResponseTooLarge,
    connection_failure,
    deadline,
    read_capped,
    watch_pools,
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------- the client


def kube_api_client(kubeconfig: str | None, context: str | None = None) -> Any:
    """A `kubernetes` API client: from a kubeconfig (and optionally one of its contexts),
    or the pod's service account (its bearer token and CA) when `kubeconfig` is None.

    Raises:
        InputError: the kubeconfig is missing, lacks `context` or is unusable
            (`check_kubeconfig` says the first two with their fix), `context` is given
            without it, or there is no kubeconfig and this is not a pod.
    """
    if kubeconfig is not None:
        check_kubeconfig(kubeconfig, context)
    elif context is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise InputError(
            "no kubeconfig given, and this is not a pod (KUBERNETES_SERVICE_HOST is unset): "
            f"give --kubeconfig PATH, e.g. --kubeconfig {DEFAULT_KUBECONFIG}"
        )
    try:
        if kubeconfig is not None:
            return k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, persist_config=False
            )
        if context is not None:
            raise InputError("--context needs --kubeconfig")
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s.ApiClient(configuration)
    except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as error:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster config"
        raise InputError(f"{where}: {' '.join(str(error).split())}") from None


DEFAULT_KUBECONFIG = "~/.kube/config"
"""Where kubectl (and `az aks get-credentials`) keep the kubeconfig when KUBECONFIG is unset."""
_CONTEXTS_SHOWN = 10


def check_kubeconfig(kubeconfig: str, context: str | None = None) -> None:
    """The mistakes of a first run with a kubeconfig, each said with its fix before the
    `kubernetes` library reads the file: a path, kubectl's default or KUBECONFIG's value,
    where no file is; a context the files do not hold (the likeliest one named, and the
    others); no context given and none current. `kubeconfig` is one path, or several
    joined with `os.pathsep` as in KUBECONFIG (the missing ones are skipped, as kubectl does).

    Raises:
        InputError: one of those mistakes.
    """
    paths = [os.path.expanduser(part) for part in kubeconfig.split(os.pathsep) if part]
    if not paths:
        raise InputError(
            "kubeconfig: an empty path (an unset KUBECONFIG?): name the file, e.g. "
            f"--kubeconfig {DEFAULT_KUBECONFIG}"
        )
    if not any(os.path.exists(path) for path in paths):
        raise InputError(_no_kubeconfig(kubeconfig, paths))
    if not any(os.path.isfile(path) for path in paths):
        raise InputError(f"kubeconfig {kubeconfig}: a directory, not a kubeconfig file")
    found = _contexts(paths)
    if found is None:
        return  # not readable as a kubeconfig: the library's own reading says why
    names, current = found
    if context is None and not current and names:
        raise InputError(
            f"kubeconfig {kubeconfig} names no current context: choose one with --context "
            f"({_listed(names)})"
        )
    if context is not None and context not in names:
        likely = difflib.get_close_matches(context, names, n=1)
        guess = f"did you mean {likely[0]}? Its" if likely else "its"
        raise InputError(
            f"kubeconfig {kubeconfig} has no context {context!r}: "
            + (f"{guess} contexts: {_listed(names)}" if names else "it holds no context at all")
        )


def _no_kubeconfig(kubeconfig: str, paths: list[str]) -> str:
    """What to do when no file of `kubeconfig` exists, by where the path came from."""
    if kubeconfig == os.environ.get("KUBECONFIG"):
        return (
            f"kubeconfig {kubeconfig}: no such file, and it is what KUBECONFIG says: point "
            f"KUBECONFIG at your kubeconfig, or unset it and use {DEFAULT_KUBECONFIG}"
        )
    if paths == [os.path.expanduser(DEFAULT_KUBECONFIG)]:
        return (
            f"kubeconfig {kubeconfig}: no such file: kubectl has no configuration on this "
            "machine yet: `az aks get-credentials --resource-group RG --name CLUSTER` writes "
            "it, or give --kubeconfig the file you use"
        )
    if len(paths) > 1:
        return f"kubeconfig {kubeconfig}: none of these files exists"
    return f"kubeconfig {kubeconfig}: no such file"


def _contexts(paths: list[str]) -> tuple[list[str], str | None] | None:
    """The context names of the kubeconfig files that exist, and the current one (the first
    file's that sets it, as kubectl merges them); None if one cannot be read as YAML."""
    names: list[str] = []
    current: str | None = None
    for path in paths:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as file:
                document = yaml.safe_load(file)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        if not isinstance(document, dict):
            continue
        if current is None and document.get("current-context"):
            current = str(document["current-context"])
        contexts = document.get("contexts")
        for entry in contexts if isinstance(contexts, list) else ():
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in names:
                names.append(str(entry["name"]))
    return names, current


def _listed(names: list[str]) -> str:
    """Some names, for a line: the first ten, and how many more."""
    shown = ", ".join(names[:_CONTEXTS_SHOWN])
    more = len(names) - _CONTEXTS_SHOWN
    return f"{shown} and {more} more (kubectl config get-contexts)" if more > 0 else shown


def kube_api_client_from_dict(kubeconfig: Mapping[str, Any], where: str) -> Any:
    """A `kubernetes` API client from a kubeconfig document (parsed YAML, e.g. one that
    `listClusterUserCredential` returned); `where` names its origin in the message.

    Raises:
        NonRetryable: the document is not a usable kubeconfig.
    """
    try:
        return k8s_config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            dict(kubeconfig), persist_config=False
        )
    except (ConfigException, ValueError, TypeError, KeyError) as error:
        raise NonRetryable(f"{where}: unusable kubeconfig ({error})") from None


def bound_connections(api_client: Any) -> None:
    """Make the connections `api_client` opens from now on obey aksfw's bounds: one
    connection per attempt (aksfw's own retries decide about trying again, so a refused
    certificate costs one handshake, not urllib3's four) and `transport.deadline`."""
    manager = api_client.rest_client.pool_manager
    manager.connection_pool_kw["retries"] = False
    watch_pools(manager)


def server_of(api_client: Any) -> str:
    """The API server's URL, for messages."""
    return str(getattr(api_client.configuration, "host", "the API server"))


class RequestBounds(NamedTuple):
    """How long one request may take."""

    deadline_s: float
    """Seconds for the whole request, however the server paces its bytes."""
    timeout: tuple[float, float]
    """The client's (connect, read) timeouts in seconds."""


def request_bounds(limits: Limits, stream_s: float = 0.0) -> RequestBounds:
    """The bounds of one request; `stream_s` is how long the server is asked to keep a
    watch open (0 for a plain request), added to its read timeout and deadline."""
    return RequestBounds(
        limits.kube_deadline_s + stream_s,
        (limits.kube_connect_timeout_s, limits.kube_read_timeout_s + stream_s),
    )


# ----------------------------------------------------------------------- failures


class Gone(Retryable):
    """HTTP 410 Gone: a `continue` token or a watch's resourceVersion is too old; the list
    has to start over."""


@contextmanager
def api_errors(server: str, call: str, *, tls_repeats: bool = True) -> Iterator[None]:
    """Translate the `kubernetes` client's failures in the block by the one rule
    (`errors.http_error`, `transport.connection_failure`). `call` says what was being
    done ("listing Services"); `tls_repeats=False` keeps a TLS failure without an answer
    transient (a long-lived stream cut mid-way looks like one).

    Raises:
        Gone: HTTP 410.
        NonRetryable: the server's certificate was refused.
        AuthError, Retryable, NonRetryable: as `http_error` classifies another status, or
            `connection_failure` a request that got no answer.
    """
    try:
        yield
    except ApiException as error:
        # The client turns a TLS failure into a status-0 ApiException raised while
        # handling it: the failure itself is the exception's context.
        if isinstance(error.__context__, urllib3.exceptions.SSLError):
            raise NonRetryable(f"{server}: TLS verification failed") from None
        status = error.status or 0
        message = f"{server}: {call} failed"
        if status == 410:
            raise Gone(f"{message} (HTTP 410 Gone)", status=410) from None
        retry_after = retry_after_seconds((error.headers or {}).get("Retry-After"))
        raise http_error(status, message, retry_after) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise connection_failure(
            error, f"{call} on {server}", "the Kubernetes API server", tls_repeats=tls_repeats
        ) from None


# ----------------------------------------------------------------------- the Service list


class KubernetesList:
    """Reads every object of one kind in all namespaces (the module docstring): a subclass
    asks for a page (`_request`), says what of an object is kept (`_keep`), names the kind."""

    noun = "object"
    plural = "objects"

    def __init__(
        self,
        api_client: Any,
        limits: Limits | None = None,
        retry: RetrySettings | None = None,
    ) -> None:
        bound_connections(api_client)
        self._api_client = api_client
        self._limits = limits or Limits()
        self._retry = retry or RetrySettings()
        self._server = server_of(api_client)
        self.resource_version: str | None = None
        """The resourceVersion of the last complete list: a watch starts from it."""

    @property
    def server(self) -> str:
        """The API server's URL, for messages."""
        return self._server

    @property
    def api_client(self) -> Any:
        """The `kubernetes` API client (bounded): other lists of the cluster share it."""
        return self._api_client

    def close(self) -> None:
        """Release the HTTP connections."""
        self._api_client.close()

    def _request(self, token: str | None, timeout: tuple[float, float]) -> Any:
        """One page's raw answer (`_preload_content=False`), `limits.kube_page_size` long."""
        raise NotImplementedError

    def _keep(self, raw: Any) -> Any:
        """What of one listed object outlives its page."""
        return raw

    def list_items(self, deadline_s: float | None = None) -> list[dict[str, Any]]:
        """Every object, every page read, each reduced by `_keep` (for Services, to what
        tags read, `rules.services.tag_fields`: name, namespace, type, labels, `aksfw.io/`
        annotations, ingress IPs, in the API's own shape, so `parse_service_items` reads
        it as it would the whole object).

        `deadline_s`, the caller's own bound on the whole list (the command line's
        `--timeout`), shortens `limits.kube_list_deadline_s` when it is shorter.

        Raises:
            AuthError: the API server refused the credential (401/403).
            ListDeadlineExceeded: the list took longer than `limits.kube_list_deadline_s`,
                attempts included (a `Retryable`: the queue tries again later).
            Retryable: the server or network failed through every attempt (`Gone`: the
                `continue` token expired every time).
            NonRetryable: any other refusal, a TLS verification failure, a page over
                `limits.kube_max_response_bytes`, more pages than `limits.kube_max_pages`,
                a `continue` token handed out twice, or (`ResponseTooLarge`) more objects
                than `limits.kube_max_services` or more kept bytes than
                `limits.kube_max_list_bytes`.
        """
        seconds = self._limits.kube_list_deadline_s
        if deadline_s is not None:
            seconds = min(seconds, deadline_s)
        ends = time.monotonic() + seconds
        attempts = 0
        try:
            for attempt in retrying(self._retry, f"list {self.plural} on {self._server}"):
                with attempt:
                    attempts += 1
                    return self._list_once(ends)
        except _OutOfTime as out:
            out.error.attempts = attempts
            raise out.error from None
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _list_once(self, ends: float) -> list[dict[str, Any]]:
        limits = self._limits
        items: list[dict[str, Any]] = []
        kept_bytes = 0
        token: str | None = None
        seen: set[str] = set()
        version: str | None = None
        for pages in range(limits.kube_max_pages):
            page = self._timed_page(token, ends, pages)
            if token is None:  # the list's version is the first page's
                version = _resource_version(page)
            page_items = page.get("items") or []
            if not isinstance(page_items, list):
                raise Retryable(f"{self._server}: list response without an items list")
            token = (page.get("metadata") or {}).get("continue") or None
            del page  # only what tags read outlives its page
            if len(items) + len(page_items) > limits.kube_max_services:
                raise ResponseTooLarge(
                    f"{self._server}: the {self.noun} list holds more than "
                    f"{limits.kube_max_services} {self.plural} (limits.kubeMaxServices)"
                )
            for raw in page_items:
                item: Any = self._keep(raw)
                kept_bytes += len(json.dumps(item, separators=(",", ":")))
                if kept_bytes > limits.kube_max_list_bytes:
                    raise ResponseTooLarge(
                        f"{self._server}: the {self.plural} listed take more than "
                        f"{limits.kube_max_list_bytes} bytes, even reduced to what tags "
                        "read (limits.kubeMaxListBytes)"
                    )
                items.append(item)
            del page_items
            if token is None:
                self.resource_version = version
                return items
            if not isinstance(token, str) or token in seen:
                raise NonRetryable(f"{self._server}: the {self.noun} list repeats a continue token")
            seen.add(token)
        raise NonRetryable(
            f"{self._server}: the {self.noun} list goes on past {limits.kube_max_pages} "
            "pages (limits.kubeMaxPages)"
        )

    def _timed_page(self, token: str | None, ends: float, pages: int) -> dict[str, Any]:
        """One page, in the time the whole list has left.

        Raises:
            _OutOfTime: the list's deadline passed before or while the page was read.
        """
        left = ends - time.monotonic()
        if left > 0:
            try:
                return self._page(token, left)
            except Retryable:
                if time.monotonic() < ends:
                    raise
        seconds = self._limits.kube_list_deadline_s
        raise _OutOfTime(
            ListDeadlineExceeded(
                f"{self._server}: the {self.noun} list did not complete within {seconds:g} s "
                f"(limits.kubeListDeadlineSeconds); {pages} pages read"
            )
        )

    def _page(self, token: str | None, left_s: float) -> dict[str, Any]:
        limits = self._limits
        what = f"{self._server}: list {self.plural}"
        bounds = request_bounds(limits)
        timeout = (min(bounds.timeout[0], left_s), min(bounds.timeout[1], left_s))
        try:
            with (
                api_errors(self._server, f"listing {self.plural}"),
                deadline(min(bounds.deadline_s, left_s), what),
            ):
                response: Any = self._request(token, timeout)
                try:
                    data = read_capped(
                        response.stream(64 * 1024), limits.kube_max_response_bytes, what
                    )
                finally:
                    response.release_conn()
            document = json.loads(data)
        except (ValueError, RecursionError):
            raise Retryable(f"{self._server}: list response is not JSON") from None
        if not isinstance(document, dict):
            raise Retryable(f"{self._server}: list response is not an object")
        return document


class KubernetesServices(KubernetesList):
    """Reads every Service of one cluster, in all namespaces."""

    noun = "Service"
    plural = "Services"

    @classmethod
    def from_kubeconfig(
        cls,
        path: str,
        context: str | None = None,
        limits: Limits | None = None,
        retry: RetrySettings | None = None,
    ) -> KubernetesServices:
        """Connect with a kubeconfig file (and optionally one of its contexts).

        Raises:
            InputError: the file is missing, lacks the context, or is not a usable
                kubeconfig (`kube_api_client`).
        """
        return cls(kube_api_client(path, context), limits=limits, retry=retry)

    def _request(self, token: str | None, timeout: tuple[float, float]) -> Any:
        # Raw JSON (no preload): the same parser then serves files and live clusters.
        return k8s.CoreV1Api(self._api_client).list_service_for_all_namespaces(
            limit=self._limits.kube_page_size,
            _continue=token,
            _preload_content=False,
            _request_timeout=timeout,
        )

    def _keep(self, raw: Any) -> Any:
        return tag_fields(raw)


class ListDeadlineExceeded(DeadlineExceeded):
    """A whole Service list took longer than `limits.kube_list_deadline_s`. Transient (the
    queue tries again later), but not retried inside the call: its time is spent."""


class _OutOfTime(Exception):
    """Carries `ListDeadlineExceeded` past the retry policy, which would retry it."""

    def __init__(self, error: ListDeadlineExceeded) -> None:
        super().__init__(str(error))
        self.error = error


def _resource_version(page: dict[str, Any]) -> str | None:
    metadata = page.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) and version else None
