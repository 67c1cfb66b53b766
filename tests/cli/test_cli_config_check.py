"""`aksfw config check [FILE]`: a configuration document checked offline by the app's own
start-up checks. A valid one prints what it will do (exit 0); a misspelt, conflicting or
unreadable one exits 2 with the one line the app would log. The check and the app's
start-up (`Engine.from_environ`) refuse the same documents with the same words."""

from __future__ import annotations

import io
import json

import pytest

from aksfw_core.app.engine import Engine
from aksfw_core.errors import InputError
from aksfw_local.fakes.tls import new_certificate_authority
from tests.support.cli import run

SUB = "11111111-1111-1111-1111-111111111111"
PIN = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
ENVIRONMENT = ("AKSFW_CONFIG", "AKSFW_CONFIG_FILE", "PANORAMA_API_KEY", "PANORAMA_CA_CERTIFICATES",
               "AKSFW_ARM_ENDPOINT", "AzureWebJobsStorage", "AKSFW_DEV_TOKEN")  # fmt: skip


def cluster_id(name: str, group: str = "rg-prod", sub: str = SUB) -> str:
    return (
        f"/subscriptions/{sub}/resourceGroups/{group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )


MINIMAL = {
    "panorama": {"host": "panorama.example.com"},
    "clusters": [{"id": cluster_id("aks-prod1")}],
}

FULL = {
    "subscriptions": [SUB],
    "discovery": {"tag": "aksfw=enabled"},
    "clusters": [
        {
            "id": cluster_id("aks-prod1"),
            "alias": "prod1",
            "selectors": [
                {"name": "public", "match": "exposure=internet", "namespace": "shop"},
                {"name": "web", "match": "app=web"},
            ],
        },
        {
            "id": cluster_id("aks-edge", "rg-edge"),
            "nodeSubnets": True,
            "credential": {"kind": "token", "server": "https://edge.example", "secret": "edge"},
        },
    ],
    "keyVault": "https://kv-aksfw.vault.azure.net",
    "panorama": {
        "host": "panorama.example.com",
        "targets": {"panorama": True, "deviceGroups": ["dg-east"], "serials": ["007000000001"]},
        "vsys": "vsys1",
        "certificateSha256": ":".join(PIN[i : i + 2].upper() for i in range(0, 64, 2)),
        "tagTimeoutSeconds": 3600,
        "batchSize": 500,
    },
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca_pem():
    return new_certificate_authority().pem.decode()


def write(tmp_path, document, name="aksfw.json"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def check(capsys, *argv):
    return run(capsys, "config", "check", *argv)


def refused(capsys, tmp_path, document, *argv):
    """Exit code and the whole stderr of checking `document` as a file."""
    code, out, err = check(capsys, write(tmp_path, document), *argv)
    assert out == ""
    return code, err


# --- valid documents -------------------------------------------------------------------


def test_a_minimal_document_is_valid_and_shows_the_clusters_tags(capsys, tmp_path):
    path = write(tmp_path, MINIMAL)
    code, out, err = check(capsys, path)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"{path}: valid, as the Functions app would start with it"
    assert "Panorama   https://panorama.example.com" in out
    assert "trust    the system's CAs" in out
    assert "PANORAMA_API_KEY is not set here" in out
    assert "Discovery  off (no discovery.tag)" in out
    assert "  aks-prod1: its AKS name, resource group rg-prod" in out
    assert "    aks.aks-prod1.<service>            each LoadBalancer Service" in out
    assert "    aks.aks-prod1.svc.<label>.<value>  each label of such a Service" in out


def test_a_full_document_as_json_gives_each_clusters_tag_name_and_tags(capsys, tmp_path):
    code, out, err = check(capsys, write(tmp_path, FULL), "--json")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["valid"] is True
    assert summary["panorama"] == {
        "url": "https://panorama.example.com",
        "targets": {"panorama": True, "deviceGroups": ["dg-east"], "serials": ["007000000001"]},
        "vsys": "vsys1",
        "trust": {"by": "certificateSha256", "sha256": PIN},
        "batchSize": 500,
        "tagTimeoutSeconds": 3600,
        "capacityWarningIps": None,
        "apiKeySet": False,
    }
    assert summary["discovery"] == {
        "tag": "aksfw=enabled",
        "subscriptions": [SUB],
        "tagName": "<name>",
        "nodeSubnets": False,
        "egressTags": False,
        "namespaceTags": False,
        "annotationTags": {"namespaces": []},
        "tags": ["aks.<name>.<service>", "aks.<name>.svc.<label>.<value>"],
    }
    prod, edge = summary["clusters"]
    assert (prod["name"], prod["tagName"], prod["alias"]) == ("aks-prod1", "prod1", "prod1")
    assert prod["selectors"][0] == {"name": "public", "match": "exposure=internet",
                                    "namespace": "shop"}  # fmt: skip
    assert prod["tags"] == [
        "aks.prod1.<service>",
        "aks.prod1.svc.<label>.<value>",
        "aks_public.prod1.<service>",
        "aks_web.prod1.<service>",
    ]
    assert (edge["tagName"], edge["credential"], edge["nodeSubnets"]) == ("aks-edge", "token", True)
    assert edge["tags"] == [
        "aks.aks-edge.<service>",
        "aks.aks-edge.svc.<label>.<value>",
        "aks.aks-edge.node_subnet",
    ]
    assert summary["warnings"] == []


def test_a_full_document_as_text_names_targets_trust_discovery_and_selectors(capsys, tmp_path):
    code, out, _ = check(capsys, write(tmp_path, FULL))
    assert code == 0
    assert "Panorama   https://panorama.example.com (vsys vsys1)" in out
    assert (
        "  targets  Panorama itself; the firewalls of device group dg-east; "
        "firewall 007000000001" in out
    )
    assert f"only the certificate whose SHA-256 is {PIN}" in out
    assert "  writes   500 IPs per request; registered tags expire after 3600 s" in out
    assert f"Discovery  the clusters tagged aksfw=enabled in subscription {SUB}" in out
    assert "tags under its AKS name, unless listed below with an alias" in out
    assert "  prod1: alias of aks-prod1, resource group rg-prod" in out
    assert (
        "    aks_public.prod1.<service>     selector public: exposure=internet in namespace shop"
        in out
    )
    assert "read with the token in Key Vault secret edge at https://edge.example" in out
    assert "    aks.aks-edge.node_subnet          each node pool subnet (nodeSubnets)" in out


def test_the_capacity_warning_is_shown_only_when_set(capsys, tmp_path):
    document = {**MINIMAL, "panorama": {"host": "panorama.example.com",
                                        "capacityWarningIps": 80000}}  # fmt: skip
    code, out, _ = check(capsys, write(tmp_path, document), "--json")
    assert code == 0 and json.loads(out)["panorama"]["capacityWarningIps"] == 80000
    code, out, _ = check(capsys, write(tmp_path, document))
    assert code == 0
    assert (
        "  capacity warns when a target holds 80,000 registered IPs or more, from all "
        "sources (capacityWarningIps)" in out
    )
    code, out, _ = check(capsys, write(tmp_path, MINIMAL))
    assert code == 0 and "  capacity " not in out and "capacityWarningIps" not in out


def test_without_file_it_reads_the_apps_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(MINIMAL))
    code, out, _ = check(capsys, "--json")
    assert (code, json.loads(out)["source"]) == (0, "AKSFW_CONFIG")
    monkeypatch.delenv("AKSFW_CONFIG")
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("AKSFW_CONFIG_FILE", path)
    code, out, _ = check(capsys, "--json")
    assert (code, json.loads(out)["source"]) == (0, f"AKSFW_CONFIG_FILE {path}")


def test_dash_reads_standard_input(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(MINIMAL)))
    code, out, _ = check(capsys, "-")
    assert code == 0 and out.startswith("standard input: valid")


def test_the_api_key_is_a_note_not_a_requirement_and_is_never_shown(capsys, tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL)
    code, out, _ = check(capsys, path, "--json")
    assert (code, json.loads(out)["panorama"]["apiKeySet"]) == (0, False)
    monkeypatch.setenv("PANORAMA_API_KEY", "LUFRPT-secret-key")
    code, out, _ = run(capsys, "config", "check", path, hidden=["LUFRPT-secret-key"])
    assert code == 0 and "PANORAMA_API_KEY is set" in out


def test_certificates_from_the_app_setting_are_the_trust(capsys, tmp_path, monkeypatch, ca_pem):
    monkeypatch.setenv("PANORAMA_CA_CERTIFICATES", ca_pem)
    code, out, _ = check(capsys, write(tmp_path, MINIMAL), "--json")
    trust = json.loads(out)["panorama"]["trust"]
    assert (code, trust) == (
        0,
        {"by": "caCertificates", "from": "PANORAMA_CA_CERTIFICATES", "certificates": 1},
    )
    monkeypatch.delenv("PANORAMA_CA_CERTIFICATES")
    document = {**MINIMAL, "panorama": {"host": "p", "caCertificates": ca_pem + ca_pem}}
    code, out, _ = check(capsys, write(tmp_path, document))
    assert code == 0 and "2 CA certificates of caCertificates, instead of the system's" in out


@pytest.mark.parametrize(
    ("document", "warning"),
    [
        (
            {**MINIMAL, "panorama": {"host": "p", "verifyTls": False}},
            "warning: config.panorama.verifyTls is false: Panorama's certificate is not "
            "checked, so anyone on the path can read the API key; pin it with certificateSha256",
        ),
        (
            {**MINIMAL, "panorama": {"host": "http://127.0.0.1:8080"}},
            "warning: config.panorama.host http://127.0.0.1:8080 is plain HTTP (for local "
            "simulators): the API key would travel in clear text",
        ),
        (
            {"panorama": {"host": "p"}},
            "warning: no cluster is monitored: set config.discovery.tag (with subscriptions) "
            "or list config.clusters",
        ),
        (
            {"panorama": {"host": "p"}, "clusters": [{"id": cluster_id("a"), "alias": "x" * 63,
                                                      "selectors": [{"name": "s", "match": "a"}]}]},
            f"warning: config.clusters[0]: aks.{'x' * 63}.<service> is over 127 characters, "
            "and not registered, for a Service name longer than 59 characters",
        ),
    ],
)  # fmt: skip
def test_valid_but_likely_unmeant_is_a_warning_and_exit_0(capsys, tmp_path, document, warning):
    code, _, err = check(capsys, write(tmp_path, document))
    assert (code, err.splitlines()[0]) == (0, warning)


# --- refused documents -----------------------------------------------------------------


def with_(document, path, value):
    copy = json.loads(json.dumps(document))
    target = copy
    *parents, last = path
    for key in parents:
        target = target[key]
    target[last] = value
    return copy


def renamed(document, path, new_key):
    """`document` with the key at `path` spelt `new_key`, as a person mistypes it."""
    copy = json.loads(json.dumps(document))
    target = copy
    *parents, last = path
    for key in parents:
        target = target[key]
    target[new_key] = target.pop(last)
    return copy


@pytest.mark.parametrize(
    ("document", "line"),
    [
        (
            {"panorama": {"hots": "p"}},
            "config.panorama.hots: unknown field; did you mean host?",
        ),
        (
            renamed(
                with_(FULL, ["panorama", "verifyTls"], True), ["panorama", "verifyTls"], "verifyTLS"
            ),
            "config.panorama.verifyTLS: unknown field; did you mean verifyTls?",
        ),
        (
            renamed(FULL, ["clusters", 0, "alias"], "alais"),
            "config.clusters[0].alais: unknown field; did you mean alias?",
        ),
        (
            renamed(FULL, ["clusters", 0, "selectors", 1, "match"], "Match"),
            "config.clusters[0].selectors[1].Match: unknown field; did you mean match?",
        ),
        (
            with_(FULL, ["limits"], {"panoramaReadTimeoutSecond": 10}),
            "config.limits.panoramaReadTimeoutSecond: unknown limit; "
            "did you mean panoramaReadTimeoutSeconds?",
        ),
        (
            renamed(FULL, ["discovery", "tag"], "tags"),
            "config.discovery.tags: unknown field; did you mean tag?",
        ),
    ],
)
def test_a_misspelt_key_exits_2_naming_the_key_meant(capsys, tmp_path, document, line):
    assert refused(capsys, tmp_path, document) == (2, f"aksfw: {line}\n")


@pytest.mark.parametrize(
    ("document", "environ", "line"),
    [
        (
            with_(FULL, ["panorama", "caCertificates"], "CA"),
            {},
            "config.panorama.certificateSha256: a pin accepts one certificate whoever issued "
            "it; drop config.panorama.caCertificates",
        ),
        (
            with_(FULL, ["panorama", "verifyTls"], False),
            {},
            "config.panorama.verifyTls: certificate checks off contradict "
            "config.panorama.certificateSha256; drop one",
        ),
        (
            with_(MINIMAL, ["panorama", "caCertificates"], "CA"),
            {"PANORAMA_CA_CERTIFICATES": "CA"},
            "config.panorama.caCertificates: set it or PANORAMA_CA_CERTIFICATES, not both",
        ),
        (
            {**MINIMAL, "discovery": {"tag": "aksfw"}},
            {},
            "config.discovery.tag: needs config.subscriptions to scan",
        ),
        (
            with_(FULL, ["keyVault"], None),
            {},
            "config.keyVault: required by clusters with a token credential",
        ),
        (
            with_(FULL, ["clusters", 1, "id"], cluster_id("AKS-PROD1")),
            {},
            "config.clusters[1].id: listed twice",
        ),
        (
            with_(FULL, ["clusters", 1, "alias"], "prod1"),
            {},
            "config.clusters[1].alias: would tag as 'prod1', as config.clusters[0] does; "
            "give one another alias",
        ),
        (
            {"clusters": [{"id": cluster_id("aks-prod1")}]},
            {},
            "config.panorama: required by the Functions app",
        ),
        (
            MINIMAL,
            {"PANORAMA_API_KEY": "@Microsoft.KeyVault(SecretUri=https://kv/secrets/k)"},
            "PANORAMA_API_KEY is an unresolved Key Vault reference: store the secret "
            "panorama-api-key in the vault and let the app's identity read it",
        ),
        (
            MINIMAL,
            {"AKSFW_ARM_ENDPOINT": "ftp://arm"},
            "AKSFW_ARM_ENDPOINT: expected an https:// URL",
        ),
    ],
)
def test_a_conflicting_document_exits_2_with_one_line(
    capsys, tmp_path, monkeypatch, ca_pem, document, environ, line
):
    document = json.loads(json.dumps(document).replace('"CA"', json.dumps(ca_pem)))
    for name, value in environ.items():
        monkeypatch.setenv(name, ca_pem if value == "CA" else value)
    assert refused(capsys, tmp_path, document) == (2, f"aksfw: {line}\n")


def test_both_environment_settings_are_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(MINIMAL))
    monkeypatch.setenv("AKSFW_CONFIG_FILE", write(tmp_path, MINIMAL))
    assert check(capsys) == (2, "", "aksfw: set AKSFW_CONFIG or AKSFW_CONFIG_FILE, not both\n")


