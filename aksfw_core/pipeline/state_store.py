"""What aksfw remembers per (cluster, target), kept in the state container:

- `applied/<sub>/<rg>/<cluster>/<target>.json`: the last applied state, its summary
  (`StateSummary`) as the blob's metadata. The timer, the status endpoint and a tombstone
  read summaries from a listing (one request per 5,000 blobs, no downloads); only the
  applier downloads a state, the one of the (cluster, target) it changes.
- `enqueued/<sub>/<rg>/<cluster>/<target>.json`: the last queued snapshot's mark, also as
  metadata, read with one listing per cluster.
- `applied/<sub>/<rg>/<cluster>/held-back`: a held-back mass removal (`HeldBack`) as
  metadata, so the resyncer's and the status endpoint's listings find it for free.
- `meta/<name>.json`: a timestamp (e.g. the last audit) as metadata.
- `applied/<sub>/<rg>/<cluster>.watcher`: when a watcher event for the cluster last
  arrived, as metadata, written at most once per window (the caller's claim); beside the
  applied states so that the status endpoint's one listing finds both.

State writes carry an ETag condition, so two appliers can never overwrite each other.
"""

from __future__ import annotations

import logging
from contextlib import suppress
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
    AppliedState,
    EnqueuedMark,
    HeldBack,
    StateSummary,
    applied_from_json,
    cluster_key,
    held_from_metadata,
    held_metadata,
    mark_from_metadata,
    mark_metadata,
    state_key,
    summary_from_metadata,
    summary_metadata,
    to_bytes,
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


