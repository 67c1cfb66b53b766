"""The first run's refusals and missing files, each with a line of its own that names the fix:
Panorama's key, keygen and admin role; the Kubernetes API server's 401 and 403; the
Function App's 401 and 403; a kubeconfig that is not there; a context mistyped. Against the
real fake servers: the Panorama simulator, the fake Kubernetes API, the app's HTTP host."""

from __future__ import annotations

import json
from functools import partial

import pytest

from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.fakes.server import HttpResponse, LoopbackHTTPServer
from aksfw_local.functions_http import FunctionsHttpHost
from tests.support import cli
from tests.support.cli import SAMPLE
from tests.support.panorama import API_KEY

CLASS_NAMES = ("Retryable", "NonRetryable", "AuthError", "InputError", "Error:", "Exception")
KEY_STEP = "(README, First deployment, step 1)"
FUNCTION_KEY = "fn-key-7f3a9c1e5b"

run = partial(cli.run, hidden=(*CLASS_NAMES, API_KEY, FUNCTION_KEY))


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name in ("PANORAMA_API_KEY", "PANORAMA_USER", "PANORAMA_PASSWORD", "KUBECONFIG",
                 "AKSFW_FUNCTION_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def sync(capsys, panorama, *source):
    return run(capsys, "sync", "--cluster", "prod1", *source, "--panorama", panorama.url)


def one_line(err):
    assert err.startswith("aksfw: ") and err.count("\n") == 1, err
    return err.removeprefix("aksfw: ").removesuffix("\n")


# ------------------------------------------------------------------------------- Panorama


@pytest.mark.parametrize("command", ["registered", "sync"])
def test_a_wrong_api_key_names_the_key_and_the_role_since_panorama_answers_both_alike(
    capsys, panorama, monkeypatch, command
):
    monkeypatch.setenv("PANORAMA_API_KEY", "not-" + API_KEY)
    source = ["--cluster", "prod1", "--services", SAMPLE] if command == "sync" else []
    code, out, err = run(capsys, command, *source, "--panorama", panorama.url)
    assert (code, out) == (1, "")
    assert one_line(err) == (
        f"Panorama at {panorama.url} refused PANORAMA_API_KEY (HTTP 403): the key is wrong or "
        "has expired, or its administrator's role lacks XML API > Operational Requests "
        f"(PAN-OS answers both alike): generate a new key, or check the role {KEY_STEP}"
    )
    assert panorama.write_calls() == []


def test_an_http_401_is_the_key_alone(capsys, monkeypatch):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    body = b'<response status="error" code="403"><result><msg>x</msg></result></response>'
    server = LoopbackHTTPServer(lambda request: HttpResponse(401, body, "application/xml"))
    server.start()
    url = server.url
    try:
        code, _, err = run(capsys, "registered", "--panorama", url)
    finally:
        server.stop()
    assert code == 1
    assert one_line(err) == (
        f"Panorama at {url} refused PANORAMA_API_KEY (HTTP 401): the key is wrong or has "
        f"expired: generate a new one {KEY_STEP}"
    )


def test_a_refused_keygen_names_the_user_and_password(capsys, panorama, monkeypatch):
    monkeypatch.setenv("PANORAMA_USER", "admin")
    monkeypatch.setenv("PANORAMA_PASSWORD", "wrong-pass")
    code, _, err = run(capsys, "registered", "--panorama", panorama.url)
    assert code == 1
    assert one_line(err) == (
        f"Panorama at {panorama.url} refused PANORAMA_USER and PANORAMA_PASSWORD (HTTP 403): "
        f"check the administrator's name and password {KEY_STEP[:-1]}), or set PANORAMA_API_KEY"
    )
    assert "wrong-pass" not in err


def test_a_role_without_user_id_agent_is_named_when_the_read_worked(capsys, panorama, monkeypatch):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    panorama.role_lacks = {"user-id"}
    code, out, err = sync(capsys, panorama, "--services", SAMPLE)
    assert (code, out) == (1, "")
    assert one_line(err) == (
        f"Panorama at {panorama.url} answered the read but refused to register (HTTP 403): the "
        f"API key's administrator role lacks XML API > User-ID Agent {KEY_STEP}"
    )
    assert panorama.registered() == {}
    assert sync(capsys, panorama, "--services", SAMPLE, "--dry-run")[0] == 0  # reads only


def test_a_role_without_operational_requests_is_named_when_keygen_vouched_for_the_key(
    capsys, panorama, monkeypatch
):
    monkeypatch.setenv("PANORAMA_USER", "admin")
    monkeypatch.setenv("PANORAMA_PASSWORD", "admin-pass")
    panorama.role_lacks = {"op"}
    code, _, err = run(capsys, "registered", "--panorama", panorama.url)
    assert code == 1
    assert one_line(err) == (
        f"Panorama at {panorama.url} refused a request with the key it generated for "
        "PANORAMA_USER (HTTP 403): that administrator's role lacks XML API > Operational "
        f"Requests {KEY_STEP}"
    )


# ----------------------------------------------------------------------------- Kubernetes


@pytest.fixture
def kube():
    with FakeKubeApi(token="t0k3n") as server:
        server.services = [service("web", "shop", ips=["20.0.0.1"])]
        yield server


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "refused the credential of {source} (HTTP 401): it is wrong or has expired: fetch "
              "it again (`az aks get-credentials --resource-group RG --name CLUSTER "
              "--overwrite-existing`), or choose another --context"),
        (403, "accepted the credential of {source} but it may not list Services (HTTP 403): "
              "grant it list on services in every namespace (the ClusterRole of "
              "docs/permissions.md), or choose another --context"),
    ],
)  # fmt: skip
def test_the_api_servers_401_and_403_each_name_their_fix(
    capsys, panorama, kube, monkeypatch, tmp_path, status, says
):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    panorama.seed("20.0.0.1", ["aks.prod1.web"])
    kubeconfig = kube.write_kubeconfig(tmp_path / "config", context="prod")
    kube.inject(status, count=5)
    code, out, err = sync(capsys, panorama, "--kubeconfig", str(kubeconfig), "--context", "prod")
    source = f"--kubeconfig {kubeconfig} --context prod"
    assert (code, out) == (1, "")
    assert one_line(err) == f"Kubernetes at {kube.url} " + says.format(source=source)
    assert panorama.registered() == {"20.0.0.1": {"aks.prod1.web"}}