def test_no_document_at_all_is_refused(capsys):
    assert check(capsys) == (2, "", "aksfw: set AKSFW_CONFIG (JSON) or AKSFW_CONFIG_FILE (path)\n")


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('{"panorama": ', "{path} is not JSON: Expecting value at line 1"),
        ('{"panorama": {"host": "p"}, "panorama": {}}', "{path} has the key 'panorama' twice"),
        (b'{"panorama": {"host": "caf\xe9"}}', "{path} is not UTF-8 text"),
        ("[]", "config: expected an object"),
    ],
)
def test_a_file_that_is_not_a_document_exits_2(capsys, tmp_path, content, line):
    path = tmp_path / "aksfw.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = check(capsys, str(path))
    assert (code, out, err) == (2, "", f"aksfw: {line.format(path=path)}\n")


def test_a_missing_or_unreadable_file_exits_2(capsys, tmp_path, monkeypatch):
    missing = tmp_path / "missing.json"
    assert check(capsys, str(missing)) == (
        2,
        "",
        f"aksfw: cannot read {missing}: No such file or directory\n",
    )
    assert check(capsys, str(tmp_path)) == (
        2,
        "",
        f"aksfw: cannot read {tmp_path}: Is a directory\n",
    )
    monkeypatch.setenv("AKSFW_CONFIG_FILE", str(missing))  # as the app says it
    assert check(capsys) == (
        2,
        "",
        f"aksfw: AKSFW_CONFIG_FILE {missing}: No such file or directory\n",
    )


