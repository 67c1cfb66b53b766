"""Replay poisoned messages once their cause is fixed: read `<queue>-poison` in bounded
pages, put each message that could succeed now back on its queue, and report each one
that would fail again for the same reason, leaving it where it is.

What would fail again is decided by the checks the consumers make themselves:

- `malformed`: not base64 (the host could not decode it either), refused by the message
  schema (`MessageQueues.receive`: not JSON, an unknown kind or version, larger than
  `limits.maxMessageBytes`), or a kind the queue does not carry;
- `payload-gone`: a reference whose payload blob the timer has deleted (older than
  `limits.payloadTtlSeconds`). The reference names only the blob and its target, not the
  cluster, so it cannot become a resync of that cluster; nothing is lost with it, since
  every timer run resyncs every monitored cluster and queues what it needs now;
- `unknown-cluster`: a resync request for a cluster the inventory does not hold (the
  resyncer would ignore it; the timer removes the tags of a cluster gone for good), or a
  snapshot of such a cluster that has no applied state on its target either (the applier
  refuses it: `UnknownSnapshotCluster`);
- `refused`: any other refusal of the applier's checks (`Applier.check`: tags, tag name,
  target or version it may not apply);
- `unchecked`: a check could not be made now (Storage, Resource Manager or Panorama
  failed): replay again later.

A message is moved by send, then delete: its text goes back to its queue byte for byte
(with a fresh dequeue count) before the poisoned copy is deleted, so a crash in between
leaves a duplicate, which the applier's versioning makes harmless, never a loss. Every
message read stays hidden for `limits.replayVisibilityTimeoutSeconds`, so a concurrent
replay cannot move it too; the kept ones are made visible again at the end of the call.
A dry run reads and checks the same way, then makes every message visible again: the
queues hold the same messages after it (only their dequeue counts rise).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from aksfw_core.errors import AksfwError
from aksfw_core.limits import Limits
from aksfw_core.logs import log_event
from aksfw_core.pipeline.applier import Applier
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.snapshot_guard import ClusterLookup, UnknownSnapshotCluster
from aksfw_core.pipeline.storage import POISON_SUFFIX
from aksfw_core.rules.messages import (
    BlobReference,
    MalformedMessage,
    ResyncRequest,
    Snapshot,
    decode,
)
from aksfw_core.transport import azure_errors

log = logging.getLogger(__name__)

MAX_PAGE = 32
"""Messages one receive may return (the Queue service's limit)."""


class Decision(StrEnum):
    """What a replay did with one poisoned message."""

    REPLAYED = "replayed"
    WOULD_REPLAY = "would replay"
    """A dry run's answer: it could succeed now."""
    KEPT = "kept"
    """Left in the poison queue: it would fail again (see `KeptReason`)."""


class KeptReason(StrEnum):
    """Why a poisoned message was kept (the module docstring says when each applies)."""

    MALFORMED = "malformed"
    PAYLOAD_GONE = "payload-gone"
    UNKNOWN_CLUSTER = "unknown-cluster"
    REFUSED = "refused"
    UNCHECKED = "unchecked"
    NOT_SENT = "not-sent"
    """It could succeed, but sending it back failed (Storage): replay again later."""


@dataclass(frozen=True)
class ReplayedMessage:
    """One poisoned message and what the replay decided for it."""

    message_id: str
    queue: str
    """The queue it was poisoned from, and goes back to."""
    kind: str | None
    """`resync`, `snapshot` or `tombstone`; None when it could not be read."""
    cluster: str | None
    target: str | None
    decision: Decision
    reason: KeptReason | None = None
    detail: str | None = None
    """The check's own words for a kept message."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "queue": self.queue,
            "kind": self.kind,
            "cluster": self.cluster,
            "target": self.target,
            "decision": self.decision.value,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ReplayReport:
    """What one replay call read and did."""

    dry_run: bool
    messages: tuple[ReplayedMessage, ...]
    more: bool
    """The cap or the time budget ended the reading: more messages may be waiting."""

    def count(self, decision: Decision) -> int:
        return sum(1 for message in self.messages if message.decision is decision)

    def as_json(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "messages": [message.as_json() for message in self.messages],
            "totals": {
                "read": len(self.messages),
                "replayed": self.count(Decision.REPLAYED),
                "wouldReplay": self.count(Decision.WOULD_REPLAY),
                "kept": self.count(Decision.KEPT),
            },
            "more": self.more,
        }


@dataclass(frozen=True)
class _Verdict:
    """What the checks say about one message: `reason` None means it could succeed."""

    kind: str | None = None
    cluster: str | None = None
    target: str | None = None
    reason: KeptReason | None = None
    detail: str | None = None


class PoisonReplay:
    """Moves poisoned messages back to their queues when the consumers' checks pass."""

    def __init__(
        self,
        queues: MessageQueues,
        applier: Applier,
        clusters: ClusterLookup,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queues = queues
        self._account = queues.account
        self._applier = applier
        self._clusters = clusters
        self._limits = limits or Limits()
        self._clock = clock

    def replay(self, queues: Sequence[str], most: int, dry_run: bool = False) -> ReplayReport:
        """Replay (or, with `dry_run`, only check) up to `most` messages from the poison
        queues of `queues`, in that order.

        Raises:
            ValueError: `most` is below 1.
            AuthError, Retryable, NonRetryable: a poison queue could not be read. What was
                replayed stays replayed; the rest is visible again after the hiding time.
        """
        if most < 1:
            raise ValueError("replay: most must be at least 1")
        started = self._clock()
        read: list[ReplayedMessage] = []
        more = False
        for queue in queues:
            left = most - len(read)
            if left < 1:
                more = True
                break
            more = self._replay_queue(queue, left, dry_run, started, read) or more
        report = ReplayReport(dry_run, tuple(read), more)
        log_event(
            log,
            "replay.done",
            queues=list(queues),
            dry_run=dry_run,
            read=len(read),
            replayed=report.count(Decision.REPLAYED),
            kept=report.count(Decision.KEPT),
            more=more,
        )
        return report

    def _replay_queue(
        self, queue: str, most: int, dry_run: bool, started: float, read: list[ReplayedMessage]
    ) -> bool:
        """One poison queue, page by page; returns whether reading stopped early."""
        name = queue + POISON_SUFFIX
        poison = self._account.raw_queue(name)
        budget_s = self._limits.replay_visibility_timeout_s / 2
        held: dict[str, QueueMessage] = {}  # hidden by this call; visible again at the end
        seen: set[str] = set()
        count = 0
        try:
            with azure_errors(f"read {name}", "storage"):
                pages = poison.receive_messages(
                    messages_per_page=min(MAX_PAGE, most),
                    max_messages=most,
                    visibility_timeout=max(1, math.ceil(self._limits.replay_visibility_timeout_s)),
                ).by_page()
            while True:
                if self._clock() - started > budget_s:
                    return True  # what was read must be done before its hiding ends
                with azure_errors(f"read {name}", "storage"):
                    try:
                        page = list(next(pages))
                    except (StopIteration, ResourceNotFoundError):
                        return count >= most
                for message in page:
                    if message.id in seen:  # its hiding ran out and this call read it again
                        if message.id in held:
                            held[message.id] = message  # the newest receipt shows it again
                        continue
                    seen.add(message.id)
                    count += 1
                    entry = self._one(queue, poison, message, dry_run)
                    read.append(entry)
                    if entry.decision is not Decision.REPLAYED:
                        held[message.id] = message
        finally:
            for message in held.values():
                _show_again(poison, message)

    def _one(
        self, queue: str, poison: QueueClient, message: QueueMessage, dry_run: bool
    ) -> ReplayedMessage:
        verdict = self._check(queue, str(message.content))
        result = ReplayedMessage(
            str(message.id),
            queue,
            verdict.kind,
            verdict.cluster,
            verdict.target,
            Decision.KEPT,
            verdict.reason,
            verdict.detail,
        )
        if verdict.reason is None:
            if dry_run:
                result = replace(result, decision=Decision.WOULD_REPLAY)
            else:
                result = self._move(queue, poison, message, result)
        log_event(
            log,
            "replay.message",
            logging.INFO if result.reason is None else logging.WARNING,
            queue=queue,
            message_id=result.message_id,
            kind=result.kind,
            cluster=result.cluster,
            target=result.target,
            decision=result.decision.value,
            reason=result.reason.value if result.reason else None,
            detail=result.detail,
        )
        return result

    def _move(
        self, queue: str, poison: QueueClient, message: QueueMessage, checked: ReplayedMessage
    ) -> ReplayedMessage:
        """Send the message's text back to `queue`, then delete the poisoned copy."""
        target = self._account.raw_queue(queue)
        try:
            self._account.recreating(
                f"send to {queue}", lambda: target.send_message(message.content)
            )
        except AksfwError as error:
            detail = str(error)
            return replace(checked, reason=KeptReason.NOT_SENT, detail=detail)
        try:
            with azure_errors(f"remove the message from {queue}{POISON_SUFFIX}", "storage"):
                poison.delete_message(message.id, message.pop_receipt)
        except AksfwError as error:
            # Another reader has it now (its hiding ran out) or Storage failed: it may be
            # replayed twice, which the versioning makes harmless.
            log_event(
                log,
                "replay.not_deleted",
                logging.WARNING,
                queue=queue,
                message_id=message.id,
                error=f"{type(error).__name__}: {error}",
            )
        return replace(checked, decision=Decision.REPLAYED)

    def _check(self, queue: str, content: str) -> _Verdict:
        """What the consumer of `queue` would do with this text now."""
        try:
            body = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            return _Verdict(
                reason=KeptReason.MALFORMED, detail="not base64: the host cannot decode it"
            )
        try:
            message = self._queues.receive(body)
        except MalformedMessage as error:
            return _Verdict(reason=KeptReason.MALFORMED, detail=str(error))
        except AksfwError as error:
            if error.status == 404:  # only a reference reads Storage: its blob is gone
                return _Verdict(
                    kind="snapshot",
                    target=_reference_target(body, self._limits.max_message_bytes),
                    reason=KeptReason.PAYLOAD_GONE,
                    detail=(
                        f"{error}: its payload blob was deleted (limits.payloadTtlSeconds); "
                        "the timer's resyncs queue this cluster's current snapshot"
                    ),
                )
            return _unchecked(error)
        if isinstance(message, ResyncRequest):
            return self._check_resync(queue, message)
        return self._check_snapshot(queue, message)

    def _check_resync(self, queue: str, request: ResyncRequest) -> _Verdict:
        verdict = _Verdict("resync", request.cluster_id)
        if queue != self._queues.names.resync_queue:
            return _with(verdict, KeptReason.MALFORMED, f"a resync request on {queue}")
        try:
            cluster = self._clusters(request.cluster_id)
        except AksfwError as error:
            return _with(verdict, KeptReason.UNCHECKED, str(error))
        if cluster is None:
            return _with(
                verdict,
                KeptReason.UNKNOWN_CLUSTER,
                f"cluster {request.cluster_id} is not monitored: the resyncer would ignore it",
            )
        return verdict

    def _check_snapshot(self, queue: str, snapshot: Snapshot) -> _Verdict:
        kind = "tombstone" if snapshot.tombstone else "snapshot"
        verdict = _Verdict(kind, snapshot.cluster_id, snapshot.target)
        if queue != self._queues.names.updates_queue:
            return _with(verdict, KeptReason.MALFORMED, f"a {kind} on {queue}")
        try:
            self._applier.check(snapshot)
        except UnknownSnapshotCluster as error:
            return _with(verdict, KeptReason.UNKNOWN_CLUSTER, str(error))
        except MalformedMessage as error:
            return _with(verdict, KeptReason.REFUSED, str(error))
        except AksfwError as error:
            return _with(verdict, KeptReason.UNCHECKED, str(error))
        return verdict


def _with(verdict: _Verdict, reason: KeptReason, detail: str) -> _Verdict:
    return _Verdict(verdict.kind, verdict.cluster, verdict.target, reason, detail)


def _unchecked(error: AksfwError) -> _Verdict:
    return _Verdict(reason=KeptReason.UNCHECKED, detail=str(error))


def _reference_target(body: bytes, max_bytes: int) -> str | None:
    with suppress(MalformedMessage):
        reference = decode(body, max_bytes)
        if isinstance(reference, BlobReference):
            return reference.target
    return None


def _show_again(poison: QueueClient, message: QueueMessage) -> None:
    """Make a message this call hid visible again now. Failing leaves it hidden until
    its hiding ends, which changes nothing else."""
    with suppress(AzureError):
        poison.update_message(message.id, message.pop_receipt, visibility_timeout=0)
