"""The app's own Azure Storage account: how to reach it and what it holds (two queues,
their poison queues, one state container). Built from `AzureWebJobsStorage` (a connection
string, or `UseDevelopmentStorage=true` for Azurite) or the identity-based
`AzureWebJobsStorage__*` settings the Functions host uses in Azure.

The work on it is split by job: `aksfw_core.pipeline.queues` sends and receives messages,
`aksfw_core.pipeline.state_store` keeps what aksfw remembers per (cluster, target).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from aksfw_core.errors import InputError
from aksfw_core.limits import Limits
from aksfw_core.transport import azure_errors

RESYNC_QUEUE = "cluster-resync"
UPDATES_QUEUE = "panorama-updates"
STATE_CONTAINER = "aksfw-state"
POISON_SUFFIX = "-poison"
_AZURITE = "UseDevelopmentStorage=true"


@dataclass(frozen=True)
class StorageNames:
    """Queue and container names (tests give each test its own)."""

    resync_queue: str = RESYNC_QUEUE
    updates_queue: str = UPDATES_QUEUE
    state_container: str = STATE_CONTAINER

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue, poison queues included."""
        base = (self.resync_queue, self.updates_queue)
        return base + tuple(name + POISON_SUFFIX for name in base)


class StorageAccount:
    """The clients of one storage account, and its queues and container made to exist."""

    def __init__(
        self,
        queues: QueueServiceClient,
        blobs: BlobServiceClient,
        names: StorageNames | None = None,
    ) -> None:
        self._queues = queues
        self.names = names or StorageNames()
        self.container: ContainerClient = blobs.get_container_client(self.names.state_container)
        """The state container (applied state, enqueued marks, markers, payloads)."""
        self._ready = False

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        credential: TokenCredential | None = None,
        limits: Limits | None = None,
    ) -> StorageAccount:
        """Connect as the Functions host does.

        Raises:
            InputError: no storage setting is present.
        """
        limits = limits or Limits()
        timeouts: dict[str, Any] = {
            "connection_timeout": limits.azure_connect_timeout_s,
            "read_timeout": limits.azure_read_timeout_s,
        }
        connection = environ.get("AzureWebJobsStorage")
        if connection:
            if connection.strip() == _AZURITE:
                connection = azurite_connection_string()
            return cls(
                QueueServiceClient.from_connection_string(connection, **timeouts),
                BlobServiceClient.from_connection_string(connection, **timeouts),
            )
        account = environ.get("AzureWebJobsStorage__accountName")
        queue_uri = environ.get("AzureWebJobsStorage__queueServiceUri") or (
            account and f"https://{account}.queue.core.windows.net"
        )
        blob_uri = environ.get("AzureWebJobsStorage__blobServiceUri") or (
            account and f"https://{account}.blob.core.windows.net"
        )
        if not queue_uri or not blob_uri or credential is None:
            raise InputError(
                "set AzureWebJobsStorage, or AzureWebJobsStorage__accountName "
                "(or __queueServiceUri and __blobServiceUri) with a managed identity"
            )
        return cls(
            QueueServiceClient(queue_uri, credential, **timeouts),
            BlobServiceClient(blob_uri, credential, **timeouts),
        )

    @property
    def identity(self) -> str:
        """A stable name of this environment: the state container's address (scheme, host,
        path), never a key or a SAS token. The same for every instance and deployment that
        share the storage, another for another environment (its canary's seed)."""
        address = urlsplit(self.container.url)
        return f"{address.scheme}://{address.netloc}{address.path}".casefold()

    def ensure(self) -> None:
        """Create the queues and the state container if missing (once per process)."""
        if self._ready:
            return
        with azure_errors("create queues and state container", "storage"):
            for name in self.names.queues:
                with suppress(ResourceExistsError):
                    self._queues.create_queue(name)
            with suppress(ResourceExistsError):
                self.container.create_container()
        self._ready = True

    def lost(self) -> None:
        """A queue or the container turned out to be gone (a storage account or emulator
        reset): create them again before the next write."""
        self._ready = False

    def queue(self, name: str) -> QueueClient:
        """A queue's client, base64-encoding as the Functions host expects."""
        return self._queues.get_queue_client(
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )

    def raw_queue(self, name: str) -> QueueClient:
        """A queue's client that moves message text as stored, base64 or not: a poison
        queue may hold text the host could not decode, and a replay moves it unchanged."""
        return self._queues.get_queue_client(name)

    def recreating(self, what: str, write: Callable[[], object]) -> None:
        """Run a write; if its queue or container is gone, create them again and write
        once more.

        Raises:
            AuthError, Retryable, NonRetryable: as `azure_errors` classifies a failure.
        """
        self.ensure()
        with azure_errors(what, "storage"):
            try:
                write()
                return
            except ResourceNotFoundError:
                self.lost()
        self.ensure()
        with azure_errors(what, "storage"):
            write()


def write_marker(blob: Any, properties: Any, metadata: dict[str, str]) -> bool:
    """Write an empty blob's metadata only if nobody changed it since `properties` were
    read (None: only if it does not exist yet); False when another writer came first."""
    try:
        if properties is None:
            blob.upload_blob(b"", overwrite=False, metadata=metadata)
        else:
            blob.upload_blob(
                b"",
                overwrite=True,
                metadata=metadata,
                etag=properties.etag,
                match_condition=MatchConditions.IfNotModified,
            )
    except (ResourceExistsError, ResourceModifiedError):
        return False
    return True


def azurite_connection_string(host: str = "127.0.0.1") -> str:
    """Azurite's documented development account on its default ports."""
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    account = "devstoreaccount1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint=http://{host}:10000/{account};QueueEndpoint=http://{host}:10001/{account};"
    )
