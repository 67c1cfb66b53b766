"""Resource Manager calls for AKS, with azure-core errors mapped onto aksfw's by the one
classification (`transport.azure_errors`): throttling and server faults are `Retryable`,
refused credentials `AuthError`, a missing resource `NotFound`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient

from aksfw_core.errors import NonRetryable
from aksfw_core.limits import Limits
from aksfw_core.transport import azure_errors

T = TypeVar("T")


class NotFound(NonRetryable):
    """Resource Manager (or Key Vault) says the resource does not exist."""


def container_service(
    credential: TokenCredential, subscription: str, arm_endpoint: str, limits: Limits
) -> ContainerServiceClient:
    """A client for one subscription at `arm_endpoint` (public or sovereign cloud).

    azure-core retries 429 (honouring Retry-After) and 5xx a few times itself.
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
