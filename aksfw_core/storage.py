"""The app's own Azure Storage account: the two queues, their poison queues, and the
state container. Built from `AzureWebJobsStorage` (a connection string, or
`UseDevelopmentStorage=true` for Azurite) or the identity-based `AzureWebJobsStorage__*`
settings the Functions host uses in Azure.

State writes carry an ETag condition, so two appliers can never overwrite each other.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from aksfw_core.errors import InputError, Retryable
from aksfw_core.limits import Limits
from aksfw_core.messages import (
    MAX_QUEUE_TEXT,
    BlobReference,
    MalformedMessage,
    Message,
    decode,
    encode,
    encode_reference,
)
from aksfw_core.state import (
    AppliedState,
    EnqueuedMark,
    applied_from_json,
    enqueued_from_json,
    state_key,
    to_bytes,
)
from aksfw_core.transport import azure_errors


class StateConflict(Retryable):
    """A state blob changed between its read and this write (another applier ran)."""


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


class Storage:
    """Queues and state blobs of one storage account."""

    def __init__(
        self,
        queues: QueueServiceClient,
        blobs: BlobServiceClient,
        names: StorageNames | None = None,
        max_message_bytes: int = Limits.max_message_bytes,
    ) -> None:
        self._queues = queues
        self._max_message_bytes = max_message_bytes
        self._blobs = blobs
        self.names = names or StorageNames()
        self._state: ContainerClient = blobs.get_container_client(self.names.state_container)
        self._ready = False

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        credential: TokenCredential | None = None,
        limits: Limits | None = None,
    ) -> Storage:
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
                max_message_bytes=limits.max_message_bytes,
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
            max_message_bytes=limits.max_message_bytes,
        )

    def ensure(self) -> None:
        """Create the queues and the state container if missing (once per process)."""
        if self._ready:
            return
        with azure_errors("create queues and state container", "storage"):
            for name in self.names.queues:
                with suppress(ResourceExistsError):
                    self._queues.create_queue(name)
            with suppress(ResourceExistsError):
                self._state.create_container()
        self._ready = True

    # ------------------------------------------------------------------ queues

    def send(self, queue: str, message: Message, delay_s: int = 0) -> None:
        """Queue a message (base64, as the Functions host expects), after `delay_s` seconds.

        A message too large for the queue is stored as a blob and sent as a reference.
        """
        text = encode(message)
        if len(text) > MAX_QUEUE_TEXT:
            name = f"payloads/{uuid.uuid4().hex}.json"
            data = text.encode()
            self._recreating(f"write {name}", lambda: self._state.upload_blob(name, data))
            text = encode_reference(BlobReference(name))
        self._recreating(
            f"send to {queue}",
            lambda: self._queue(queue).send_message(text, visibility_timeout=delay_s or None),
        )

    def receive(self, body: str | bytes) -> Message:
        """Decode a message the host delivered, fetching a blob-stored body.

        Raises:
            MalformedMessage: it is not a message, or it is larger than allowed.
        """
        message = decode(body, self._max_message_bytes)
        if isinstance(message, BlobReference):
            with azure_errors(f"read {message.blob}", "storage"):
                downloader = self._state.download_blob(message.blob)
                if downloader.size > self._max_message_bytes:
                    raise MalformedMessage(
                        f"message: payload blob larger than {self._max_message_bytes} bytes"
                    )
                data = downloader.readall()
            message = decode(data, self._max_message_bytes)
            if isinstance(message, BlobReference):
                raise MalformedMessage("message: a blob reference points at another reference")
        return message

    def forget_payload(self, body: str | bytes) -> None:
        """Delete the blob behind a processed message, if it had one."""
        try:
            reference = decode(body, self._max_message_bytes)
        except InputError:
            return
        if isinstance(reference, BlobReference):
            what = f"delete {reference.blob}"
            with azure_errors(what, "storage"), suppress(ResourceNotFoundError):
                self._state.delete_blob(reference.blob)

    def poison(self, queue: str, body: str) -> None:
        """Put a message that can never succeed on `<queue>-poison` straight away."""
        poison = queue + POISON_SUFFIX
        self._recreating(f"send to {poison}", lambda: self._queue(poison).send_message(body))

    def depth(self, queue: str) -> int:
        """Approximate number of messages waiting in a queue."""
        with azure_errors(f"read {queue} properties", "storage"):
            try:
                properties = self._queue(queue).get_queue_properties()
            except ResourceNotFoundError:
                return 0
        return int(properties.approximate_message_count or 0)

    def _queue(self, name: str) -> QueueClient:
        return self._queues.get_queue_client(
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )

    # ------------------------------------------------------------------ state

    def load_applied(self, cluster_id: str, target: str) -> tuple[AppliedState | None, str | None]:
        """The applied state and its ETag, or (None, None)."""
        data, etag = self._read(f"applied/{state_key(cluster_id, target)}.json")
        return (applied_from_json(data), etag) if data is not None else (None, None)

    def save_applied(self, state: AppliedState, etag: str | None) -> None:
        """Write the applied state if nobody changed it since it was read (`etag`).

        Raises:
            StateConflict: it was changed concurrently.
        """
        self._write(
            f"applied/{state_key(state.cluster_id, state.target)}.json",
            to_bytes(state.as_json()),
            etag,
        )

    def delete_applied(self, cluster_id: str, target: str, etag: str | None) -> None:
        """Forget a (cluster, target) after a tombstone, if unchanged since read."""
        name = f"applied/{state_key(cluster_id, target)}.json"
        with azure_errors(f"delete {name}", "storage"):
            try:
                if etag:
                    self._state.delete_blob(
                        name, etag=etag, match_condition=MatchConditions.IfNotModified
                    )
                else:
                    self._state.delete_blob(name)
            except ResourceNotFoundError:
                pass
            except ResourceModifiedError:
                raise StateConflict(f"{name} changed concurrently") from None

    def applied_states(self) -> list[AppliedState]:
        """Every applied state, for the status endpoint and the timer's tombstones."""
        self.ensure()
        states = []
        with azure_errors("list applied states", "storage"):
            try:
                names = [b.name for b in self._state.list_blobs(name_starts_with="applied/")]
            except ResourceNotFoundError:  # the container is gone (a fresh emulator)
                self._ready = False
                return []
        for name in names:
            data, _ = self._read(name)
            if data is not None:
                states.append(applied_from_json(data))
        return states

    def load_enqueued(self, cluster_id: str, target: str) -> EnqueuedMark | None:
        data, _ = self._read(f"enqueued/{state_key(cluster_id, target)}.json")
        return enqueued_from_json(data) if data is not None else None

    def save_enqueued(self, mark: EnqueuedMark) -> None:
        name = f"enqueued/{state_key(mark.cluster_id, mark.target)}.json"
        data = to_bytes(mark.as_json())
        self._recreating(
            f"write {name}", lambda: self._state.upload_blob(name, data, overwrite=True)
        )

    def load_marker(self, name: str) -> float | None:
        """A timestamp kept under `meta/<name>` (e.g. the last audit), or None."""
        data, _ = self._read(f"meta/{name}.json")
        try:
            return float(json.loads(data)["at"]) if data is not None else None
        except (ValueError, KeyError, TypeError):
            return None

    def save_marker(self, name: str, at: float) -> None:
        blob, data = f"meta/{name}.json", to_bytes({"at": at})
        self._recreating(
            f"write {blob}", lambda: self._state.upload_blob(blob, data, overwrite=True)
        )

    def _read(self, name: str) -> tuple[bytes | None, str | None]:
        self.ensure()
        with azure_errors(f"read {name}", "storage"):
            try:
                downloader = self._state.download_blob(name)
            except ResourceNotFoundError:
                return None, None
            return downloader.readall(), downloader.properties.etag

    def _write(self, name: str, data: bytes, etag: str | None) -> None:
        def upload() -> None:
            try:
                if etag is None:
                    self._state.upload_blob(name, data, overwrite=False)
                else:
                    self._state.upload_blob(
                        name,
                        data,
                        overwrite=True,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                raise StateConflict(f"{name} changed concurrently") from None

        self._recreating(f"write {name}", upload)

    def _recreating(self, what: str, write: Callable[[], object]) -> None:
        """Run a write; if its queue or container is gone (a storage account or emulator
        reset), create them again and write once more."""
        self.ensure()
        with azure_errors(what, "storage"):
            try:
                write()
                return
            except ResourceNotFoundError:
                self._ready = False
        self.ensure()
        with azure_errors(what, "storage"):
            write()


def azurite_connection_string(host: str = "127.0.0.1") -> str:
    """Azurite's documented development account on its default ports."""
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    account = "devstoreaccount1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint=http://{host}:10000/{account};QueueEndpoint=http://{host}:10001/{account};"
    )
