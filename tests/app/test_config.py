"""The configuration document: valid forms, and errors that name the field."""

from __future__ import annotations

import json

import pytest

from aksfw_core import config
from aksfw_core.config import (
    PUBLIC_ARM_ENDPOINT,
    AzureAccess,
    TokenAccess,
    document,
    load_settings,
    parse_settings,
)
from aksfw_core.errors import InputError
from aksfw_core.limits import Limits
from aksfw_local.fakes.tls import new_certificate_authority

SUB = "11111111-1111-1111-1111-111111111111"
CLUSTER = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

FULL = {
    "subscriptions": [SUB.upper()],
    "discovery": {"tag": "aksfw=enabled"},
    "clusters": [
        {
            "id": CLUSTER,
            "alias": "prod1",
            "selectors": [
                {"name": "web", "match": "app=web"},
                {"name": "shop-front", "match": "tier in (frontend)", "namespace": "shop"},
            ],
        },
        {
            "id": CLUSTER.replace("aks-prod1", "aks-edge"),
            "credential": {
                "kind": "token",
                "server": "https://edge.example:443",
                "ca": CA,
                "secret": "aks-edge-token",
            },
        },
    ],
    "panorama": {
        "host": "panorama.example.com",
        "targets": {"deviceGroups": ["dg-east"], "serials": ["007000000001"]},
        "vsys": "vsys1",
        "tagTimeoutSeconds": 3600,
        "batchSize": 500,
        "capacityWarningIps": 80_000,
    },
    "resync": {"schedule": "0 */10 * * * *", "followUpDelaySeconds": 30},
    "keyVault": "https://kv-aksfw.vault.azure.net/",
}


def test_full_document():
    settings = parse_settings(FULL)
    assert settings.subscriptions == (SUB,)
    assert (settings.discovery.tag_key, settings.discovery.tag_value) == ("aksfw", "enabled")
    prod, edge = settings.clusters
    assert prod.alias == "prod1" and [s.name for s in prod.selectors] == ["web", "shop-front"]
    assert prod.selectors[1].namespace == "shop" and isinstance(prod.credential, AzureAccess)
    assert isinstance(edge.credential, TokenAccess) and edge.credential.secret == "aks-edge-token"
    assert settings.panorama is not None
    assert settings.panorama.targets.panorama is False
    assert settings.panorama.targets.device_groups == ("dg-east",)
    assert (settings.panorama.tag_timeout_s, settings.panorama.batch_size) == (3600, 500)
    assert settings.panorama.capacity_warning_ips == 80_000
    assert settings.resync.follow_up_delay_s == 30
    assert settings.key_vault_url == "https://kv-aksfw.vault.azure.net"
    assert settings.arm_endpoint == PUBLIC_ARM_ENDPOINT


def test_minimal_document_takes_defaults():
    settings = parse_settings({"clusters": [{"id": CLUSTER}], "panorama": {"host": "p"}})
    assert settings.panorama is not None and settings.panorama.targets.panorama is True
    assert settings.resync.schedule == "0 */5 * * * *"
    assert settings.discovery.tag_key is None


