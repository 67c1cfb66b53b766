"""Which clusters discovery monitors by their Azure tags, and the reasons it gives for the
ones it leaves out (`aksfw_core.rules.monitoring`), as tables."""

from __future__ import annotations

import pytest

from aksfw_core.rules.monitoring import (
    Skipped,
    SkipReason,
    discovery_tag_skip,
    skip_for_refusal,
)

NO_TAG, TAG_VALUE = SkipReason.NO_TAG, SkipReason.TAG_VALUE


@pytest.mark.parametrize(
    ("tags", "key", "value", "reason", "words"),
    [
        ({"aksfw": "enabled"}, "aksfw", None, None, None),
        ({"aksfw": ""}, "aksfw", None, None, None),  # a key alone matches any value
        ({"AKSFW": "Enabled"}, "aksfw", "enabled", None, None),  # names and values: any case
        ({"aksfw": "enabled", "team": "shop"}, "aksfw", "ENABLED", None, None),
        ({"team": "shop"}, "aksfw", None, NO_TAG, "no tag aksfw (the discovery tag is aksfw)"),
        (None, "aksfw", "on", NO_TAG, "no tag aksfw (the discovery tag is aksfw=on)"),
        ("not a mapping", "aksfw", None, NO_TAG, "no tag aksfw"),
        (
            {"aksfw": "disabled"},
            "aksfw",
            "enabled",
            TAG_VALUE,
            "its tag is aksfw=disabled, the discovery tag is aksfw=enabled",
        ),
        ({"aksfw": "x" * 500}, "aksfw", "on", TAG_VALUE, f"aksfw={'x' * 80},"),
        ({"aksfw": "enabled"}, None, None, NO_TAG, "discovery by tag is off"),
    ],
)
def test_the_discovery_tag_decides_and_says_why_not(tags, key, value, reason, words):
    verdict = discovery_tag_skip(tags, key, value)
    if reason is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert verdict[0] is reason and words in verdict[1]
        assert "x" * 81 not in verdict[1]  # a value from Azure is cut short


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (403, SkipReason.NO_ACCESS),
        (404, SkipReason.NOT_FOUND),
        (401, None),  # the credential itself is refused: every read would fail alike
        (429, None),
        (500, None),
        (None, None),  # no answer at all
    ],
)
def test_only_a_refusal_or_a_missing_resource_is_skipped_rather_than_failed(status, reason):
    assert skip_for_refusal(status) is reason


def test_a_skip_prints_as_documented():
    skipped = Skipped("/subscriptions/s", SkipReason.NO_ACCESS, "refused (HTTP 403)")
    assert skipped.as_json() == {
        "id": "/subscriptions/s",
        "reason": "no-access",
        "detail": "refused (HTTP 403)",
    }
