"""Applied-state summaries and enqueued marks as blob metadata: round trips, ASCII, size."""

from __future__ import annotations

import pytest

from aksfw_core.pipeline.state import (
    MAX_ERROR_CHARS,
    AppliedState,
    EnqueuedMark,
    StateSummary,
    mark_from_metadata,
    mark_metadata,
    summary_from_metadata,
    summary_metadata,
)

# Resource group names may hold Unicode letters; metadata values must be ASCII.
CLUSTER = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-Zürich_(prod)"
    "/providers/Microsoft.ContainerService/managedClusters/aks1"
)
TAGS = {"10.0.0.1": frozenset({"aks.aks1.web", "aks.aks1.svc.app.web"}), "10.0.0.2": frozenset()}


def state(**overrides: object) -> AppliedState:
    values: dict[str, object] = {
        "cluster_id": CLUSTER,
        "tag_name": "aks1",
        "target": "007000000001",
        "version": 1_700_000_000_000_000_000,
        "fingerprint": "f" * 64,
        "tags": TAGS,
        "applied_at": 1_700_000_000.25,
    }
    values.update(overrides)
    return AppliedState(**values)  # type: ignore[arg-type]


def metadata_bytes(metadata: dict[str, str]) -> int:
    return sum(len(name) + len(value) for name, value in metadata.items())


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
    metadata = summary_metadata(StateSummary.of(applied))
    assert all(name.isidentifier() and name.islower() for name in metadata)
    assert all(value.isascii() and value.isprintable() and value for value in metadata.values())
    assert metadata_bytes(metadata) < 8 * 1024
    summary = summary_from_metadata(metadata)
    assert summary == StateSummary.of(applied)
    assert (summary.cluster_id, summary.ips, summary.tags) == (
        CLUSTER,
        len(applied.tags),
        2 * bool(applied.tags),
    )
    if applied.last_error is not None:
        assert summary.last_error == applied.last_error[:MAX_ERROR_CHARS]


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        {"summary": "9", "cluster": CLUSTER},
        {**summary_metadata(StateSummary.of(state())), "version": "x"},
        {k: v for k, v in summary_metadata(StateSummary.of(state())).items() if k != "ips"},
    ],
    ids=["none", "empty", "unknown-schema", "bad-number", "missing-field"],
)
def test_metadata_without_a_readable_summary_counts_as_none(metadata):
    assert summary_from_metadata(metadata) is None


def test_metadata_names_are_read_whatever_their_case():
    metadata = summary_metadata(StateSummary.of(state()))
    shouted = {name.upper(): value for name, value in metadata.items()}
    assert summary_from_metadata(shouted) == StateSummary.of(state())


def test_an_enqueued_mark_survives_metadata():
    mark = EnqueuedMark(CLUSTER, "panorama", 7, "a" * 64, 1_700_000_000.5)
    metadata = mark_metadata(mark)
    assert all(value.isascii() for value in metadata.values())
    assert mark_from_metadata(metadata) == mark
    assert mark_from_metadata({"cluster": CLUSTER}) is None  # a mark from before: none
