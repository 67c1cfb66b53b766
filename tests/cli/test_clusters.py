"""`aksfw clusters` against the fake Resource Manager: the inventory that `resolve-event
--inventory` reads back, with each monitored cluster's tag name and the clusters it
skipped with why; with `--table`, the same for a person."""

from __future__ import annotations

import json

import pytest

from aksfw_local.fakes.arm import FakeArm
from aksfw_local.stack import EVENTS
from tests.support.arm import ARM_TOKEN
from tests.support.cli import run

SUB1 = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
PROD1 = (
    f"/subscriptions/{SUB1}/resourceGroups/rg-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
)
CONFIG = {
    "subscriptions": [SUB1, SUB2],
    "discovery": {"tag": "aksfw=enabled"},
    "clusters": [
        {
            "id": PROD1,
            "alias": "prod1",
            "selectors": [{"name": "public", "match": "exposure=internet"}],
        }
    ],
}


@pytest.fixture
def arm(monkeypatch, tmp_path):
    """The fake Resource Manager, trusted, and the configuration `aksfw` reads."""
    with FakeArm(token=ARM_TOKEN) as fake:
        bundle = tmp_path / "arm-ca.pem"
        bundle.write_bytes(fake.ca_pem)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        monkeypatch.setenv("AKSFW_ARM_ENDPOINT", fake.url)
        monkeypatch.setenv("AKSFW_DEV_TOKEN", ARM_TOKEN)
        monkeypatch.setenv("AKSFW_CONFIG", json.dumps(CONFIG))
        monkeypatch.delenv("AKSFW_CONFIG_FILE", raising=False)
        fake.add_cluster(SUB1, "rg-prod", "aks-prod1", tags={"aksfw": "enabled"})
        fake.add_cluster(SUB1, "rg-prod", "aks-prod2", tags={"aksfw": "enabled"})
        fake.add_cluster(SUB1, "rg-dev", "aks-dev", tags={"aksfw": "disabled"})
        fake.add_cluster(SUB1, "rg-dev", "aks-lab")
        fake.add_cluster(SUB2, "rg-edge", "aks-edge", tags={"aksfw": "enabled"})
        fake.inject(403, path_contains=f"/subscriptions/{SUB2}/providers/")
        yield fake
    assert fake.errors == []


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def test_clusters_shows_each_tag_name_and_the_skipped_clusters_with_why(arm, capsys):
    code, out, err = run(capsys, "clusters", "--table")
    assert code == 0, err
    tables = out.split("\n\n")
    assert rows(tables[0]) == [
        ["CLUSTER", "RESOURCE", "GROUP", "SUBSCRIPTION", "TAG", "NAME", "TAGS"],
        ["aks-prod1", "rg-prod", SUB1, "prod1", "aks.prod1.*,", "aks_public.prod1.*"],
        ["aks-prod2", "rg-prod", SUB1, "aks-prod2", "aks.aks-prod2.*"],
    ]
    skipped = {line.split()[0]: line for line in tables[1].splitlines()[1:]}
    assert set(skipped) == {"aks-dev", "aks-lab", "(subscription)"}
    assert "its tag is aksfw=disabled, the discovery tag is aksfw=enabled" in skipped["aks-dev"]
    assert "no tag aksfw (the discovery tag is aksfw=enabled)" in skipped["aks-lab"]
    assert SUB2 in skipped["(subscription)"] and "no access" in skipped["(subscription)"]


def test_clusters_json_is_the_inventory_resolve_event_reads_back(arm, capsys, tmp_path):
    code, out, err = run(capsys, "clusters")
    assert code == 0
    document = json.loads(out)
    assert [(c["name"], c["tagName"]) for c in document["clusters"]] == [
        ("aks-prod1", "prod1"),
        ("aks-prod2", "aks-prod2"),
    ]
    assert {(s["id"].rsplit("/", 1)[-1], s["reason"]) for s in document["skipped"]} == {
        ("aks-dev", "tag-value-differs"),
        ("aks-lab", "no-discovery-tag"),
        (SUB2, "no-access"),
    }
    # On its way to a file, a subscription that could not be read is still said.
    assert f"warning: skipped /subscriptions/{SUB2}: " in err and "403" in err
    saved = tmp_path / "clusters.json"
    saved.write_text(out)
    arm.reset_requests()
    event = str(EVENTS / "lb-write.eventgrid.json")
    code, out, err = run(capsys, "resolve-event", event, "--inventory", str(saved))
    assert code == 0, err
    (change,) = json.loads(out)["clusters"]
    assert change["action"] == "resync" and change["id"] == PROD1
    assert arm.requests == []  # offline


def test_a_table_saved_as_an_inventory_is_refused_saying_how_to_write_one(arm, capsys, tmp_path):
    code, out, _ = run(capsys, "clusters", "--table")
    saved = tmp_path / "clusters.txt"
    saved.write_text(out)
    event = str(EVENTS / "lb-write.eventgrid.json")
    code, _, err = run(capsys, "resolve-event", event, "--inventory", str(saved))
    assert code == 2
    assert "is not JSON" in err and "`aksfw clusters` writes an inventory" in err
