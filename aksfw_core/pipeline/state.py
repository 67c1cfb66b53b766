"""What aksfw remembers per cluster and per (cluster, target), and where: the layout of the
state container, one frozen record per kind of blob, and the blobs' names. Pure code; the
records' stored form is `pipeline.state_codec`, the reads and writes `pipeline.state_store`.

Names are lower-cased. `<key>` is a cluster's `cluster_key` (`<sub>/<group>/<cluster>`),
`<target>` a target (`panorama` or a firewall's serial). Metadata names are lower-case
identifiers and values ASCII (`state_codec` lists them); a record's metadata opens with its
marker (`summary`, `mark` or `held`, value `1`), and metadata without a readable one counts
as none.

- `applied/<key>/<target>.json`: the last snapshot applied to the target. Body: the
  `AppliedState` as JSON, downloaded only by the applier of that (cluster, target).
  Metadata: its `StateSummary`, which the timer, the status endpoint, a tombstone and the
  resyncer read from listings (one request per 5,000 blobs, no downloads). The applier
  writes both in one upload, If-None-Match `*` when it read no state and If-Match the ETag
  it read otherwise, and deletes the blob after a tombstone, If-Match that ETag (either
  mismatch: `StateConflict`). The timer notes an unmonitored cluster (`missing_since`), and
  a target that lost its registrations (`dirty`, so the next apply compares with the
  target), in the metadata only, If-Match the listed ETag; a reader of the state takes
  both from the metadata. A listing that finds a blob saved before summaries existed
  reads it once and writes its summary, If-Match the ETag read.
- `enqueued/<key>/<target>.json`: the last snapshot queued for the target. Metadata: its
  `EnqueuedMark` (body: the same as JSON, never read). The resyncer overwrites it, with no
  condition, after queueing; it lists a cluster's marks so an unchanged resync queues
  nothing, and the applier reads one's properties to skip a snapshot a newer one follows.
- `applied/<key>/held-back`: a mass removal held back until a second list confirms it.
  Metadata: its `HeldBack`; no body. In the cluster's folder so the resyncer's and the
  status endpoint's listings find it for free (no target's state is so named). The
  resyncer creates it If-None-Match `*` or updates its metadata If-Match the listed ETag
  (losing either race: the other instance decides), and deletes it with no condition.
- `applied/<key>.watcher`: when a watcher event for the cluster last arrived. Metadata:
  its `LastWatcherEvent`; no body. Beside the cluster's folder so the status endpoint's one
  listing finds it. The app overwrites it, with no condition, at most once per window (a
  `pipeline.coordination` claim decides).

- `canaries/<target>`: the target's canary as the timer last left it (`pipeline.canaries`).
  Metadata: its `CanaryRecord`; no body. Written with no condition by the timer (one
  instance at a time: a timer trigger is a singleton), listed by the timer and the status
  endpoint, deleted by an uninstall.

- `tables/<target>.json`: aksfw's part of the target's registered-IP table as the last
  shared read found it (`pipeline.shared_tables`). Metadata: its `TableRecord`; body: every
  aksfw cluster's tags there, by the cluster's tag name, as gzip-compressed JSON
  (`state_codec.table_body`). Written by the applier that holds the target's read lock,
  If-Match the ETag it saw before it began to read (If-None-Match `*` when there was no
  blob); overwritten with no condition and no record when the target forgot (the canary),
  so a read in flight then cannot store what it read.

The container also holds `payloads/` (`pipeline.queues`), `claims/` and `locks/`
(`pipeline.coordination`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from aksfw_core.rules.model import IpTags
from aksfw_core.rules.resource_ids import managed_cluster_id

MAX_ERROR_CHARS = 300
"""Characters of the last error a summary keeps (the state blob keeps all of it)."""


@dataclass(frozen=True)
class AppliedState:
    """The state aksfw last left on one target for one cluster."""

    cluster_id: str
    tag_name: str
    target: str
    version: int
    """Version of the snapshot applied (ns since the epoch)."""
    fingerprint: str
    tags: IpTags = field(default_factory=dict)
    applied_at: float = 0.0
    """When it was applied (seconds since the epoch)."""
    dirty: bool = False
    """Panorama refused part of it: the next apply reads Panorama instead of trusting this."""
    last_error: str | None = None
    last_error_at: float | None = None
    missing_since: float | None = None
    """When the timer first found the cluster no longer monitored (seconds since the epoch)."""


@dataclass(frozen=True)
class StateSummary:
    """An `AppliedState` without its tags: what the timer, the status endpoint and a
    tombstone need, and what the resyncer compares with."""

    cluster_id: str
    """The cluster's resource ID as Resource Manager spells it."""
    tag_name: str
    target: str
    version: int
    fingerprint: str
    applied_at: float
    ips: int
    """IP addresses the applied state registers."""
    tags: int
    """(IP, tag) registrations the applied state holds."""
    dirty: bool = False
    last_error: str | None = None
    """The last error, cut to `MAX_ERROR_CHARS` characters."""
    last_error_at: float | None = None
    missing_since: float | None = None

    @classmethod
    def of(cls, state: AppliedState) -> StateSummary:
        return cls(
            cluster_id=state.cluster_id,
            tag_name=state.tag_name,
            target=state.target,
            version=state.version,
            fingerprint=state.fingerprint,
            applied_at=state.applied_at,
            ips=len(state.tags),
            tags=sum(len(tags) for tags in state.tags.values()),
            dirty=state.dirty,
            last_error=cut_error(state.last_error),
            last_error_at=state.last_error_at,
            missing_since=state.missing_since,
        )


