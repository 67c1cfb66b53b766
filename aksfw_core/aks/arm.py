"""Resource Manager calls for AKS, with azure-core errors mapped onto aksfw's:
throttling and server faults are `Retryable`, refused credentials `AuthError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.containerservice import ContainerServiceClient

from aksfw_core.errors import AuthError, NonRetryable, Retryable

T = TypeVar("T")


class NotFound(NonRetryable):
    """Resource Manager says the resource does not exist."""


def container_service(
    credential: TokenCredential, subscription: str, arm_endpoint: str
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
        connection_timeout=10,
        read_timeout=60,
    )


@contextmanager
def azure_errors(what: str) -> Iterator[None]:
    """Translate azure-core exceptions raised inside the block.

    Raises:
        NotFound: HTTP 404.
        AuthError: 401/403 or a credential that could not get a token.
        Retryable: 429, 5xx, connection failures.
        NonRetryable: any other HTTP error.
    """
    try:
        yield
    except ClientAuthenticationError as error:
        raise AuthError(f"{what}: Azure refused the credential ({_status(error)})") from None
    except ResourceNotFoundError:
        raise NotFound(f"{what}: not found") from None
    except HttpResponseError as error:
        status = error.status_code or 0
        if status == 403:
            raise AuthError(f"{what}: forbidden (HTTP 403); check the role assignments") from None
        if status == 429 or status >= 500:
            raise Retryable(f"{what}: HTTP {status} from Resource Manager") from None
        raise NonRetryable(f"{what}: HTTP {status} from Resource Manager") from None
    except (ServiceRequestError, ServiceResponseError) as error:
        raise Retryable(f"{what}: Resource Manager unreachable ({type(error).__name__})") from None


def call(what: str, function: Callable[[], T]) -> T:
    """Run one Resource Manager call under `azure_errors`."""
    with azure_errors(what):
        return function()
    raise AssertionError("unreachable")


def _status(error: HttpResponseError) -> str:
    return f"HTTP {error.status_code}" if error.status_code else "no token"