class StateStore:
    """Applied states, enqueued marks and markers in the state container."""

    def __init__(self, account: StorageAccount) -> None:
        self._account = account
        self._container = account.container

    # ------------------------------------------------------------------ applied state

    def load_applied(self, cluster_id: str, target: str) -> tuple[AppliedState | None, str | None]:
        """The applied state and its ETag, or (None, None).

        Raises:
            NonRetryable: the stored state is unreadable.
            AuthError, Retryable: Storage failed.
        """
        data, etag, metadata = self._read(_applied_blob(cluster_id, target))
        if data is None:
            return None, None
        state = applied_from_json(data)
        summary = summary_from_metadata(metadata)
        if summary is not None:  # the timer notes an unmonitored cluster in metadata only
            state = replace(state, missing_since=summary.missing_since)
        return state, etag

    def save_applied(self, state: AppliedState, etag: str | None) -> None:
        """Write the applied state and its summary (one upload) if nobody changed it since
        it was read (`etag`; None: only if there is none).

        Raises:
            StateConflict: it was changed concurrently.
        """
        name = _applied_blob(state.cluster_id, state.target)
        data, metadata = to_bytes(state.as_json()), summary_metadata(StateSummary.of(state))

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
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                raise StateConflict(f"{name} changed concurrently") from None

        self._account.recreating(f"write {name}", upload)

    def delete_applied(self, cluster_id: str, target: str, etag: str | None) -> None:
        """Forget a (cluster, target) after a tombstone, if unchanged since read.

        Raises:
            StateConflict: it was changed concurrently.
        """
        name = _applied_blob(cluster_id, target)
        with azure_errors(f"delete {name}", "storage"):
            try:
                if etag:
                    self._container.delete_blob(
                        name, etag=etag, match_condition=MatchConditions.IfNotModified
                    )
                else:
                    self._container.delete_blob(name)
            except ResourceNotFoundError:
                pass
            except ResourceModifiedError:
                raise StateConflict(f"{name} changed concurrently") from None

    def summaries(self, cluster_id: str | None = None) -> list[ListedSummary]:
        """The summary of every applied state, or of one cluster's, from a listing.

        A state saved before summaries existed is read once and given its summary.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        return self._summaries(cluster_id)[0]

    def summaries_and_watcher_events(self) -> tuple[list[ListedSummary], dict[str, float]]:
        """Every summary (as `summaries`), and when the last watcher event arrived by
        cluster key (`cluster_key`), from one listing.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        found, watched, _ = self._summaries(None)
        return found, watched

    def summaries_and_hold(self, cluster_id: str) -> tuple[list[ListedSummary], ListedHold | None]:
        """One cluster's summaries (as `summaries`) and its held-back mass removal, if
        any, from one listing.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        found, _, holds = self._summaries(cluster_id)
        return found, holds.get(cluster_key(cluster_id))

    def summaries_watcher_events_and_holds(
        self,
    ) -> tuple[list[ListedSummary], dict[str, float], dict[str, HeldBack]]:
        """As `summaries_and_watcher_events`, and the held-back mass removals by cluster
        key, from the same one listing.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        found, watched, holds = self._summaries(None)
        return found, watched, {key: listed.held for key, listed in holds.items()}

    def _summaries(
        self, cluster_id: str | None
    ) -> tuple[list[ListedSummary], dict[str, float], dict[str, ListedHold]]:
        prefix = _APPLIED if cluster_id is None else f"{_APPLIED}{cluster_key(cluster_id)}/"
        found = []
        watched: dict[str, float] = {}
        holds: dict[str, ListedHold] = {}
        for blob in self._list(prefix):
            if blob.name.endswith(_HELD_SUFFIX):
                held = held_from_metadata(blob.metadata)
                if held is not None:
                    key = blob.name.removeprefix(_APPLIED).removesuffix(_HELD_SUFFIX)
                    holds[key] = ListedHold(held, blob.etag)
                continue
            if blob.name.endswith(_WATCHER_SUFFIX):
                at = _float_or_none((blob.metadata or {}).get("at"))
                if at is not None:
                    key = blob.name.removeprefix(_APPLIED).removesuffix(_WATCHER_SUFFIX)
                    watched[key] = at
                continue
            summary = summary_from_metadata(blob.metadata)
            listed = (
                ListedSummary(summary, blob.name, blob.etag)
                if summary is not None
                else self._summarise(blob.name)
            )
            if listed is not None:
                found.append(listed)
        return found, watched, holds

    def mark_missing(self, listed: ListedSummary, since: float) -> bool:
        """Note in the summary (metadata only) when the cluster left the inventory; False
        when the state changed or went since it was listed (the next listing decides).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        metadata = summary_metadata(replace(listed.summary, missing_since=since))
        with azure_errors(f"update {listed.blob} metadata", "storage"):
            try:
                self._container.get_blob_client(listed.blob).set_blob_metadata(
                    metadata, etag=listed.etag, match_condition=MatchConditions.IfNotModified
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return False
        return True

    # ------------------------------------------------------------------ enqueued marks

    def enqueued_marks(self, cluster_id: str) -> dict[str, EnqueuedMark]:
        """The marks of a cluster's targets, by lower-cased target, from one listing.

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        marks = {}
        for blob in self._list(f"enqueued/{cluster_key(cluster_id)}/"):
            mark = mark_from_metadata(blob.metadata)
            if mark is not None:
                marks[mark.target.lower()] = mark
        return marks

    def enqueued_mark(self, cluster_id: str, target: str) -> EnqueuedMark | None:
        """The last queued snapshot's mark of one (cluster, target), from its properties.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = f"enqueued/{state_key(cluster_id, target)}.json"
        self._account.ensure()
        with azure_errors(f"read {name} properties", "storage"):
            try:
                properties = self._container.get_blob_client(name).get_blob_properties()
            except ResourceNotFoundError:
                return None
        return mark_from_metadata(properties.metadata)

    def save_enqueued(self, mark: EnqueuedMark) -> None:
        name = f"enqueued/{state_key(mark.cluster_id, mark.target)}.json"
        data, metadata = to_bytes(mark.as_json()), mark_metadata(mark)
        self._account.recreating(
            f"write {name}",
            lambda: self._container.upload_blob(name, data, overwrite=True, metadata=metadata),
        )

    # ------------------------------------------------------------------ held back

    def save_held(self, held: HeldBack, etag: str | None) -> bool:
        """Write a cluster's hold if nobody changed it since it was listed (`etag`; None:
        only if there is none). False when another instance wrote or cleared it first: that
        instance holds the cluster back (or let it through), not this one.

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = _held_blob(held.cluster_id)
        metadata = held_metadata(held)
        saved = [True]

        def upload() -> None:
            try:
                if etag is None:
                    self._container.upload_blob(name, b"", overwrite=False, metadata=metadata)
                    return
            except ResourceExistsError:
                saved[0] = False
                return
            try:
                self._container.get_blob_client(name).set_blob_metadata(
                    metadata, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                saved[0] = False

        self._account.recreating(f"write {name}", upload)
        return saved[0]

    def clear_held(self, cluster_id: str) -> None:
        """Forget a cluster's hold (its removal was confirmed, or is no longer one).

        Raises:
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = _held_blob(cluster_id)
        with azure_errors(f"delete {name}", "storage"), suppress(ResourceNotFoundError):
            self._container.delete_blob(name)

    # ------------------------------------------------------------------ watcher events

    def note_watcher_event(self, cluster_id: str, at: float) -> None:
        """Remember that a watcher event for the cluster arrived at `at` (epoch seconds).

        Raises:
            InputError: `cluster_id` is not a managed cluster's resource ID.
            AuthError, Retryable, NonRetryable: Storage failed.
        """
        name = f"{_APPLIED}{cluster_key(cluster_id)}{_WATCHER_SUFFIX}"
        metadata = {"at": repr(at)}
        self._account.recreating(
            f"write {name}",
            lambda: self._container.upload_blob(name, b"", overwrite=True, metadata=metadata),
        )

    # ------------------------------------------------------------------ blobs

    def _read(self, name: str) -> tuple[bytes | None, str | None, dict[str, str] | None]:
        self._account.ensure()
        with azure_errors(f"read {name}", "storage"):
            try:
                downloader = self._container.download_blob(name)
            except ResourceNotFoundError:
                return None, None, None
            return downloader.readall(), downloader.properties.etag, downloader.properties.metadata

    def _list(self, prefix: str) -> list[Any]:
        self._account.ensure()
        with azure_errors(f"list {prefix}", "storage"):
            try:
                return list(
                    self._container.list_blobs(name_starts_with=prefix, include=["metadata"])
                )
            except ResourceNotFoundError:  # the container is gone (a fresh emulator)
                self._account.lost()
                return []

    def _summarise(self, name: str) -> ListedSummary | None:
        """Give a state saved before summaries existed its summary (once)."""
        data, etag, _ = self._read(name)
        if data is None or etag is None:
            return None
        try:
            summary = StateSummary.of(applied_from_json(data))
        except AksfwError as error:
            log_event(log, "state.unreadable", logging.WARNING, blob=name, error=str(error))
            return None
        with azure_errors(f"update {name} metadata", "storage"):
            try:
                updated = self._container.get_blob_client(name).set_blob_metadata(
                    summary_metadata(summary),
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return None  # an applier wrote it meanwhile, with its summary
        log_event(log, "state.summarised", blob=name)
        return ListedSummary(summary, name, str(updated["etag"]))


_APPLIED = "applied/"
_WATCHER_SUFFIX = ".watcher"
"""Never the end of an applied state's name (those end in `.json`)."""
_HELD_SUFFIX = "/held-back"
"""Inside a cluster's folder, so its listing finds it; no target's state is so named."""


def _held_blob(cluster_id: str) -> str:
    return f"{_APPLIED}{cluster_key(cluster_id)}{_HELD_SUFFIX}"


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _applied_blob(cluster_id: str, target: str) -> str:
    return f"applied/{state_key(cluster_id, target)}.json"