@dataclass(frozen=True)
class EnqueuedMark:
    """The last snapshot queued for one (cluster, target)."""

    cluster_id: str
    target: str
    version: int
    fingerprint: str
    enqueued_at: float


@dataclass(frozen=True)
class HeldBack:
    """A cluster whose last resync would have removed most of its tags and was held back
    until a later, independent list confirms it (`pipeline.resyncer`)."""

    cluster_id: str
    fingerprint: str
    """The wanted tags the held resync computed: a confirmation must compute the same."""
    since: float
    """When the cluster was first held back (seconds since the epoch)."""
    held_at: float
    """When it was last held back, i.e. when its latest confirmation was queued."""
    pairs_to_remove: int
    """IP-tag pairs the removal would take away, at least (on the target losing most)."""
    confirmations: int
    """Confirmations queued since `since`, to bound a chain of disagreeing lists."""


@dataclass(frozen=True)
class LastWatcherEvent:
    """When a watcher event for a cluster last arrived (the cluster is in the blob name)."""

    at: float
    """Seconds since the epoch."""


@dataclass(frozen=True)
class CanaryRecord:
    """A target's canary as the timer last left it (`pipeline.canaries`)."""

    target: str
    ip: str
    """The canary's address, as registered (the environment's identity chooses it)."""
    tag: str
    """The canary's tag, as registered."""
    registered_at: float | None = None
    """When aksfw last registered it on the target (seconds since the epoch)."""
    checked_at: float | None = None
    """When a check last got the target's answer."""
    forgot_at: float | None = None
    """When a check last found the target had lost its registrations."""
    error: str | None = None
    """Why the last check failed; None after a good one."""
    error_at: float | None = None


@dataclass(frozen=True)
class TableRecord:
    """One read of a target's whole registered-IP table, stored for every cluster's apply
    on that target (`pipeline.shared_tables`); the tags are the blob's body."""

    target: str
    read_at: float
    """When the read began (seconds since the epoch, the reader's clock): it shows every
    write that ended before then."""
    ips: int
    """IPs the target held, of every owner."""
    pairs: int
    """aksfw's IP-tag pairs among them (what the body holds)."""
    stored: bool = True
    """False: aksfw's part was larger than `limits.shared_table_max_bytes` and has no body;
    every apply that compares with the target reads it itself."""


def cut_error(error: str | None) -> str | None:
    """The part of an error a summary keeps (`MAX_ERROR_CHARS` characters)."""
    return error[:MAX_ERROR_CHARS] if error is not None else None


