"""What one read of a target's table keeps for every aksfw cluster (`rules.plan.by_owner`,
`rules.tags.owner_name`), and the `compareSince` a resync and its snapshots carry."""

from __future__ import annotations

import json

import pytest

from aksfw_core.rules.messages import (
    ResyncRequest,
    Snapshot,
    decode,
    decode_payload,
    encode,
    encode_payload,
)
from aksfw_core.rules.plan import by_owner
from aksfw_core.rules.tags import owner_name, ownership

CLUSTER = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"


@pytest.mark.parametrize(
    ("tag", "owner"),
    [
        ("aks.prod1.web", "prod1"),
        ("aks.prod1.svc.app.web", "prod1"),
        ("aks.prod1.node_subnet", "prod1"),
        ("aks.prod-1_a.egress.ns.gw", "prod-1_a"),
        ("aks_frontend.prod1.web", "prod1"),
        ("aks_" + "s" * 31 + ".prod1.web", "prod1"),
        ("aks_" + "s" * 32 + ".prod1.web", None),  # no selector name is that long
        ("aks.prod1", None),
        ("aks..web", None),
        ("aksfw.canary.0123abcd", None),  # the canary is no cluster's
        ("corp.other", None),
        ("AKS.prod1.web", None),
        ("aks_.prod1.web", None),
    ],
)
def test_the_owner_of_a_tag_is_the_one_cluster_whose_ownership_matches_it(tag, owner):
    assert owner_name(tag) == owner
    if owner is not None:
        assert ownership(owner).match(tag)
    for name in ("prod1", "prod-1_a", "aks", "s"):
        if ownership(name).match(tag):
            assert owner == name


def test_a_table_by_owner_keeps_every_clusters_tags_and_no_other_owners():
    registered = {
        "1.1.1.1": frozenset({"aks.a.web", "aks_sel.b.web", "corp.keep"}),
        "1.1.1.2": frozenset({"corp.only"}),
        "1.1.1.3": frozenset({"aks.a.api", "aks.a.svc.app.api"}),
        "100::1": frozenset({"aksfw.canary.0123"}),
    }
    assert by_owner(registered) == {
        "a": {
            "1.1.1.1": frozenset({"aks.a.web"}),
            "1.1.1.3": frozenset({"aks.a.api", "aks.a.svc.app.api"}),
        },
        "b": {"1.1.1.1": frozenset({"aks_sel.b.web"})},
    }


def test_compare_since_is_carried_only_when_set_and_read_only_when_plausible():
    request = ResyncRequest(CLUSTER, "timer", audit=True, compare_since=1_800_000_000.5)
    assert decode(encode(request)) == request
    assert "compareSince" not in json.loads(encode(ResyncRequest(CLUSTER, "timer")))
    snapshot = Snapshot(CLUSTER, "aks1", "panorama", 1, {}, audit=True, compare_since=1.8e9)
    assert decode(encode(snapshot)) == snapshot
    assert decode_payload(encode_payload(snapshot), "panorama") == snapshot
    document = json.loads(encode(request))
    for implausible in ("soon", -1, 0, 1e300, True, None):
        read = decode(json.dumps({**document, "compareSince": implausible}))
        assert isinstance(read, ResyncRequest) and read.compare_since is None  # never poisoned
