"""The app's queues: send and receive messages, put the hopeless ones on `<queue>-poison`,
read depths, and keep the payload blobs of messages too large for a queue.

A snapshot too large for the queue even compressed is stored once, under a name derived
from its content (`payloads/<sha256>.json` in the state container), however many targets
it is for; each target's message is a reference to it and names its target. A processed
message leaves the payload to the others that share it: the timer deletes payloads older
than `limits.payload_ttl_s`, a bounded number per run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from aksfw_core.limits import Limits
from aksfw_core.pipeline.storage import POISON_SUFFIX, StorageAccount, StorageNames
from aksfw_core.rules.messages import (
    MAX_QUEUE_TEXT,
    BlobReference,
    MalformedMessage,
    Message,
    ResyncRequest,
    Snapshot,
    decode,
    decode_payload,
    encode,
    encode_payload,
    encode_reference,
)
from aksfw_core.telemetry import stamped
from aksfw_core.transport import azure_errors

PAYLOAD_PREFIX = "payloads/"


class MessageQueues:
    """The `cluster-resync` and `panorama-updates` queues (and their poison queues)."""

    def __init__(self, account: StorageAccount, limits: Limits | None = None) -> None:
        self._account = account
        self._container = account.container
        self._limits = limits or Limits()
        self._max_message_bytes = self._limits.max_message_bytes

    @property
    def names(self) -> StorageNames:
        return self._account.names

    def send(self, message: ResyncRequest | Snapshot, delay_s: int = 0) -> None:
        """Queue a message on its queue (a resync request on `cluster-resync`, a snapshot on
        `panorama-updates`), base64 as the Functions host expects, after `delay_s` seconds.

        A snapshot too large for the queue is stored as a payload blob and sent as a
        reference to it. The message carries the current trace context and, unless it has
        one, an origin time (`telemetry.stamped`).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        if isinstance(message, Snapshot):
            self.send_snapshots([message], delay_s)
        else:
            (request,) = stamped([message], delay_s)
            self._send_text(self.names.resync_queue, encode(request), delay_s)

    def send_all(self, requests: Sequence[ResyncRequest], concurrency: int) -> None:
        """Queue many resync requests (the timer's fan-out), `concurrency` at a time: each
        is sent once, in the sender's trace; when some fail, the others are still sent and
        the first failure is raised after them.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed for at least one of them.
        """
        ready = stamped(requests)  # here: the trace is the sending thread's
        if not ready:
            return
        self._account.ensure()  # once, not from every thread at the start
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(ready)))) as pool:
            sent = [pool.submit(self.send, request) for request in ready]
        failures = [error for future in sent if (error := future.exception()) is not None]
        if failures:
            raise failures[0]

    def send_snapshots(self, snapshots: Sequence[Snapshot], delay_s: int = 0) -> None:
        """Queue the snapshots of one cluster for several targets (they differ only in
        target) on `panorama-updates`: too large for the queue, their tags are stored once
        and each message refers to that payload.

        Raises:
            ValueError: the snapshots differ in more than their target.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        if not snapshots:
            return
        first = snapshots[0]
        if any(replace(s, target=first.target) != first for s in snapshots[1:]):
            raise ValueError("send_snapshots: the snapshots differ in more than their target")
        snapshots = stamped(snapshots, delay_s)  # the sender's trace, one origin time
        first = snapshots[0]
        queue = self.names.updates_queue
        longest = max(snapshots, key=lambda s: len(s.target))
        if len(encode(longest)) <= MAX_QUEUE_TEXT:
            for snapshot in snapshots:
                self._send_text(queue, encode(snapshot), delay_s)
            return
        blob = self._store_payload(encode_payload(first))
        for snapshot in snapshots:
            reference = encode_reference(BlobReference(blob, snapshot.target))
            self._send_text(queue, reference, delay_s)

    def receive(self, body: str | bytes) -> Message:
        """Decode a message the host delivered, fetching a blob-stored body.

        Raises:
            MalformedMessage: it is not a message, or it is larger than allowed.
            NonRetryable: its payload blob is gone (it was cleaned up long ago).
            AuthError, Retryable: Storage failed.
        """
        message = decode(body, self._max_message_bytes)
        if not isinstance(message, BlobReference):
            return message
        data = self._read_payload(message.blob)
        if message.target is not None:
            return decode_payload(data, message.target, self._max_message_bytes)
        inner = decode(data, self._max_message_bytes)
        if isinstance(inner, BlobReference):
            raise MalformedMessage("message: a blob reference points at another reference")
        return inner

    def poison(self, queue: str, body: str) -> None:
        """Put a message that can never succeed on `<queue>-poison` straight away."""
        poison = queue + POISON_SUFFIX
        self._account.recreating(
            f"send to {poison}", lambda: self._account.queue(poison).send_message(body)
        )

    def depth(self, queue: str) -> int:
        """Approximate number of messages waiting in a queue."""
        with azure_errors(f"read {queue} properties", "storage"):
            try:
                properties = self._account.queue(queue).get_queue_properties()
            except ResourceNotFoundError:
                return 0
        return int(properties.approximate_message_count or 0)

    def delete_old_payloads(self, now: float) -> int:
        """Delete payload blobs older than `limits.payload_ttl_s` (at most
        `limits.payload_cleanup_blobs`, from the first listing page); returns how many
        went.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        cutoff = datetime.fromtimestamp(now - self._limits.payload_ttl_s, UTC)
        with azure_errors(f"list {PAYLOAD_PREFIX}", "storage"):
            try:
                pages = self._container.list_blobs(name_starts_with=PAYLOAD_PREFIX).by_page()
                page = list(next(pages, []))
            except ResourceNotFoundError:
                return 0
        most = self._limits.payload_cleanup_blobs
        old = [blob.name for blob in page if blob.last_modified < cutoff][:most]
        for name in old:
            with azure_errors(f"delete {name}", "storage"), suppress(ResourceNotFoundError):
                self._container.delete_blob(name)
        return len(old)

    def _send_text(self, queue: str, text: str, delay_s: int) -> None:
        self._account.recreating(
            f"send to {queue}",
            lambda: self._account.queue(queue).send_message(
                text, visibility_timeout=delay_s or None
            ),
        )

    def _store_payload(self, text: str) -> str:
        """Write a payload once under its content's name; an existing one is the same."""
        name = f"{PAYLOAD_PREFIX}{hashlib.sha256(text.encode()).hexdigest()}.json"
        data = text.encode()

        def upload() -> None:
            with suppress(ResourceExistsError):
                self._container.upload_blob(name, data, overwrite=False)

        self._account.recreating(f"write {name}", upload)
        return name

    def _read_payload(self, name: str) -> bytes:
        with azure_errors(f"read {name}", "storage"):
            downloader = self._container.download_blob(name)
            if downloader.size > self._max_message_bytes:
                raise MalformedMessage(
                    f"message: payload blob larger than {self._max_message_bytes} bytes"
                )
            return downloader.readall()

    @property
    def account(self) -> StorageAccount:
        """The storage account behind the queues (a replay reads poison queues raw)."""
        return self._account
