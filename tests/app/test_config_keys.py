"""A misspelt key in the configuration document: refused, with the known key it was likely
meant as (`config.panorama.hots: unknown field; did you mean host?`); and listed clusters
that would tag under one name, refused before Azure is read."""

from __future__ import annotations

import json

import pytest

from aksfw_core.config import load_settings, parse_settings
from aksfw_core.config.reader import meant_key, unknown_key
from aksfw_core.errors import InputError

SUB = "11111111-1111-1111-1111-111111111111"


def cluster_id(name: str, group: str = "rg-prod") -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )


PANORAMA_KEYS = ("host", "targets", "vsys", "caCertificates", "certificateSha256", "verifyTls")


@pytest.mark.parametrize(
    ("key", "known", "meant"),
    [
        ("hots", PANORAMA_KEYS, "host"),
        ("HOST", PANORAMA_KEYS, "host"),
        ("verifyTLS", PANORAMA_KEYS, "verifyTls"),
        ("verifytls", PANORAMA_KEYS, "verifyTls"),
        ("target", PANORAMA_KEYS, "targets"),
        ("caCertificate", PANORAMA_KEYS, "caCertificates"),
        ("certificateSha", PANORAMA_KEYS, "certificateSha256"),
        ("alais", ("id", "alias", "selectors", "credential", "nodeSubnets"), "alias"),
        ("selector", ("id", "alias", "selectors", "credential", "nodeSubnets"), "selectors"),
        ("subscription", ("subscriptions", "discovery", "clusters"), "subscriptions"),
        (
            "panoramaReadTimeoutSecond",
            ("panoramaReadTimeoutSeconds",),
            "panoramaReadTimeoutSeconds",
        ),
        ("colour", PANORAMA_KEYS, None),
        ("secret", ("server",), None),  # two different fields, not a misspelling
        ("keyVault", ("key",), None),
        ("", PANORAMA_KEYS, None),
        ("h" * 10_000, PANORAMA_KEYS, None),  # refused without a suggestion, at once
        ("hots", (), None),
    ],
)
def test_meant_key_finds_a_close_or_differently_cased_known_key(key, known, meant):
    assert meant_key(key, known) == meant


def test_an_unknown_key_error_says_what_was_meant_only_when_something_was():
    assert str(unknown_key("config.x.hots", "hots", ["host"])) == (
        "config.x.hots: unknown field; did you mean host?"
    )
    assert str(unknown_key("config.x.zzz", "zzz", ["host"])) == "config.x.zzz: unknown field"
    assert str(unknown_key("config.limits.a", "a", [], "limit")) == "config.limits.a: unknown limit"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        # `host` is required: the misspelling is named, not the missing field.
        ({"panorama": {"hots": "p"}}, "config.panorama.hots: unknown field; did you mean host?"),
        ({"panorama": {"HOST": "p"}}, "config.panorama.HOST: unknown field; did you mean host?"),
        (
            {"panorama": {"host": "p", "verifyTLS": False}},
            "config.panorama.verifyTLS: unknown field; did you mean verifyTls?",
        ),
        (
            {"panorama": {"host": "p", "targets": {"devicegroups": ["dg"]}}},
            "config.panorama.targets.devicegroups: unknown field; did you mean deviceGroups?",
        ),
        (
            {"clusters": [{"id": cluster_id("a"), "alais": "x"}]},
            "config.clusters[0].alais: unknown field; did you mean alias?",
        ),
        (
            {"clusters": [{"ID": cluster_id("a")}]},
            "config.clusters[0].ID: unknown field; did you mean id?",
        ),
        (
            {"clusters": [{"id": cluster_id("a"), "selectors": [{"nmae": "web", "match": "a"}]}]},
            "config.clusters[0].selectors[0].nmae: unknown field; did you mean name?",
        ),
        (
            {"subscription": [SUB]},
            "config.subscription: unknown field; did you mean subscriptions?",
        ),
        (
            {"discovery": {"tags": "aksfw"}},
            "config.discovery.tags: unknown field; did you mean tag?",
        ),
        (
            {"resync": {"followUpDelay": 5}},
            "config.resync.followUpDelay: unknown field; did you mean followUpDelaySeconds?",
        ),
        (
            {"limits": {"panoramaReadTimeoutSecond": 3}},
            "config.limits.panoramaReadTimeoutSecond: unknown limit; "
            "did you mean panoramaReadTimeoutSeconds?",
        ),
        ({"limits": {"speed": 3}}, "config.limits.speed: unknown limit"),
        ({"colour": "blue"}, "config.colour: unknown field"),
        # A key given and misspelt again is not suggested as itself.
        ({"panorama": {"host": "p", "hots": "q"}}, "config.panorama.hots: unknown field"),
        # `secret` is a field of its own: a missing `server` is said as missing.
        (
            {
                "keyVault": "https://kv.vault.azure.net",
                "clusters": [
                    {"id": cluster_id("a"), "credential": {"kind": "token", "secret": "s"}}
                ],
            },
            "config.clusters[0].credential.server: required",
        ),
    ],
)
def test_a_misspelt_key_is_refused_with_the_key_meant(document, message):
    with pytest.raises(InputError) as caught:
        parse_settings(document)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("clusters", "message"),
    [
        (
            [{"id": cluster_id("aks-prod1")}, {"id": cluster_id("aks-prod1", "rg-dr")}],
            "config.clusters[1].id: would tag as 'aks-prod1', as config.clusters[0] does; "
            "give one an alias",
        ),
        (
            [{"id": cluster_id("a"), "alias": "prod"}, {"id": cluster_id("b"), "alias": "prod"}],
            "config.clusters[1].alias: would tag as 'prod', as config.clusters[0] does; "
            "give one another alias",
        ),
        (
            [{"id": cluster_id("a"), "alias": "b"}, {"id": cluster_id("b")}],
            "config.clusters[1].id: would tag as 'b', as config.clusters[0] does; give one an alias",
        ),
        (
            [{"id": cluster_id("a")}, {"id": cluster_id("A")}],
            "config.clusters[1].id: listed twice",
        ),
    ],
)
def test_listed_clusters_that_would_tag_under_one_name_are_refused(clusters, message):
    with pytest.raises(InputError) as caught:
        parse_settings({"clusters": clusters})
    assert str(caught.value) == message


def test_listed_clusters_with_distinct_tag_names_pass():
    settings = parse_settings(
        {
            "clusters": [
                {"id": cluster_id("aks-prod1")},
                {"id": cluster_id("aks-prod1", "rg-dr"), "alias": "prod1-dr"},
            ]
        }
    )
    assert [c.tag_name for c in settings.clusters] == ["aks-prod1", "prod1-dr"]
    assert [c.name for c in settings.clusters] == ["aks-prod1", "aks-prod1"]


def test_a_config_file_with_a_byte_order_mark_is_read_and_one_not_utf8_refused(tmp_path):
    marked = tmp_path / "marked.json"
    marked.write_bytes(b"\xef\xbb\xbf" + json.dumps({"subscriptions": [SUB]}).encode())
    assert load_settings({"AKSFW_CONFIG_FILE": str(marked)}).subscriptions == (SUB,)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"panorama": {"host": "caf\xe9"}}')
    with pytest.raises(InputError, match=r"latin\.json is not UTF-8 text"):
        load_settings({"AKSFW_CONFIG_FILE": str(latin)})