def test_the_command_refuses_what_it_does_not_take(capsys, tmp_path):
    path = write(tmp_path, MINIMAL)
    assert check(capsys, path, "--dry-run")[0] == 2
    code, _, err = check(capsys, path, "--bogus")
    assert (code, err) == (
        2,
        "aksfw: config check has no option --bogus (see `aksfw config check --help`)\n",
    )
    code, _, err = run(capsys, "config")
    assert code == 2 and "aksfw config --help" in err


# --- the check and the app's start-up agree --------------------------------------------

AGREEMENT = [
    (MINIMAL, {}),
    (FULL, {}),
    ({"panorama": {"host": "p"}}, {}),
    ({"clusters": [{"id": cluster_id("a")}]}, {}),
    ({"panorama": {"hots": "p"}}, {}),
    (renamed(FULL, ["clusters", 0, "alias"], "alais"), {}),
    (renamed(FULL, ["panorama", "certificateSha256"], "certificateSHA256"), {}),
    (with_(FULL, ["limits"], {"panoramaReadTimeoutSecond": 10}), {}),
    (with_(FULL, ["limits"], {"panoramaReadTimeoutSeconds": 10}), {}),
    (with_(FULL, ["panorama", "verifyTls"], False), {}),
    (with_(MINIMAL, ["panorama", "verifyTls"], False), {}),
    (with_(FULL, ["keyVault"], None), {}),
    (with_(FULL, ["clusters", 1, "alias"], "prod1"), {}),
    ({**MINIMAL, "discovery": {"tag": "aksfw"}}, {}),
    (with_(MINIMAL, ["panorama", "caCertificates"], "CA"), {"PANORAMA_CA_CERTIFICATES": "CA"}),
    (MINIMAL, {"PANORAMA_CA_CERTIFICATES": "CA"}),
    (MINIMAL, {"PANORAMA_CA_CERTIFICATES": "not pem"}),
    ({"clusters": [{"id": cluster_id("a")}]}, {"PANORAMA_CA_CERTIFICATES": "CA"}),
    (MINIMAL, {"AKSFW_ARM_ENDPOINT": "ftp://arm"}),
    (MINIMAL, {"PANORAMA_API_KEY": "@Microsoft.KeyVault(SecretUri=https://kv/secrets/k)"}),
    ("{oops", {}),
    ('{"panorama": {"host": "p"}, "panorama": {}}', {}),
]


def startup_refusal(environ: dict[str, str]) -> str | None:
    """What `Engine.from_environ` says of the configuration in `environ`, or None when it
    gets past it (to the storage setting, which the environment leaves out on purpose)."""
    try:
        Engine.from_environ(environ)
    except InputError as error:
        return None if str(error).startswith("set AzureWebJobsStorage") else str(error)
    raise AssertionError("the engine started without storage")


@pytest.mark.parametrize(("document", "environ"), AGREEMENT)
def test_the_check_refuses_exactly_what_the_apps_start_up_refuses(
    capsys, monkeypatch, ca_pem, document, environ
):
    text = document if isinstance(document, str) else json.dumps(document)
    settings = {
        "AKSFW_CONFIG": text.replace('"CA"', json.dumps(ca_pem)),
        "PANORAMA_API_KEY": "LUFRPT-key",
        "AKSFW_DEV_TOKEN": "dev",  # no DefaultAzureCredential: nothing is called anyway
        **{name: ca_pem if value == "CA" else value for name, value in environ.items()},
    }
    expected = startup_refusal(settings)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    code, _, err = check(capsys)
    if expected is None:
        assert code == 0, err
    else:
        assert (code, err.splitlines()) == (2, [f"aksfw: {expected}"])
