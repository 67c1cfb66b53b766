"""Which stored table of a target may serve a cluster's comparison with it
(`decisions.table_since`, `table_serves`, `last_write`), as tables."""

from __future__ import annotations

import pytest

from aksfw_core.limits import Limits
from aksfw_core.pipeline.decisions import last_write, table_serves, table_since
from aksfw_core.pipeline.state import AppliedState, TableRecord

NOW = 1_800_000_000.0
LIMITS = Limits()  # max age 60 s, clock skew 5 s, audit interval 3,600 s


@pytest.mark.parametrize(
    ("compare_since", "wrote_at", "since", "why"),
    [
        (None, None, NOW - 60, "no audit or repair: at most the max age old"),
        (NOW - 600, None, NOW - 600, "an audit that began 10 minutes ago: any read since"),
        (NOW - 3600, None, NOW - 3600, "one audit interval back at most"),
        (NOW - 3601, None, NOW - 60, "an older start is not believed: the max age"),
        (NOW + 30, None, NOW, "a start ahead of this clock counts as now"),
        (None, NOW - 3600, NOW - 60, "a write long ago does not matter"),
        (NOW - 600, NOW - 30, NOW - 25, "a write during the audit: a read after it, skew added"),
        (None, NOW - 2, NOW + 3, "a write just now: only a read yet to begin"),
    ],
)
def test_a_table_serves_a_comparison_read_after_the_clusters_write_and_since_it_began(
    compare_since, wrote_at, since, why
):
    found = table_since(compare_since=compare_since, wrote_at=wrote_at, now=NOW, limits=LIMITS)
    assert found == pytest.approx(since), why


@pytest.mark.parametrize(
    ("read_at", "stored", "serves"),
    [(NOW - 10, True, True), (NOW - 20, True, True), (NOW - 21, True, False), (NOW, False, True)],
)
def test_a_stored_table_serves_when_read_since(read_at, stored, serves):
    record = TableRecord("007000000001", read_at, ips=5_100, pairs=12_000, stored=stored)
    assert table_serves(record, NOW - 20) is serves
    assert table_serves(None, NOW - 20) is False


@pytest.mark.parametrize(
    ("applied_at", "error_at", "wrote"),
    [(NOW - 100, None, NOW - 100), (NOW - 100, NOW - 5, NOW - 5), (NOW - 5, NOW - 100, NOW - 5)],
)
def test_a_clusters_last_write_is_its_last_apply_or_failed_apply(applied_at, error_at, wrote):
    state = AppliedState("c", "aks1", "panorama", 1, "f", applied_at=applied_at,
                         last_error_at=error_at)  # fmt: skip
    assert last_write(state) == wrote
    assert last_write(None) is None