def with_(path, value):
    document = json.loads(json.dumps(FULL))
    target = document
    *parents, last = path
    for key in parents:
        target = target[key]
    target[last] = value
    return document


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "config: expected an object"),
        ({"subscription": [SUB]}, "config.subscription: unknown field"),
        (with_(["subscriptions"], ["not-a-guid"]), "config.subscriptions[0]"),
        (with_(["subscriptions"], SUB), "config.subscriptions: expected a list"),
        (with_(["discovery", "tag"], "bad/key"), "config.discovery.tag"),
        (
            with_(["clusters", 0, "id"], "/subscriptions/x/resourceGroups/rg"),
            "config.clusters[0].id",
        ),
        (
            with_(["clusters", 0, "id"], CLUSTER.replace("managedClusters", "virtualMachines")),
            "config.clusters[0].id",
        ),
        (with_(["clusters", 0, "alias"], "prod.1"), "config.clusters[0].alias"),
        (
            with_(["clusters", 0, "selectors", 0, "name"], "x" * 32),
            "config.clusters[0].selectors[0]",
        ),
        (
            with_(["clusters", 0, "selectors", 0, "match"], "app in ("),
            "config.clusters[0].selectors[0]",
        ),
        (
            with_(["clusters", 0, "selectors", 1, "name"], "web"),
            "config.clusters[0].selectors: name 'web' is used twice",
        ),
        (
            with_(["clusters", 0, "selectors", 0, "nmae"], "x"),
            "config.clusters[0].selectors[0].nmae: unknown field",
        ),
        (
            with_(["clusters", 1, "credential", "kind"], "password"),
            "config.clusters[1].credential.kind",
        ),
        (
            with_(["clusters", 1, "credential", "server"], "http://plain"),
            "config.clusters[1].credential.server",
        ),
        (with_(["clusters", 1, "credential", "ca"], "not pem"), "config.clusters[1].credential.ca"),
        (
            with_(["clusters", 1, "credential", "secret"], "bad name!"),
            "config.clusters[1].credential.secret",
        ),
        (with_(["clusters", 1, "id"], CLUSTER.upper()), "config.clusters[1].id: listed twice"),
        (with_(["panorama", "host"], ""), "config.panorama.host"),
        (with_(["panorama", "host"], "ftp://panorama"), "config.panorama.host: "),
        (with_(["panorama", "host"], "https://u:p@panorama"), "config.panorama.host: "),
        (with_(["panorama", "host"], "panorama/api/../x"), "config.panorama.host: "),
        (with_(["panorama", "host"], "https://panorama?x"), "config.panorama.host: "),
        (with_(["panorama", "host"], "pano\\rama@evil"), "config.panorama.host: "),
        (with_(["panorama", "caBundle"], "/no/such/ca.pem"), "config.panorama.caBundle: replaced"),
        (with_(["panorama", "caCertificates"], "/no/such/ca.pem"), "config.panorama.caCertif"),
        (with_(["limits"], {"panoramaDeadline": 5}), "config.limits.panoramaDeadline: unknown"),
        (with_(["limits"], {"kubeMaxPages": 2.5}), "config.limits.kubeMaxPages: expected a whole"),
        (with_(["limits"], {"panoramaDeadlineSeconds": 0}), "config.limits.panoramaDeadline"),
        (with_(["limits"], {"panoramaDeadlineSeconds": "5"}), "config.limits.panoramaDeadline"),
        (with_(["panorama", "tagTimeoutSeconds"], -1), "config.panorama.tagTimeoutSeconds"),
        (with_(["panorama", "batchSize"], True), "config.panorama.batchSize"),
        (with_(["panorama", "capacityWarningIps"], 0), "config.panorama.capacityWarningIps"),
        (with_(["panorama", "capacityWarningIps"], 1.5), "config.panorama.capacityWarningIps"),
        (with_(["limits"], {"canaryTimeoutSeconds": 0}), "config.limits.canaryTimeoutSeconds"),
        (with_(["panorama", "targets"], {}), "config.panorama.targets: names no target"),
        (
            with_(["panorama", "targets", "serials"], ["bad serial"]),
            "config.panorama.targets.serials[0]",
        ),
        (with_(["resync", "schedule"], "*/5 * * * *"), "config.resync.schedule"),
        (
            with_(["keyVault"], None),
            "config.keyVault: required by clusters with a token credential",
        ),
        ({"discovery": {"tag": "aksfw"}}, "config.discovery.tag: needs config.subscriptions"),
    ],
)
def test_bad_document_names_the_field(document, field):
    with pytest.raises(InputError) as caught:
        parse_settings(document)
    assert field in str(caught.value)


def test_limits_are_read_with_their_units_and_default_otherwise():
    settings = parse_settings(
        {
            "limits": {
                "panoramaDeadlineSeconds": 30,
                "kubeMaxResponseBytes": 1024,
                "inventoryTtlSeconds": 0.5,
            }
        }
    )
    assert settings.limits == Limits(
        panorama_deadline_s=30, kube_max_response_bytes=1024, inventory_ttl_s=0.5
    )
    assert parse_settings({}).limits == Limits()