# ---------------------------------------------------------------------- names


class AppliedFolderBlob(Enum):
    """The kinds of blob a listing of `applied/` finds."""

    STATE = "state"
    HELD = "held"
    WATCHER = "watcher"


class ListedName(NamedTuple):
    """What a blob listed under `applied/` is, and the key in its name (`state_key` for a
    state, `cluster_key` for a hold or a watcher event)."""

    kind: AppliedFolderBlob
    key: str


_APPLIED = "applied/"
_ENQUEUED = "enqueued/"
_JSON = ".json"
_HELD_SUFFIX = "/held-back"
_WATCHER_SUFFIX = ".watcher"


def cluster_key(cluster_id: str) -> str:
    """Blob path prefix of a cluster's targets: `<sub>/<group>/<cluster>`, lower-cased.

    Raises:
        InputError: `cluster_id` is not a managed cluster's resource ID.
    """
    resource = managed_cluster_id(cluster_id)
    group = (resource.resource_group or "").lower()
    return f"{resource.subscription}/{group}/{resource.path[1].lower()}"


def state_key(cluster_id: str, target: str) -> str:
    """Blob path for a (cluster, target): `<sub>/<group>/<cluster>/<target>`, lower-cased.

    Raises:
        InputError: `cluster_id` is not a managed cluster's resource ID.
    """
    return f"{cluster_key(cluster_id)}/{target.lower()}"


def applied_blob(cluster_id: str, target: str) -> str:
    """Raises InputError: `cluster_id` is not a managed cluster's resource ID."""
    return f"{_APPLIED}{state_key(cluster_id, target)}{_JSON}"


def enqueued_blob(cluster_id: str, target: str) -> str:
    """Raises InputError: `cluster_id` is not a managed cluster's resource ID."""
    return f"{_ENQUEUED}{state_key(cluster_id, target)}{_JSON}"


def held_blob(cluster_id: str) -> str:
    """Raises InputError: `cluster_id` is not a managed cluster's resource ID."""
    return f"{_APPLIED}{cluster_key(cluster_id)}{_HELD_SUFFIX}"


def watcher_blob(cluster_id: str) -> str:
    """Raises InputError: `cluster_id` is not a managed cluster's resource ID."""
    return f"{_APPLIED}{cluster_key(cluster_id)}{_WATCHER_SUFFIX}"


CANARIES_PREFIX = "canaries/"
"""Where the canaries' records are: `canaries/<target>`."""


def canary_blob(target: str) -> str:
    return f"{CANARIES_PREFIX}{target.lower()}"


def table_blob(target: str) -> str:
    """Where a target's shared table is: `tables/<target>.json`."""
    return f"tables/{target.lower()}{_JSON}"


def applied_prefix(cluster_id: str | None = None) -> str:
    """The prefix that lists every applied state, hold and watcher event (None), or one
    cluster's applied states and hold.

    Raises:
        InputError: `cluster_id` is not a managed cluster's resource ID.
    """
    return _APPLIED if cluster_id is None else f"{_APPLIED}{cluster_key(cluster_id)}/"


def enqueued_prefix(cluster_id: str) -> str:
    """The prefix that lists one cluster's enqueued marks.

    Raises:
        InputError: `cluster_id` is not a managed cluster's resource ID.
    """
    return f"{_ENQUEUED}{cluster_key(cluster_id)}/"


def listed_name(name: str) -> ListedName:
    """What a blob a listing of `applied/` found is, from its name. Whatever is neither a
    hold nor a watcher event counts as a state (an unreadable one is logged when read)."""
    key = name.removeprefix(_APPLIED)
    if key.endswith(_HELD_SUFFIX):
        return ListedName(AppliedFolderBlob.HELD, key.removesuffix(_HELD_SUFFIX))
    if key.endswith(_WATCHER_SUFFIX):
        return ListedName(AppliedFolderBlob.WATCHER, key.removesuffix(_WATCHER_SUFFIX))
    return ListedName(AppliedFolderBlob.STATE, key.removesuffix(_JSON))
