"""`--namespace-tags` and `--annotation-tags-in` on `aksfw tags` and `aksfw sync`, the one tag
rule the app uses; and `aksfw config check` showing the patterns `namespaceTags` and
`annotationTags` give."""

from __future__ import annotations

import json

from aksfw_local.fakes.kube_api import service
from tests.support.cli import run

ANNOTATED = {
    "kind": "List",
    "items": [
        service("web", "shop", ips=["20.0.0.1"], annotations={"aksfw.io/tags": "pci, tier1"}),
        service("db", "dev", ips=["20.0.0.2"], annotations={"aksfw.io/tags": "pci"}),
        service("old", "dev", ips=["20.0.0.3"], annotations={"aksfw.io/ignore": "true"}),
    ],
}
SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"


def saved(tmp_path, document=ANNOTATED) -> str:
    path = tmp_path / "services.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_tags_without_options_adds_no_opt_in_tag_and_says_why_annotations_did_nothing(
    capsys, tmp_path
):
    code, out, err = run(capsys, "tags", "--cluster", "c1", saved(tmp_path))
    assert code == 0
    assert json.loads(out) == {"20.0.0.1": ["aks.c1.web"], "20.0.0.2": ["aks.c1.db"]}
    assert "Service shop/web: annotation aksfw.io/tags ignored in namespace shop" in err
    assert "annotation tags are off" in err


def test_tags_with_namespace_tags_and_one_open_namespace(capsys, tmp_path):
    code, out, err = run(
        capsys, "tags", "--cluster", "c1", "--namespace-tags",
        "--annotation-tags-in", "shop", saved(tmp_path),
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == {
        "20.0.0.1": ["aks.c1.ns.shop", "aks.c1.tag.pci", "aks.c1.tag.tier1", "aks.c1.web"],
        "20.0.0.2": ["aks.c1.db", "aks.c1.ns.dev"],
    }
    assert err.count("warning:") == 1
    assert "Service dev/db: annotation aksfw.io/tags ignored in namespace dev" in err
    assert "open to namespace shop only" in err


def test_annotation_tags_in_is_repeatable_and_star_opens_every_namespace(capsys, tmp_path):
    for opened in (["shop", "dev"], ["*"]):
        argv = [arg for namespace in opened for arg in ("--annotation-tags-in", namespace)]
        code, out, err = run(capsys, "tags", "--cluster", "c1", *argv, saved(tmp_path))
        assert (code, err) == (0, "")
        assert json.loads(out)["20.0.0.2"] == ["aks.c1.db", "aks.c1.tag.pci"]


def test_a_bad_namespace_exits_2_with_one_line(capsys, tmp_path):
    code, out, err = run(
        capsys, "tags", "--cluster", "c1", "--annotation-tags-in", "Shop", saved(tmp_path)
    )
    assert (code, out) == (2, "")
    assert err == (
        "aksfw: --annotation-tags-in: 'Shop' is not a namespace name (a DNS-1123 label) or '*'\n"
    )


def test_sync_registers_the_opt_in_tags_and_unregisters_an_ignored_service(
    capsys, tmp_path, panorama, api_key
):
    panorama.seed("20.0.0.3", ["aks.c1.old", "aks.c1.ns.dev", "corp.keep"])
    code, out, _ = run(
        capsys, "sync", "--cluster", "c1", "--services", saved(tmp_path), "--namespace-tags",
        "--annotation-tags-in", "shop", "--panorama", panorama.url, "--allow-mass-removal",
    )  # fmt: skip
    assert code == 0, out
    assert panorama.registered() == {
        "20.0.0.1": {"aks.c1.web", "aks.c1.ns.shop", "aks.c1.tag.pci", "aks.c1.tag.tier1"},
        "20.0.0.2": {"aks.c1.db", "aks.c1.ns.dev"},
        "20.0.0.3": {"corp.keep"},  # the ignored Service's tags go; another's stays
    }


def config_check(capsys, tmp_path, document, *argv):
    path = tmp_path / "aksfw.json"
    path.write_text(json.dumps({"panorama": {"host": "panorama.example.com"}, **document}))
    return run(capsys, "config", "check", str(path), *argv)


def test_config_check_shows_the_namespace_and_annotation_patterns(capsys, tmp_path):
    document = {
        "subscriptions": [SUB],
        "discovery": {"tag": "aksfw"},
        "namespaceTags": True,
        "clusters": [{"id": CLUSTER, "alias": "prod1", "annotationTags": {"namespaces": ["shop"]}}],
    }
    code, out, err = config_check(capsys, tmp_path, document)
    assert (code, err) == (0, "")
    assert (
        "    aks.<name>.ns.<namespace>       the namespace of each such Service (namespaceTags)"
        in out
    )
    assert "    aks.prod1.ns.<namespace>       the namespace of each such Service" in out
    assert (
        "    aks.prod1.tag.<tag>            each value of a Service's aksfw.io/tags annotation, "
        "in namespace shop (annotationTags)" in out
    )
    code, out, _ = config_check(capsys, tmp_path, document, "--json")
    summary = json.loads(out)
    assert summary["discovery"]["namespaceTags"] is True
    assert summary["discovery"]["annotationTags"] == {"namespaces": []}
    (prod,) = summary["clusters"]
    assert (prod["namespaceTags"], prod["annotationTags"]) == (True, {"namespaces": ["shop"]})
    assert prod["tags"][-2:] == ["aks.prod1.ns.<namespace>", "aks.prod1.tag.<tag>"]


def test_config_check_warns_when_a_long_alias_leaves_no_room_for_a_namespace(capsys, tmp_path):
    alias = "a" * 60
    document = {"clusters": [{"id": CLUSTER, "alias": alias, "namespaceTags": True}]}
    code, out, _ = config_check(capsys, tmp_path, document, "--json")
    assert code == 0
    assert (
        f"config.clusters[0]: aks.{alias}.ns.<namespace> is over 127 characters, and not "
        "registered, for a namespace longer than 59 characters" in json.loads(out)["warnings"]
    )