def test_a_limit_renamed_since_a_release_is_still_read_under_its_former_name():
    former = parse_settings({"limits": {"eventResyncWindowSeconds": 4}})
    assert former.limits == Limits(resync_refill_s=4)
    with pytest.raises(InputError, match="now called resyncRefillSeconds"):
        parse_settings({"limits": {"eventResyncWindowSeconds": 4, "resyncRefillSeconds": 3}})


UNITS = (
    "Seconds", "Bytes", "Pages", "Size", "Clusters", "Requests", "Blobs", "Messages", "Lists"
)  # fmt: skip


def test_every_limit_has_a_document_key_with_its_unit():
    keys = set(document._LIMIT_FIELDS)
    assert "panoramaReadTimeoutSeconds" in keys and "maxMessageBytes" in keys
    assert all(
        key.endswith(
            (*UNITS, "Pairs", "Fraction", "Confirmations", "Services")  # counts, a share
        )
        for key in keys
    ), keys


def test_panorama_host_is_normalised_and_ca_certificates_kept():
    pem = new_certificate_authority().pem.decode()
    settings = parse_settings(
        {"panorama": {"host": "panorama.example.com:8443", "caCertificates": pem}}
    )
    assert settings.panorama is not None
    assert settings.panorama.url == "https://panorama.example.com:8443"
    assert settings.panorama.ca_certificates == pem


def test_load_settings_from_inline_json_file_and_arm_endpoint(tmp_path):
    inline = load_settings({"AKSFW_CONFIG": json.dumps(FULL)})
    path = tmp_path / "aksfw.json"
    path.write_text(json.dumps(FULL))
    sovereign = "https://management.usgovcloudapi.net"
    from_file = load_settings({"AKSFW_CONFIG_FILE": str(path), "AKSFW_ARM_ENDPOINT": sovereign})
    assert from_file.clusters == inline.clusters
    assert from_file.arm_endpoint == sovereign


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({}, "set AKSFW_CONFIG"),
        ({"AKSFW_CONFIG": "{", "AKSFW_CONFIG_FILE": "x"}, "not both"),
        ({"AKSFW_CONFIG": "{oops"}, "AKSFW_CONFIG is not JSON"),
        ({"AKSFW_CONFIG": "[" * 100_000}, "AKSFW_CONFIG is nested too deeply"),
        (
            {"AKSFW_CONFIG": '{"subscriptions": [], "subscriptions": []}'},
            "AKSFW_CONFIG has the key 'subscriptions' twice",
        ),
        ({"AKSFW_CONFIG_FILE": "/no/such/aksfw.json"}, "AKSFW_CONFIG_FILE /no/such/aksfw.json"),
        ({"AKSFW_CONFIG": "{}", "AKSFW_ARM_ENDPOINT": "ftp://arm"}, "AKSFW_ARM_ENDPOINT"),
    ],
)
def test_environment_errors(environ, reason):
    with pytest.raises(InputError, match=reason):
        load_settings(environ)


@pytest.mark.parametrize(
    ("panorama", "message"),
    [
        ({"host": ""}, "config.panorama.host: expected a non-empty string"),
        ({"host": "ftp://p"}, "config.panorama.host: Panorama address must use https://"),
        ({"host": "p", "batchSize": 5001}, "config.panorama.batchSize: expected a whole"),
        ({"host": "p", "vsys": " "}, "config.panorama.vsys: expected a non-empty string"),
    ],
)
def test_a_panorama_field_is_named_once_in_its_error(panorama, message):
    with pytest.raises(InputError) as caught:
        parse_settings({"panorama": panorama})
    assert str(caught.value).startswith(message)


def test_panorama_fields_not_given_keep_the_settings_defaults():
    settings = parse_settings({"panorama": {"host": "p", "tagTimeoutSeconds": 0}})
    assert settings.panorama == config.PanoramaSettings("https://p")
    assert settings.panorama.capacity_warning_ips is None  # no capacity warning
