"""What the command line says when a server refuses aksfw's credential (HTTP 401/403,
PAN-OS code 403): one line per system and cause that names the fix. The cause is told by
the error's type, its status and which request was refused, never by the server's text.

Panorama answers a wrong key and a role without the permission alike (code 403), so the
line for its first request names both; a refused keygen is the user and password, and a
write refused after an answered read (`WriteRefused`) is the role. Kubernetes says 401 for
a credential it does not accept and 403 for one that may not do the request. The Function
App says 401 for a missing or wrong function key; a 403 comes before any key is checked
(the app's access restrictions, or a stopped app).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aksfw_core.cli.options import panorama_client
from aksfw_core.config import PanoramaSettings
from aksfw_core.errors import AuthError
from aksfw_core.panorama.audit import WriteRefused
from aksfw_core.panorama.client import PanoramaClient

KEY_STEP = "README, First deployment, step 1"
"""Where the Panorama administrator, its role and its API key are made."""
PERMISSIONS_PAGE = "docs/permissions.md"
"""Where the Kubernetes RBAC aksfw needs is written."""


def open_panorama(settings: PanoramaSettings) -> PanoramaClient:
    """`options.panorama_client`, with a refused keygen said as what it is.

    Raises:
        AuthError: Panorama refused `PANORAMA_USER` and `PANORAMA_PASSWORD`.
        InputError, Retryable, NonRetryable: as `options.panorama_client`.
    """
    try:
        return panorama_client(settings)
    except AuthError as error:
        raise AuthError(
            f"Panorama at {settings.url} refused PANORAMA_USER and PANORAMA_PASSWORD "
            f"({_answer(error)}): check the administrator's name and password ({KEY_STEP}), "
            "or set PANORAMA_API_KEY",
            status=error.status,
        ) from None


@contextmanager
def panorama_refusals(settings: PanoramaSettings) -> Iterator[None]:
    """Turn a refusal the block meets at Panorama into the line of its cause.

    Raises:
        AuthError: with that line, for any `AuthError` the block raised.
    """
    try:
        yield
    except WriteRefused as error:
        raise AuthError(
            f"Panorama at {settings.url} answered the read but refused to register "
            f"({_answer(error)}): the API key's administrator role lacks XML API > User-ID "
            f"Agent ({KEY_STEP})",
            status=error.status,
        ) from None
    except AuthError as error:
        raise AuthError(_key_refused(settings, error), status=error.status) from None


def _key_refused(settings: PanoramaSettings, error: AuthError) -> str:
    where = f"Panorama at {settings.url}"
    if not os.environ.get("PANORAMA_API_KEY"):  # the key came from keygen: it is good
        return (
            f"{where} refused a request with the key it generated for PANORAMA_USER "
            f"({_answer(error)}): that administrator's role lacks XML API > Operational "
            f"Requests ({KEY_STEP})"
        )
    if error.status == 401:
        return (
            f"{where} refused PANORAMA_API_KEY ({_answer(error)}): the key is wrong or has "
            f"expired: generate a new one ({KEY_STEP})"
        )
    return (
        f"{where} refused PANORAMA_API_KEY ({_answer(error)}): the key is wrong or has "
        "expired, or its administrator's role lacks XML API > Operational Requests (PAN-OS "
        f"answers both alike): generate a new key, or check the role ({KEY_STEP})"
    )


def kubernetes_refusal(error: AuthError, server: str, source: str) -> AuthError:
    """The line for the API server at `server` refusing the credential of `source`
    (`--kubeconfig PATH [--context C]`) on a Service list."""
    if error.status == 403:
        return AuthError(
            f"Kubernetes at {server} accepted the credential of {source} but it may not list "
            f"Services (HTTP 403): grant it list on services in every namespace (the "
            f"ClusterRole of {PERMISSIONS_PAGE}), or choose another --context",
            status=403,
        )
    return AuthError(
        f"Kubernetes at {server} refused the credential of {source} ({_answer(error)}): it "
        "is wrong or has expired: fetch it again (`az aks get-credentials --resource-group "
        "RG --name CLUSTER --overwrite-existing`), or choose another --context",
        status=error.status,
    )


def _answer(error: AuthError) -> str:
    """How the refusal came: `HTTP 401`, `HTTP 403`, or PAN-OS's code in an HTTP 200."""
    return f"HTTP {error.status}" if error.status in (401, 403) else "PAN-OS code 403"
