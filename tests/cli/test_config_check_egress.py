"""`aksfw config check` with egress tags: `egressTags` (top level, and per cluster) shows
both egress patterns and what each is for; off, nothing of them shows. The setting is a
boolean like `nodeSubnets`, and a misspelt one is refused with the key it was meant as."""

from __future__ import annotations

import json

from tests.support.cli import run

SUB = "11111111-1111-1111-1111-111111111111"
PROD = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"  # fmt: skip
EDGE = f"/subscriptions/{SUB}/resourceGroups/rg-edge/providers/Microsoft.ContainerService/managedClusters/aks-edge"  # fmt: skip
DOCUMENT = {
    "subscriptions": [SUB],
    "discovery": {"tag": "aksfw"},
    "egressTags": True,
    "clusters": [{"id": PROD, "alias": "prod1"}, {"id": EDGE, "egressTags": False}],
    "panorama": {"host": "panorama.example.com"},
}


def check(capsys, tmp_path, document, *argv):
    path = tmp_path / "aksfw.json"
    path.write_text(json.dumps(document))
    return run(capsys, "config", "check", str(path), *argv)


def test_the_egress_patterns_show_where_egress_tags_are_on(capsys, tmp_path):
    code, out, _ = check(capsys, tmp_path, DOCUMENT, "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["discovery"]["egressTags"] is True
    assert summary["discovery"]["tags"][-2:] == [
        "aks.<name>.egress",
        "aks.<name>.egress.<namespace>.<gateway>",
    ]
    prod, edge = summary["clusters"]
    assert prod["egressTags"] is True
    assert prod["tags"][-2:] == ["aks.prod1.egress", "aks.prod1.egress.<namespace>.<gateway>"]
    assert edge["egressTags"] is False
    assert not any("egress" in tag for tag in edge["tags"])


def test_the_text_says_what_each_egress_pattern_is_for(capsys, tmp_path):
    code, out, _ = check(capsys, tmp_path, DOCUMENT)
    assert code == 0
    lines = out.splitlines()
    (outbound,) = [line for line in lines if line.strip().startswith("aks.prod1.egress ")]
    assert outbound.endswith("the cluster's outbound IPs and prefixes (egressTags)")
    (gateways,) = [line for line in lines if "aks.prod1.egress.<namespace>" in line]
    assert gateways.endswith("each Static Egress Gateway's prefix (egressTags)")
    assert not any("aks.aks-edge.egress" in line for line in lines)


def test_a_misspelt_or_non_boolean_setting_is_refused(capsys, tmp_path):
    code, _, err = check(capsys, tmp_path, {**DOCUMENT, "egressTags": "yes"})
    assert code == 2 and "config.egressTags" in err
    document = {**DOCUMENT, "clusters": [{"id": PROD, "egresTags": True}]}
    code, _, err = check(capsys, tmp_path, document)
    assert code == 2 and "did you mean egressTags?" in err