# ------------------------------------------------------------- kubeconfig and context


def test_a_kubeconfig_that_is_not_there_is_one_line(capsys, panorama, monkeypatch, tmp_path):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    missing = tmp_path / "nope"
    code, out, err = sync(capsys, panorama, "--kubeconfig", str(missing))
    assert (code, out, one_line(err)) == (2, "", f"kubeconfig {missing}: no such file")
    code, _, err = sync(capsys, panorama, "--kubeconfig", str(tmp_path))
    assert one_line(err) == f"kubeconfig {tmp_path}: a directory, not a kubeconfig file"
    code, _, err = sync(capsys, panorama, "--kubeconfig", "")
    assert one_line(err) == (
        "kubeconfig: an empty path (an unset KUBECONFIG?): name the file, e.g. "
        "--kubeconfig ~/.kube/config"
    )


def test_kubectls_default_kubeconfig_missing_says_how_to_get_one(
    capsys, panorama, monkeypatch, tmp_path
):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    monkeypatch.setenv("HOME", str(tmp_path))
    default = tmp_path / ".kube" / "config"
    code, _, err = sync(capsys, panorama, "--kubeconfig", str(default))
    assert code == 2
    assert one_line(err) == (
        f"kubeconfig {default}: no such file: kubectl has no configuration on this machine "
        "yet: `az aks get-credentials --resource-group RG --name CLUSTER` writes it, or give "
        "--kubeconfig the file you use"
    )


