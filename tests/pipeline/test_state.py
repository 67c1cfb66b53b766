"""What aksfw remembers, without Storage: blob names, and every record's stored form
(metadata and JSON bodies) as tables: round trips, ASCII, size, and blobs as written by
aksfw before the codec was one (captured from Azurite) reading back unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.pipeline.state import (
    MAX_ERROR_CHARS,
    AppliedFolderBlob,
    AppliedState,
    EnqueuedMark,
    HeldBack,
    LastWatcherEvent,
    ListedName,
    StateSummary,
    applied_blob,
    applied_prefix,
    cluster_key,
    enqueued_blob,
    enqueued_prefix,
    held_blob,
    listed_name,
    state_key,
    watcher_blob,
)
from aksfw_core.pipeline.state_codec import (
    applied_body,
    applied_from_body,
    from_metadata,
    mark_body,
    to_metadata,
)

# Resource group names may hold Unicode letters; metadata values must be ASCII.
CLUSTER = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-Zürich_(prod)"
    "/providers/Microsoft.ContainerService/managedClusters/AKS1"
)
CLUSTER_IN_METADATA = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-Z%C3%BCrich_(prod)"
    "/providers/Microsoft.ContainerService/managedClusters/AKS1"
)
KEY = "11111111-1111-1111-1111-111111111111/rg-zürich_(prod)/aks1"
TAGS = {"10.0.0.1": frozenset({"aks.aks1.web", "aks.aks1.svc.app.web"}), "10.0.0.2": frozenset()}
ERROR = "Panorama refused 10.0.0.1: «ungültig» 100%\r\nnext"


def state(**overrides: object) -> AppliedState:
    values: dict[str, object] = {
        "cluster_id": CLUSTER,
        "tag_name": "aks1",
        "target": "Panorama",
        "version": 1_700_000_000_000_000_000,
        "fingerprint": "f" * 64,
        "tags": TAGS,
        "applied_at": 1_700_000_000.25,
    }
    values.update(overrides)
    return AppliedState(**values)  # type: ignore[arg-type]


def metadata_bytes(metadata: dict[str, str]) -> int:
    return sum(len(name) + len(value) for name, value in metadata.items())


# ---------------------------------------------------------------------- as written before

# Listed from Azurite after the code before this codec (state.py and state_store.py with a
# codec per record) saved these records through StateStore.
WRITTEN_BEFORE = [
    pytest.param(
        {
            "version": "1700000000000000000",
            "summary": "1",
            "cluster": CLUSTER_IN_METADATA,
            "ips": "2",
            "dirty": "false",
            "tagname": "aks1",
            "appliedat": "1700000000.25",
            "missingsince": "1700000900.125",
            "target": "Panorama",
            "fingerprint": "f" * 64,
            "tags": "2",
        },
        dataclasses.replace(StateSummary.of(state()), missing_since=1_700_000_900.125),
        id="summary-unmonitored",
    ),
    pytest.param(
        {
            "version": "0",
            "summary": "1",
            "cluster": CLUSTER_IN_METADATA,
            "lasterrorat": "1700000002.0",
            "ips": "0",
            "dirty": "true",
            "tagname": "aks1",
            "appliedat": "1700000001.5",
            "target": "007000000001",
            "tags": "0",
            "lasterror": "Panorama%20refused%2010.0.0.1:%20%C2%ABung%C3%BCltig%C2%BB%20100%25"
            "%0D%0Anext",
        },
        StateSummary.of(
            state(
                target="007000000001",
                version=0,
                fingerprint="",
                tags={},
                applied_at=1_700_000_001.5,
                dirty=True,
                last_error=ERROR,
                last_error_at=1_700_000_002.0,
            )
        ),
        id="summary-first-apply-failed",
    ),
    pytest.param(
        {
            "version": "7",
            "cluster": CLUSTER_IN_METADATA,
            "mark": "1",
            "target": "Panorama",
            "fingerprint": "a" * 64,
            "enqueuedat": "1700000000.5",
        },
        EnqueuedMark(CLUSTER, "Panorama", 7, "a" * 64, 1_700_000_000.5),
        id="mark",
    ),
    pytest.param(
        {
            "since": "1700000100.0",
            "cluster": CLUSTER_IN_METADATA,
            "confirmations": "2",
            "heldat": "1700000200.75",
            "fingerprint": "b" * 64,
            "held": "1",
            "pairs": "42",
        },
        HeldBack(CLUSTER, "b" * 64, 1_700_000_100.0, 1_700_000_200.75, 42, 2),
        id="held",
    ),
    pytest.param({"at": "1700000300.0625"}, LastWatcherEvent(1_700_000_300.0625), id="watcher"),
]


@pytest.mark.parametrize(("metadata", "record"), WRITTEN_BEFORE)
def test_metadata_written_before_reads_back_and_is_written_the_same(metadata, record):
    assert from_metadata(type(record), metadata) == record
    assert to_metadata(record) == metadata


APPLIED_BODY_BEFORE = (
    b'{"cluster":"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/'
    b'rg-Z\\u00fcrich_(prod)/providers/Microsoft.ContainerService/managedClusters/AKS1",'
    b'"tagName":"aks1","target":"Panorama","version":1700000000000000000,'
    b'"fingerprint":"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",'
    b'"appliedAt":1700000000.25,"dirty":false,"lastError":null,"lastErrorAt":null,'
    b'"missingSince":null,"tags":{"10.0.0.1":["aks.aks1.svc.app.web","aks.aks1.web"],'
    b'"10.0.0.2":[]}}'
)
MARK_BODY_BEFORE = (
    b'{"cluster":"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/'
    b'rg-Z\\u00fcrich_(prod)/providers/Microsoft.ContainerService/managedClusters/AKS1",'
    b'"target":"Panorama","version":7,'
    b'"fingerprint":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",'
    b'"enqueuedAt":1700000000.5}'
)


def test_bodies_written_before_read_back_and_are_written_the_same():
    assert applied_from_body(APPLIED_BODY_BEFORE) == state()
    assert applied_body(state()) == APPLIED_BODY_BEFORE
    assert mark_body(EnqueuedMark(CLUSTER, "Panorama", 7, "a" * 64, 1_700_000_000.5)) == (
        MARK_BODY_BEFORE
    )


# ---------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    "applied",
    [
        state(),
        state(dirty=True, last_error="Retryable: Panorama unreachable", last_error_at=1.5),
        state(missing_since=1_700_000_900.0, tags={}),
        state(version=0, fingerprint="", dirty=True, last_error="Retryable: x", last_error_at=2.0),
        state(last_error="Panorama refused register 10.0.0.1: «ungültig»\r\n" * 40),
    ],
    ids=["clean", "dirty", "unmonitored", "first-apply-failed", "long-non-ascii-error"],
)
def test_a_summary_survives_metadata_as_ascii_under_the_size_limit(applied):
    metadata = to_metadata(StateSummary.of(applied))
    assert all(name.isidentifier() and name.islower() for name in metadata)
    assert all(value.isascii() and value.isprintable() and value for value in metadata.values())
    assert metadata_bytes(metadata) < 8 * 1024
    summary = from_metadata(StateSummary, metadata)
    assert summary == StateSummary.of(applied)
    assert (summary.cluster_id, summary.ips, summary.tags) == (
        CLUSTER,
        len(applied.tags),
        2 * bool(applied.tags),
    )
    if applied.last_error is not None:
        assert summary.last_error == applied.last_error[:MAX_ERROR_CHARS]


def test_an_error_too_long_for_metadata_once_encoded_is_cut_until_it_fits():
    summary = dataclasses.replace(StateSummary.of(state()), last_error="«»" * 150)
    metadata = to_metadata(summary)
    assert len(metadata["lasterror"]) <= 1200
    assert from_metadata(StateSummary, metadata).last_error == "«»" * 75


@pytest.mark.parametrize(
    ("kind", "metadata"),
    [
        (StateSummary, None),
        (StateSummary, {}),
        (StateSummary, {"summary": "9", "cluster": CLUSTER}),
        (StateSummary, {**to_metadata(StateSummary.of(state())), "version": "x"}),
        (StateSummary, {**to_metadata(StateSummary.of(state())), "appliedat": "soon"}),
        (StateSummary, {k: v for k, v in to_metadata(StateSummary.of(state())).items() if k != "ips"}),
        (EnqueuedMark, {"cluster": CLUSTER}),  # a mark from before marks had a schema
        (EnqueuedMark, to_metadata(StateSummary.of(state()))),
        (HeldBack, {**to_metadata(HeldBack(CLUSTER, "b", 1.0, 2.0, 3, 1)), "pairs": "1.5"}),
        (LastWatcherEvent, {}),
        (LastWatcherEvent, {"at": "yesterday"}),
    ],
    ids=[
        "none", "empty", "unknown-schema", "bad-int", "bad-time", "missing-field",
        "mark-from-before", "summary-is-no-mark", "bad-pairs", "no-watcher-time", "bad-watcher-time",
    ],
)  # fmt: skip
def test_metadata_without_a_readable_record_counts_as_none(kind, metadata):
    assert from_metadata(kind, metadata) is None


@pytest.mark.parametrize(
    "record",
    [
        StateSummary.of(state(dirty=True, last_error=ERROR, last_error_at=3.0, missing_since=4.0)),
        EnqueuedMark(CLUSTER, "007000000001", 7, "a" * 64, 1_700_000_000.5),
        HeldBack(CLUSTER, "b" * 64, 1.0, 2.5, 10, 3),
        LastWatcherEvent(1_700_000_000.125),
    ],
    ids=lambda record: type(record).__name__,
)
def test_every_record_survives_metadata_whatever_the_case_of_its_names(record):
    metadata = to_metadata(record)
    assert all(value.isascii() and value for value in metadata.values())
    assert from_metadata(type(record), metadata) == record
    shouted = {name.upper(): value for name, value in metadata.items()}
    assert from_metadata(type(record), shouted) == record


# ---------------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    "applied",
    [state(), state(dirty=True, last_error=ERROR, last_error_at=2.0, missing_since=3.0)],
    ids=["clean", "dirty"],
)
def test_an_applied_state_survives_its_body(applied):
    assert applied_from_body(applied_body(applied)) == applied


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not an object"),
        (b'{"cluster": "x"}', "malformed"),
        (APPLIED_BODY_BEFORE.replace(b'"version":1700000000000000000', b'"version":"v"'), "malformed"),
        (APPLIED_BODY_BEFORE.replace(b'"lastErrorAt":null', b'"lastErrorAt":"x"'), "malformed"),
        (b'{"cluster":"c","tagName":"t","target":"x","version":1,"fingerprint":"f","tags":[1]}', "malformed"),
    ],
    ids=["not-json", "not-an-object", "missing-fields", "bad-version", "bad-time", "bad-tags"],
)  # fmt: skip
def test_an_unreadable_applied_state_needs_an_operator(body, message):
    with pytest.raises(NonRetryable, match=message):
        applied_from_body(body)


def test_a_body_from_before_applied_at_was_kept_reads_as_never():
    legacy = APPLIED_BODY_BEFORE.replace(b'"appliedAt":1700000000.25,', b"")
    assert applied_from_body(legacy).applied_at == 0.0


# ---------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (cluster_key(CLUSTER), KEY),
        (state_key(CLUSTER, "Panorama"), f"{KEY}/panorama"),
        (applied_blob(CLUSTER, "Panorama"), f"applied/{KEY}/panorama.json"),
        (enqueued_blob(CLUSTER, "007000000001"), f"enqueued/{KEY}/007000000001.json"),
        (held_blob(CLUSTER), f"applied/{KEY}/held-back"),
        (watcher_blob(CLUSTER), f"applied/{KEY}.watcher"),
        (applied_prefix(), "applied/"),
        (applied_prefix(CLUSTER), f"applied/{KEY}/"),
        (enqueued_prefix(CLUSTER), f"enqueued/{KEY}/"),
    ],
)
def test_blob_names_are_lower_cased_paths_by_cluster_and_target(name, expected):
    assert name == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (applied_blob(CLUSTER, "Panorama"), (AppliedFolderBlob.STATE, f"{KEY}/panorama")),
        (applied_blob(CLUSTER, "held-back"), (AppliedFolderBlob.STATE, f"{KEY}/held-back")),
        (held_blob(CLUSTER), (AppliedFolderBlob.HELD, KEY)),
        (watcher_blob(CLUSTER), (AppliedFolderBlob.WATCHER, KEY)),
        (f"applied/{KEY}/stray", (AppliedFolderBlob.STATE, f"{KEY}/stray")),
    ],
    ids=["state", "target-named-held-back", "held", "watcher", "stray-counts-as-state"],
)
def test_a_listed_name_says_what_the_blob_is(name, expected):
    assert listed_name(name) == ListedName(*expected)


def test_a_name_needs_a_managed_cluster():
    with pytest.raises(InputError):
        applied_blob("/subscriptions/x/resourceGroups/rg", "panorama")
