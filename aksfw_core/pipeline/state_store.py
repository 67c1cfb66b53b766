"""Reads and writes what aksfw remembers in the state container: applied states with their
summaries, enqueued marks, held-back mass removals, watcher events and the targets'
canaries, laid out, named and conditioned as `pipeline.state` describes, stored in the form
of `pipeline.state_codec`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, NamedTuple

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from aksfw_core.errors import AksfwError, Retryable
from aksfw_core.logs import log_event
from aksfw_core.pipeline.state import (
    CANARIES_PREFIX,
    AppliedFolderBlob,
    AppliedState,
    CanaryRecord,
    EnqueuedMark,
    HeldBack,
    LastWatcherEvent,
    StateSummary,
    applied_blob,
    applied_prefix,
    canary_blob,
    cluster_key,
    enqueued_blob,
    enqueued_prefix,
    held_blob,
    listed_name,
    watcher_blob,
)
from aksfw_core.pipeline.state_codec import (
    applied_body,
    applied_from_body,
    from_metadata,
    mark_body,
    to_metadata,
)
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.transport import azure_errors

log = logging.getLogger(__name__)


class StateConflict(Retryable):
    """A state blob changed between its read and this write (another applier ran)."""


class ListedSummary(NamedTuple):
    """A summary as a listing found it, with what a conditional update of it needs."""

    summary: StateSummary
    blob: str
    etag: str


class ListedHold(NamedTuple):
    """A hold as a listing found it, with the ETag a conditional update of it needs."""

    held: HeldBack
    etag: str


class _Listing(NamedTuple):
    """What one listing of `applied/` found."""

    summaries: list[ListedSummary]
    watcher_events: dict[str, float]
    """When the last watcher event arrived, by cluster key."""
    holds: dict[str, ListedHold]
    """By cluster key."""


class StateStore:
    """Applied states, enqueued marks, holds and watcher events in the state container."""

    def __init__(self, account: StorageAccount) -> None:
        self._blobs = _StateContainer(account)

    # ------------------------------------------------------------------ applied state

    def load_applied(self, cluster_id: str, target: str) -> tuple[AppliedState | None, str | None]:
        """The applied state and its ETag, or (None, None).

        Raises:
            NonRetryable: the stored state is unreadable.
            AuthError, Retryable: Storage failed.
        """
        data, etag, metadata = self._blobs.read(applied_blob(cluster_id, target))
        if data is None:
            return None, None
        state = applied_from_body(data)
        summary = from_metadata(StateSummary, metadata)
        if summary is not None:  # the timer notes these in the metadata only
            dirty = state.dirty or summary.dirty
            state = replace(state, missing_since=summary.missing_since, dirty=dirty)
        return state, etag

    def save_applied(self, state: AppliedState, etag: str | None) -> None:
        """Write the applied state and its summary (one upload) if nobody changed it since
        it was read (`etag`; None: only if there is none).

        Raises:
            StateConflict: it was changed concurrently.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = applied_blob(state.cluster_id, state.target)
        metadata = to_metadata(StateSummary.of(state))
        if not self._blobs.write(name, applied_body(state), metadata, etag):
            raise StateConflict(f"{name} changed concurrently")

    def delete_applied(self, cluster_id: str, target: str, etag: str | None) -> None:
        """Forget a (cluster, target) after a tombstone, if unchanged since read.

        Raises:
            StateConflict: it was changed concurrently.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = applied_blob(cluster_id, target)
        if not self._blobs.delete(name, etag or None):
            raise StateConflict(f"{name} changed concurrently")

    def summaries(self, cluster_id: str | None = None) -> list[ListedSummary]:
        """The summary of every applied state, or of one cluster's, from a listing.

        A state saved before summaries existed is read once and given its summary.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        return self._list_applied(cluster_id).summaries

    def summaries_and_hold(self, cluster_id: str) -> tuple[list[ListedSummary], ListedHold | None]:
        """One cluster's summaries (as `summaries`) and its held-back mass removal, if
        any, from one listing.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        found = self._list_applied(cluster_id)
        return found.summaries, found.holds.get(cluster_key(cluster_id))

    def summaries_watcher_events_and_holds(
        self,
    ) -> tuple[list[ListedSummary], dict[str, float], dict[str, HeldBack]]:
        """Every summary (as `summaries`), when the last watcher event arrived and the
        held-back mass removals, both by cluster key (`cluster_key`), from one listing.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        found = self._list_applied(None)
        holds = {key: listed.held for key, listed in found.holds.items()}
        return found.summaries, found.watcher_events, holds

    def mark_missing(self, listed: ListedSummary, since: float) -> bool:
        """Note in the summary (metadata only) when the cluster left the inventory; False
        when the state changed or went since it was listed (the next listing decides).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        metadata = to_metadata(replace(listed.summary, missing_since=since))
        return self._blobs.set_metadata(listed.blob, metadata, listed.etag) is not None

    def mark_dirty(self, listed: ListedSummary) -> bool:
        """Note in the summary (metadata only) that the target no longer holds what the
        state says (it lost its registrations), so that the next apply compares with the
        target itself; False when the state changed or went since it was listed.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        metadata = to_metadata(replace(listed.summary, dirty=True))
        return self._blobs.set_metadata(listed.blob, metadata, listed.etag) is not None

    # ------------------------------------------------------------------ enqueued marks

    def enqueued_marks(self, cluster_id: str) -> dict[str, EnqueuedMark]:
        """The marks of a cluster's targets, by lower-cased target, from one listing.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        marks = {}
        for blob in self._blobs.list(enqueued_prefix(cluster_id)):
            mark = from_metadata(EnqueuedMark, blob.metadata)
            if mark is not None:
                marks[mark.target.lower()] = mark
        return marks

    def enqueued_mark(self, cluster_id: str, target: str) -> EnqueuedMark | None:
        """The last queued snapshot's mark of one (cluster, target), from its properties.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        return from_metadata(EnqueuedMark, self._blobs.metadata(enqueued_blob(cluster_id, target)))

    def save_enqueued(self, mark: EnqueuedMark) -> None:
        """Remember the last snapshot queued for a (cluster, target), whatever was there.

        Raises:
            InputError: the mark's cluster is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = enqueued_blob(mark.cluster_id, mark.target)
        self._blobs.overwrite(name, mark_body(mark), to_metadata(mark))

    # ------------------------------------------------------------------ held back

    def save_held(self, held: HeldBack, etag: str | None) -> bool:
        """Write a cluster's hold if nobody changed it since it was listed (`etag`; None:
        only if there is none). False when another instance wrote or cleared it first: that
        instance holds the cluster back (or let it through), not this one.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name, metadata = held_blob(held.cluster_id), to_metadata(held)
        if etag is None:
            return self._blobs.write(name, b"", metadata, None)
        return self._blobs.set_metadata(name, metadata, etag) is not None

    def clear_held(self, cluster_id: str) -> None:
        """Forget a cluster's hold (its removal was confirmed, or is no longer one).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._blobs.delete(held_blob(cluster_id))

    # ------------------------------------------------------------------ watcher events

    def note_watcher_event(self, cluster_id: str, at: float) -> None:
        """Remember that a watcher event for the cluster arrived at `at` (epoch seconds).

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._blobs.overwrite(watcher_blob(cluster_id), b"", to_metadata(LastWatcherEvent(at)))

    # ------------------------------------------------------------------ canaries

    def canaries(self) -> dict[str, CanaryRecord]:
        """Every target's canary record, by lower-cased target, from one listing.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        found = {}
        for blob in self._blobs.list(CANARIES_PREFIX):
            record = from_metadata(CanaryRecord, blob.metadata)
            if record is not None:
                found[record.target.lower()] = record
        return found

    def save_canary(self, record: CanaryRecord) -> None:
        """Write a target's canary record, whatever was there.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._blobs.overwrite(canary_blob(record.target), b"", to_metadata(record))

    def delete_canary(self, target: str) -> None:
        """Forget a target's canary record (gone already: nothing to do).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._blobs.delete(canary_blob(target))

    # ------------------------------------------------------------------ blobs

    def _list_applied(self, cluster_id: str | None) -> _Listing:
        found = _Listing([], {}, {})
        for blob in self._blobs.list(applied_prefix(cluster_id)):
            kind, key = listed_name(blob.name)
            if kind is AppliedFolderBlob.HELD:
                held = from_metadata(HeldBack, blob.metadata)
                if held is not None:
                    found.holds[key] = ListedHold(held, blob.etag)
            elif kind is AppliedFolderBlob.WATCHER:
                event = from_metadata(LastWatcherEvent, blob.metadata)
                if event is not None:
                    found.watcher_events[key] = event.at
            else:
                summary = from_metadata(StateSummary, blob.metadata)
                listed = (
                    ListedSummary(summary, blob.name, blob.etag)
                    if summary is not None
                    else self._summarise(blob.name)
                )
                if listed is not None:
                    found.summaries.append(listed)
        return found

    def _summarise(self, name: str) -> ListedSummary | None:
        """Give a state saved before summaries existed its summary (once)."""
        data, etag, _ = self._blobs.read(name)
        if data is None or etag is None:
            return None
        try:
            summary = StateSummary.of(applied_from_body(data))
        except AksfwError as error:
            log_event(log, "state.unreadable", logging.WARNING, blob=name, error=str(error))
            return None
        updated = self._blobs.set_metadata(name, to_metadata(summary), etag)
        if updated is None:
            return None  # an applier wrote it meanwhile, with its summary
        log_event(log, "state.summarised", blob=name)
        return ListedSummary(summary, name, updated)


class _StateContainer:
    """The blob operations of the state container that `StateStore` is made of, each with
    its Storage errors classified."""

    def __init__(self, account: StorageAccount) -> None:
        self._account = account
        self._container = account.container

    def read(self, name: str) -> tuple[bytes | None, str | None, dict[str, str] | None]:
        """A blob's body, ETag and metadata, or (None, None, None) when there is none.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._account.ensure()
        with azure_errors(f"read {name}", "storage"):
            try:
                downloader = self._container.download_blob(name)
            except ResourceNotFoundError:
                return None, None, None
            return downloader.readall(), downloader.properties.etag, downloader.properties.metadata

    def metadata(self, name: str) -> dict[str, str] | None:
        """A blob's metadata from its properties (no download), or None when there is none.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._account.ensure()
        with azure_errors(f"read {name} properties", "storage"):
            try:
                properties = self._container.get_blob_client(name).get_blob_properties()
            except ResourceNotFoundError:
                return None
        metadata: dict[str, str] = properties.metadata
        return metadata

    def list(self, prefix: str) -> list[Any]:
        """The blobs whose names start with `prefix`, with their metadata.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._account.ensure()
        with azure_errors(f"list {prefix}", "storage"):
            try:
                return list(
                    self._container.list_blobs(name_starts_with=prefix, include=["metadata"])
                )
            except ResourceNotFoundError:  # the container is gone (a fresh emulator)
                self._account.lost()
                return []

    def write(self, name: str, data: bytes, metadata: dict[str, str], etag: str | None) -> bool:
        """Write a blob if it is unchanged since `etag` (None: only if there is none);
        False when it was not (another writer came first).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        written = [True]

        def upload() -> None:
            try:
                if etag is None:
                    self._container.upload_blob(name, data, overwrite=False, metadata=metadata)
                else:
                    self._container.upload_blob(
                        name,
                        data,
                        overwrite=True,
                        metadata=metadata,
                        etag=etag,
                        match_condition=_UNCHANGED,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                written[0] = False

        self._account.recreating(f"write {name}", upload)
        return written[0]

    def overwrite(self, name: str, data: bytes, metadata: dict[str, str]) -> None:
        """Write a blob, with no condition.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        self._account.recreating(
            f"write {name}",
            lambda: self._container.upload_blob(name, data, overwrite=True, metadata=metadata),
        )

    def set_metadata(self, name: str, metadata: dict[str, str], etag: str) -> str | None:
        """Replace a blob's metadata if it is unchanged since `etag`: its new ETag, or None
        when it changed or went.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        with azure_errors(f"update {name} metadata", "storage"):
            try:
                updated = self._container.get_blob_client(name).set_blob_metadata(
                    metadata, etag=etag, match_condition=_UNCHANGED
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return None
        return str(updated["etag"])

    def delete(self, name: str, etag: str | None = None) -> bool:
        """Delete a blob if it is unchanged since `etag` (None: whatever it holds); False
        when it changed. One that is gone already counts as deleted.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        with azure_errors(f"delete {name}", "storage"):
            try:
                if etag is None:
                    self._container.delete_blob(name)
                else:
                    self._container.delete_blob(name, etag=etag, match_condition=_UNCHANGED)
            except ResourceNotFoundError:
                pass
            except ResourceModifiedError:
                return False
        return True


_UNCHANGED = MatchConditions.IfNotModified
