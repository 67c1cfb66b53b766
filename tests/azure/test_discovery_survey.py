"""`ClusterDiscovery.survey` (what `aksfw clusters` shows) against the fake Resource
Manager: the tag name of each monitored cluster, an explicit entry giving a tagged cluster
its alias and selectors, and every cluster or subscription left out with why; while the
app's own read still fails rather than act on an inventory that could not see everything.
"""

from __future__ import annotations

import pytest

from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.identity import StaticToken
from aksfw_core.config import parse_settings
from aksfw_core.errors import AuthError, NonRetryable
from aksfw_core.rules.monitoring import SkipReason
from tests.support.arm import ARM_TOKEN

SUB1 = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
SUB3 = "33333333-3333-3333-3333-333333333333"


def cluster_id(sub: str, group: str, name: str) -> str:
    return (
        f"/subscriptions/{sub}/resourceGroups/{group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )


PROD1 = cluster_id(SUB1, "rg-prod", "aks-prod1")
LOCKED = cluster_id(SUB3, "rg-locked", "aks-locked")
GONE = cluster_id(SUB3, "rg-gone", "aks-gone")


def discovery(arm, **document) -> ClusterDiscovery:
    settings = parse_settings(document, arm_endpoint=arm.url)
    return ClusterDiscovery(settings, StaticToken(ARM_TOKEN))


def seed(arm) -> None:
    arm.add_cluster(SUB1, "rg-prod", "aks-prod1", tags={"aksfw": "enabled"})
    arm.add_cluster(SUB1, "rg-prod", "aks-prod2", tags={"AKSFW": "Enabled"})
    arm.add_cluster(SUB1, "rg-dev", "aks-dev", tags={"aksfw": "disabled"})
    arm.add_cluster(SUB1, "rg-dev", "aks-untagged", tags={"team": "shop"})
    arm.add_cluster(SUB2, "rg-edge", "aks-edge", tags={"aksfw": "enabled"})
    arm.add_cluster(SUB3, "rg-locked", "aks-locked")


def full_survey(arm) -> ClusterDiscovery:
    return discovery(
        arm,
        subscriptions=[SUB1, SUB2],
        discovery={"tag": "aksfw=enabled"},
        clusters=[
            # The same cluster the tag finds: the entry gives it its alias and selector.
            {
                "id": PROD1.upper(),
                "alias": "prod1",
                "selectors": [{"name": "public", "match": "exposure=internet"}],
            },
            {"id": LOCKED},
            {"id": GONE},
        ],
    )


def test_a_survey_names_each_cluster_s_tag_name_and_every_skip_with_its_reason(arm):
    seed(arm)
    arm.inject(403, path_contains=f"/subscriptions/{SUB2}/providers/")
    arm.inject(403, path_contains="/managedClusters/aks-locked")
    report = full_survey(arm).survey()
    tagged = {c.name: c.tag_name for c in report.inventory.clusters}
    assert tagged == {"aks-prod1": "prod1", "aks-prod2": "aks-prod2"}
    (prod1,) = [c for c in report.inventory.clusters if c.name == "aks-prod1"]
    assert [s.name for s in prod1.selectors] == ["public"]
    assert prod1.id == PROD1  # as Resource Manager spells it, once
    reasons = {item.id.rsplit("/", 1)[-1]: item.reason for item in report.skipped}
    assert reasons == {
        "aks-dev": SkipReason.TAG_VALUE,
        "aks-untagged": SkipReason.NO_TAG,
        SUB2: SkipReason.NO_ACCESS,  # its list was refused: aks-edge is not seen at all
        "aks-locked": SkipReason.NO_ACCESS,
        "aks-gone": SkipReason.NOT_FOUND,
    }
    details = {item.id.rsplit("/", 1)[-1]: item.detail for item in report.skipped}
    assert details["aks-dev"] == "its tag is aksfw=disabled, the discovery tag is aksfw=enabled"
    assert "403" in details[SUB2] and "403" in details["aks-locked"]
    document = report.as_json()
    assert [c["tagName"] for c in document["clusters"]] == ["prod1", "aks-prod2"]
    assert {s["reason"] for s in document["skipped"]} == {
        "tag-value-differs",
        "no-discovery-tag",
        "no-access",
        "not-found",
    }


def test_the_app_s_read_fails_where_a_survey_reports_a_refusal(arm):
    seed(arm)
    found = full_survey(arm)
    arm.inject(403, path_contains=f"/subscriptions/{SUB2}/providers/")
    assert found.survey().skipped  # reported, and the cache left alone
    arm.inject(403, path_contains=f"/subscriptions/{SUB2}/providers/")
    with pytest.raises(AuthError, match="403"):
        found.inventory()  # never an inventory missing a subscription's clusters
    arm.inject(403, path_contains="/managedClusters/aks-locked")
    with pytest.raises(AuthError, match="403"):
        found.refresh()
    assert {c.name for c in found.refresh().clusters} == {
        "aks-prod1",
        "aks-prod2",
        "aks-edge",
        "aks-locked",  # listed explicitly: monitored whatever its tags
    }


def test_a_survey_still_stops_on_a_refused_credential_or_a_fault(arm):
    seed(arm)
    with pytest.raises(AuthError):
        ClusterDiscovery(
            parse_settings({"subscriptions": [SUB1]}, arm_endpoint=arm.url), StaticToken("stale")
        ).survey()
    arm.inject(400, path_contains=f"/subscriptions/{SUB1}/providers/")
    with pytest.raises(NonRetryable, match="400"):
        discovery(arm, subscriptions=[SUB1], discovery={"tag": "aksfw"}).survey()


def test_without_a_discovery_tag_every_unlisted_cluster_is_skipped_as_untagged(arm):
    seed(arm)
    report = discovery(arm, subscriptions=[SUB1], clusters=[{"id": PROD1}]).survey()
    assert [c.tag_name for c in report.inventory.clusters] == ["aks-prod1"]
    assert {item.reason for item in report.skipped} == {SkipReason.NO_TAG}
    assert len(report.skipped) == 3
    assert "discovery by tag is off" in report.skipped[0].detail