def test_a_kubeconfig_variable_pointing_nowhere_says_so(capsys, panorama, monkeypatch, tmp_path):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    nowhere = f"{tmp_path}/a.yaml:{tmp_path}/b.yaml"
    monkeypatch.setenv("KUBECONFIG", nowhere)
    code, _, err = sync(capsys, panorama, "--kubeconfig", nowhere)
    assert code == 2
    assert one_line(err) == (
        f"kubeconfig {nowhere}: no such file, and it is what KUBECONFIG says: point KUBECONFIG "
        "at your kubeconfig, or unset it and use ~/.kube/config"
    )


def test_a_kubeconfig_list_with_one_file_there_is_read_as_kubectl_reads_it(
    capsys, panorama, kube, monkeypatch, tmp_path
):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    kubeconfig = kube.write_kubeconfig(tmp_path / "config", context="prod")
    both = f"{tmp_path}/missing.yaml:{kubeconfig}"
    code, out, err = sync(capsys, panorama, "--kubeconfig", both, "--context", "prod")
    assert (code, err) == (0, "") and json.loads(out)["registered"] == 1  # aks.prod1.web


def write_contexts(kube, path, names, current):
    document = kube.kubeconfig(context=names[0])
    document["contexts"] = [{"name": name, "context": document["contexts"][0]["context"]}
                            for name in names]  # fmt: skip
    document["current-context"] = current
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("context", "says"),
    [
        ("prdo", "has no context 'prdo': did you mean prod? Its contexts: prod, staging, dev"),
        ("qa", "has no context 'qa': its contexts: prod, staging, dev"),
        (None, "names no current context: choose one with --context (prod, staging, dev)"),
    ],
)
def test_a_mistyped_or_missing_context_lists_the_contexts(
    capsys, panorama, kube, monkeypatch, tmp_path, context, says
):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    path = write_contexts(kube, tmp_path / "config", ["prod", "staging", "dev"], current=None)
    line = ["--kubeconfig", str(path)] + (["--context", context] if context else [])
    code, out, err = sync(capsys, panorama, *line)
    assert (code, out) == (2, "")
    assert one_line(err) == f"kubeconfig {path} {says}"
    assert sync(capsys, panorama, "--kubeconfig", str(path), "--context", "staging")[0] == 0


# ---------------------------------------------------------------------------- the app


@pytest.fixture
def host():
    with FunctionsHttpHost(key=FUNCTION_KEY) as served:
        yield served


def test_a_missing_function_key_says_where_to_find_one(capsys, host):
    code, _, err = run(capsys, "status", "--app", host.url)
    assert code == 1
    assert one_line(err) == (
        f"GET /api/status on {host.url.removeprefix('http://')}: a function key is needed "
        "(HTTP 401): set AKSFW_FUNCTION_KEY (or --key) to the app's key (az functionapp keys "
        "list --resource-group RG --name APP)"
    )


@pytest.mark.parametrize("command", ["status", "replay", "uninstall"])
def test_a_wrong_function_key_says_so_for_every_command(capsys, host, command):
    line = ["--dry-run"] if command != "status" else []
    code, _, err = run(capsys, command, "--app", host.url, "--key", "wrong-key", *line)
    assert code == 1
    assert one_line(err).endswith(
        ": the function key was refused (HTTP 401): set AKSFW_FUNCTION_KEY (or --key) to a key "
        "of this app (az functionapp keys list --resource-group RG --name APP)"
    )


def test_an_app_that_refuses_this_address_is_not_a_key_problem(capsys):
    page = b"<html><head><title>Error 403 - Forbidden</title></head></html>"
    server = LoopbackHTTPServer(lambda request: HttpResponse(403, page, "text/html"))
    server.start()
    url = server.url
    try:
        code, _, err = run(capsys, "status", "--app", url, "--key", FUNCTION_KEY)
    finally:
        server.stop()
    assert code == 1
    assert one_line(err) == (
        f"GET /api/status on {url.removeprefix('http://')}: refused before any function "
        "key was checked (HTTP 403): the app's access restrictions do not admit this machine's "
        "address, or the app is stopped (az functionapp config access-restriction show, "
        "az functionapp show)"
    )
