"""The watcher's one outside write: a `Aksfw.Kubernetes.ServicesChanged` CloudEvent
(`events.watcher_event`) sent to an Event Grid custom topic with azure-eventgrid's
`EventGridPublisherClient`.

Entra ID only: the credential is a `TokenCredential` (AKS workload identity in a cluster),
asked for Event Grid's scope by the SDK; a topic access key or SAS is refused. Every send
is bounded: connection and read timeouts, no redirects (the bearer token goes only to the
configured topic), a small azure-core retry for 429, 5xx and dropped connections, and a
total retry budget. Failures are classified by the one rule (`transport.azure_errors`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import AzureKeyCredential, AzureSasCredential, TokenCredential

# The public `azure.eventgrid.EventGridPublisherClient` hands a basic (custom) topic to this
# client but drops the azure-core options on the way (timeouts, retry, redirects), so the
# sends would be unbounded: aksfw builds it directly. It has been there since the namespace
# release; requirements.txt asks for a version that has it (any test importing this module
# fails if an upgrade moves it).
from azure.eventgrid._legacy import EventGridPublisherClient

from aksfw_core.azure.events import WATCHER_CHANGE, watcher_event
from aksfw_core.errors import InputError
from aksfw_core.limits import Limits
from aksfw_core.rules.resource_ids import managed_cluster_id
from aksfw_core.transport import azure_errors

EVENTGRID_SCOPE = "https://eventgrid.azure.net/.default"
"""The token scope azure-eventgrid asks the credential for (Entra ID data plane)."""
TOPIC_PATH = "/api/events"
"""Where an Event Grid custom topic takes events (added to an endpoint given without it)."""

RETRY_TOTAL = 2
"""Retries after the first attempt, for 429, 5xx and connection failures (3 attempts)."""
RETRY_BACKOFF_S = 0.5
"""azure-core's backoff factor (0.5 s, 1 s, ...) when the answer has no `Retry-After`."""
RETRY_BACKOFF_MAX_S = 10.0
"""Longest wait between two attempts, `Retry-After` included."""
RETRY_BUDGET_S = 60.0
"""Total time the retries may take; none starts after it."""

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ChangePublisher:
    """Tells the Functions app, through Event Grid, that a cluster's Services changed."""

    def __init__(
        self,
        endpoint: str,
        cluster_id: str,
        credential: TokenCredential,
        limits: Limits,
        *,
        ca_file: str | None = None,
        retry_backoff_s: float = RETRY_BACKOFF_S,
    ) -> None:
        """`endpoint` is the topic's endpoint (`https://<topic>.<region>-1.eventgrid.azure.net`,
        with or without `/api/events`); `ca_file` a CA bundle to trust instead of the
        system's (local fakes).

        Raises:
            InputError: the endpoint is not https (http only on loopback), the cluster ID is
                not a managed cluster's, or the credential is a key rather than Entra ID.
        """
        self._endpoint, secure = topic_endpoint(endpoint)
        managed_cluster_id(cluster_id)
        if isinstance(credential, AzureKeyCredential | AzureSasCredential) or not hasattr(
            credential, "get_token"
        ):
            raise InputError("Event Grid: only an Entra ID token credential, never a topic key")
        self._cluster_id = cluster_id
        options: dict[str, Any] = {
            "connection_timeout": limits.azure_connect_timeout_s,
            "read_timeout": limits.azure_read_timeout_s,
            "permit_redirects": False,
            "retry_total": RETRY_TOTAL,
            "retry_backoff_factor": retry_backoff_s,
            "retry_backoff_max": RETRY_BACKOFF_MAX_S,
            "timeout": RETRY_BUDGET_S,
        }
        if ca_file is not None:
            options["connection_verify"] = ca_file
        # The client `azure.eventgrid.EventGridPublisherClient` hands custom topics to: unlike
        # that wrapper it takes azure-core's transport, retry and redirect options (the
        # wrapper drops them, and options given per send are logged as event attributes).
        self._client = EventGridPublisherClient(self._endpoint, credential, **options)
        # Bearer tokens go over TLS only; plain http is a loopback fake (topic_endpoint).
        self._send_options: dict[str, Any] = {} if secure else {"enforce_https": False}

    @property
    def endpoint(self) -> str:
        """The URL events are posted to."""
        return self._endpoint

    def publish(self) -> None:
        """Send one change notice for the cluster (a fresh event ID each time).

        Raises:
            AuthError: Event Grid refused the token (401/403).
            Retryable: throttled, a server fault or no connection, after the retries.
            NonRetryable: any other refusal (e.g. 400, a malformed event).
        """
        document = watcher_event(self._cluster_id, str(uuid.uuid4()), datetime.now(UTC))
        with azure_errors(f"publish {WATCHER_CHANGE}", "Event Grid"):
            self._client.send([document], **self._send_options)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def __enter__(self) -> ChangePublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def topic_endpoint(endpoint: str) -> tuple[str, bool]:
    """The URL to post events to, and whether it is https.

    Raises:
        InputError: not an absolute https URL (http only for 127.0.0.1 or localhost), or it
            carries credentials, a query or a fragment.
    """
    try:
        parts = urlsplit(endpoint.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InputError(f"Event Grid endpoint {endpoint!r} is not a URL") from None
    if not host or parts.scheme not in ("https", "http"):
        raise InputError(f"Event Grid endpoint {endpoint!r}: expected https://<topic host>")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise InputError("Event Grid endpoint: https required (http only for a local fake)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError("Event Grid endpoint: no credentials, query or fragment in the URL")
    path = parts.path.rstrip("/") or TOPIC_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), parts.scheme == "https"
