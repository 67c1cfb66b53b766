"""Resource Manager calls for AKS, with azure-core errors mapped onto aksfw's by the one
classification (`transport.azure_errors`): throttling and server faults are `Retryable`,
refused credentials `AuthError`, a missing resource `NotFound`.

One rule for every Resource Manager request (a list's `nextLink`, a redirect, a raw GET):
it goes only to the origin of the configured endpoint (`AKSFW_ARM_ENDPOINT`), so the
bearer token goes nowhere else. `container_service` puts `SameOriginPolicy` in every
client's pipeline, before the token is added.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient

from aksfw_core.errors import AuthError, NonRetryable, http_error, retry_after_seconds
from aksfw_core.limits import Limits
from aksfw_core.rules.resource_ids import managed_cluster_id
from aksfw_core.transport import azure_errors, read_capped

T = TypeVar("T")


class NotFound(NonRetryable):
    """Resource Manager (or Key Vault) says the resource does not exist."""


_DEFAULT_PORTS = {"https": 443, "http": 80}


def origin(url: str) -> tuple[str, str, int] | None:
    """`(scheme, host, port)` of an absolute URL, the port made explicit; None for a URL
    that has no host, carries user info, or whose port is not a number. Pure."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or "@" in parts.netloc or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def same_origin(url: str, endpoint: str) -> bool:
    """Whether `url` leads to the origin of `endpoint` (scheme, host and port). Pure."""
    target = origin(url)
    return target is not None and target == origin(endpoint)


def follow_link(link: object, endpoint: str, what: str) -> str | None:
    """A `nextLink` to follow (None: the list ended), only if it leads back to `endpoint`.

    Raises:
        NonRetryable: it leads anywhere else, or is no URL (asking again gets the same
            answer, so it is not retried).
    """
    if link is None or link == "":
        return None
    if (
        not isinstance(link, str)
        or not same_origin(link, endpoint)
        or "{" in link  # the pipeline would read it as a URL template
    ):
        raise NonRetryable(f"{what}: nextLink leads away from {endpoint}")
    return link


class SameOriginPolicy(SansIOHTTPPolicy[Any, Any]):
    """Refuses, before the bearer token is added, any request to another origin than the
    configured Resource Manager (a `nextLink` or redirect that leads away)."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self._endpoint = endpoint.rstrip("/")

    def on_request(self, request: PipelineRequest[Any]) -> None:
        url = str(request.http_request.url)
        if not same_origin(url, self._endpoint):
            # The URL came from an answer: only its origin is named.
            where = origin(url)
            away = f"{where[0]}://{where[1]}:{where[2]}" if where else "an unusable URL"
            raise NonRetryable(
                f"Resource Manager sent a request to {away}, away from {self._endpoint}:"
                " refused (the bearer token goes only to the configured endpoint)"
            )


def container_service(
    credential: TokenCredential, subscription: str, arm_endpoint: str, limits: Limits
) -> ContainerServiceClient:
    """A client for one subscription at `arm_endpoint` (public or sovereign cloud).

    azure-core retries 429 (honouring Retry-After) and 5xx a few times itself. Every
    request, each retry and redirect included, passes `SameOriginPolicy` first.
    """
    return ContainerServiceClient(
        credential,
        subscription,
        base_url=arm_endpoint,
        credential_scopes=[f"{arm_endpoint.rstrip('/')}/.default"],
        retry_total=3,
        retry_backoff_max=30,
        connection_timeout=limits.azure_connect_timeout_s,
        read_timeout=limits.azure_read_timeout_s,
        per_retry_policies=[SameOriginPolicy(arm_endpoint)],
    )


def call(what: str, function: Callable[[], T], service: str = "Resource Manager") -> T:
    """Run one Azure SDK call, its errors classified.

    Raises:
        NotFound: HTTP 404.
        AuthError, Retryable, NonRetryable: as `transport.http_error` classifies the rest.
    """
    with azure_errors(what, service):
        try:
            return function()
        except ResourceNotFoundError:
            raise NotFound(f"{what}: not found", status=404) from None
    raise AssertionError("unreachable")


@contextmanager
def managed_cluster(
    credential: TokenCredential, cluster_id: str, arm_endpoint: str, limits: Limits
) -> Iterator[tuple[ContainerServiceClient, dict[str, Any]]]:
    """A client for a managed cluster's subscription, and the cluster read afresh (its
    `as_dict()`: REST names under `properties`), for reads that follow what it names.

    Raises:
        AuthError, NotFound, Retryable, NonRetryable: the cluster could not be read (`call`).
    """
    resource = managed_cluster_id(cluster_id)
    group, name = resource.resource_group or "", resource.path[1]
    with container_service(credential, resource.subscription, arm_endpoint, limits) as client:
        raw = call(f"get {cluster_id}", lambda: client.managed_clusters.get(group, name).as_dict())
        yield client, raw


def get_json(
    client: ContainerServiceClient, url: str, what: str, limit: int, needs: str
) -> dict[str, Any]:
    """One raw GET of a resource (`url`, built by the caller from parsed parts) through the
    client's pipeline: the app's credential, azure-core's retries of 429/5xx, its timeouts,
    `SameOriginPolicy`. The answer is capped at `limit` bytes and must be a JSON object;
    so aksfw reads the Microsoft.Network resources it needs with no network SDK.

    Raises:
        AuthError: refused; a 403 says the identity needs `needs`.
        NotFound, Retryable, NonRetryable: as `transport.http_error` classifies the answer,
            or it is not a JSON object.
    """
    try:
        with azure_errors(what, "Resource Manager"):
            response = client.send_request(HttpRequest("GET", url), stream=True)
            try:
                status = response.status_code
                if status >= 400:
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                    if status == 404:
                        raise NotFound(f"{what}: not found", status=404)
                    raise http_error(status, f"{what}: Resource Manager", retry_after)
                body = read_capped(response.iter_bytes(), limit, what)
            finally:
                response.close()
    except AuthError as error:
        if error.status != 403:
            raise
        raise AuthError(
            f"{what}: Resource Manager refused it (HTTP 403): the app's identity needs {needs}",
            status=403,
        ) from None
    try:
        document = json.loads(body)
    except ValueError:
        raise NonRetryable(f"{what}: Resource Manager answered no JSON") from None
    if not isinstance(document, dict):
        raise NonRetryable(f"{what}: Resource Manager answered no JSON object")
    return document
