"""The command line: JSON on stdout, warnings on stderr, one-line reasons for bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from aksfw_core.cli import options
from aksfw_core.cli.program import main
from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.fakes.panorama import Fault
from tests.support import REPO_ROOT
from tests.support.cli import SAMPLE, SAMPLE_TAGS, run
from tests.support.panorama import API_KEY

SELECTORS = ["--selector", "front=tier in (frontend)", "--selector", "shop=app!=db@shop"]


def sync_sample(capsys, panorama, *extra):
    """`aksfw sync` of the sample service list as cluster prod1 into the simulator."""
    return run(
        capsys,
        "sync",
        "--cluster",
        "prod1",
        "--services",
        SAMPLE,
        "--panorama",
        panorama.url,
        *extra,
    )


def test_tags_prints_sorted_tags_per_ip(capsys):
    code, out, err = run(capsys, "tags", "--cluster", "prod1", *SELECTORS, SAMPLE)
    assert code == 0 and err == ""
    assert json.loads(out) == SAMPLE_TAGS


def test_tags_reads_standard_input_and_prints_warnings_on_stderr(capsys, monkeypatch):
    document = {
        "kind": "List",
        "items": [service("web", "a", ips=["1.1.1.1"]), service("web", "b", ips=["1.1.1.2"])],
    }
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(document)))
    code, out, err = run(capsys, "tags", "--cluster", "c1", "-")
    assert code == 0
    assert json.loads(out) == {"1.1.1.1": ["aks.c1.web"], "1.1.1.2": ["aks.c1.web"]}
    assert err.startswith("warning: duplicate-service-name:")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["tags", "--cluster", "c1", "/no/such/file"], "cannot read /no/such/file"),
        (["tags", "--cluster", "c.1", SAMPLE], "cluster name"),
        (["tags", "--cluster", "c1", "--selector", "noequals", SAMPLE], "NAME=EXPR"),
        (["tags", "--cluster", "c1", "--selector", "x=app in (", SAMPLE], "unbalanced"),
        (["tags", "--cluster", "c1", "--selector", "x=app@", SAMPLE], "empty namespace"),
        (["tags", "--cluster", "c1"], "required"),
        (["bogus"], "invalid choice"),
        (["sync", "--cluster", "c1", "--services", SAMPLE], "--panorama"),
        (["registered", "--panorama", "h", "--tag-timeout", "-1"], "--tag-timeout"),
        (["registered", "--panorama", "h", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, reason):
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(argv))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and reason in err


def test_ca_bundle_that_is_missing_or_unreadable_exits_2_with_one_line(capsys, tmp_path):
    folder = tmp_path / "folder.pem"
    folder.mkdir()
    for path in (tmp_path / "missing.pem", folder):
        code, _, err = run(capsys, "registered", "--panorama", "h", "--ca-bundle", str(path))
        assert code == 2 and err.count("\n") == 1 and "--ca-bundle" in err and "not a file" in err


def test_json_nested_past_the_parsers_recursion_exits_2(capsys, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000)
    code, _, err = run(capsys, "tags", "--cluster", "c1", str(deep))
    assert code == 2 and err == f"aksfw: {deep} is nested too deeply\n"
    code, _, err = run(capsys, "resolve-event", str(deep))
    assert code == 2 and "nested too deeply" in err


def test_non_json_input_is_reported_with_its_position(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "List", "items": [}')
    code, _, err = run(capsys, "tags", "--cluster", "c1", str(bad))
    assert code == 2 and "is not JSON" in err and "line 1" in err


def test_sync_then_registered(capsys, panorama, api_key):
    panorama.seed("10.240.0.7", ["corp.keep", "aks.prod1.old"])
    code, out, _ = sync_sample(capsys, panorama, *SELECTORS)
    assert code == 0
    report = json.loads(out)
    assert (report["registered"], report["unregistered"], report["requests"]) == (11, 1, 1)
    code, out, _ = run(capsys, "registered", "--panorama", panorama.url, "--cluster", "prod1")
    assert json.loads(out) == SAMPLE_TAGS
    code, out, _ = run(capsys, "registered", "--panorama", panorama.url)
    assert "corp.keep" in json.loads(out)["10.240.0.7"]
    panorama.reset_calls()
    code, out, _ = sync_sample(capsys, panorama, *SELECTORS)
    assert json.loads(out)["requests"] == 0 and panorama.write_calls() == []


def test_sync_dry_run_prints_the_plan_and_writes_nothing(capsys, panorama, api_key):
    code, out, _ = sync_sample(capsys, panorama, "--dry-run")
    assert code == 0 and panorama.write_calls() == []
    assert json.loads(out)["plan"]["register"]["20.50.10.11"][0] == "aks.prod1.svc.app.web"


def test_sync_to_a_firewall_target(capsys, panorama, api_key):
    code, _, _ = sync_sample(capsys, panorama, "--target", "007000000001", "--vsys", "vsys1")
    assert code == 0
    assert panorama.registered() == {}
    assert set(panorama.registered(target="007000000001", vsys="vsys1")) == set(SAMPLE_TAGS)


def test_sync_from_a_live_cluster_through_kubeconfig(capsys, panorama, api_key, tmp_path):
    with FakeKubeApi(token="t0k3n") as kube:
        kube.services = [
            service("web", "shop", ips=["20.0.0.1"], labels={"app": "web"}),
            service("internal", "shop", type="ClusterIP"),
        ]
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="aks1")
        code, _, err = run(
            capsys, "sync", "--cluster", "aks1", "--kubeconfig", str(kubeconfig),
            "--context", "aks1", "--panorama", panorama.url,
        )  # fmt: skip
    assert code == 0, err
    assert panorama.registered() == {"20.0.0.1": {"aks.aks1.web", "aks.aks1.svc.app.web"}}


def test_sync_with_user_and_password_generates_a_key(capsys, panorama, monkeypatch):
    monkeypatch.delenv("PANORAMA_API_KEY", raising=False)
    monkeypatch.setenv("PANORAMA_USER", "admin")
    monkeypatch.setenv("PANORAMA_PASSWORD", "admin-pass")
    code, _, _ = sync_sample(capsys, panorama)
    assert code == 0 and len(panorama.registered()) == 2


def test_missing_credentials_is_bad_input(capsys, monkeypatch):
    for name in ("PANORAMA_API_KEY", "PANORAMA_USER", "PANORAMA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run(capsys, "registered", "--panorama", "https://127.0.0.1:1")
    assert code == 2 and "PANORAMA_API_KEY" in err


def test_panorama_down_exits_1_with_one_line_and_no_key(capsys, api_key, panorama):
    panorama.inject(Fault.HTTP_503, count=5)
    code, out, err = sync_sample(capsys, panorama)
    assert code == 1 and out == ""
    reason = [line for line in err.splitlines() if line.startswith("aksfw:")]
    assert len(reason) == 1 and "HTTP 503" in reason[0]
    assert API_KEY not in err


def test_refused_entries_exit_1_after_printing_the_report(capsys, panorama, api_key):
    panorama.reject_ips.add("20.50.10.11")
    code, out, err = sync_sample(capsys, panorama)
    assert code == 1
    assert json.loads(out)["failures"][0]["ip"] == "20.50.10.11"
    assert "refused 1 entries" in err


@pytest.mark.subprocess
def test_module_entry_point_runs_without_traceback():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    ok = subprocess.run(
        [sys.executable, "-m", "aksfw_core", "tags", "--cluster", "prod1", SAMPLE],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0 and "aks.prod1.web" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "aksfw_core", "tags", "--cluster", "prod1", "-"],
        input="not json", capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "aksfw: standard input is not JSON: Expecting value at line 1"


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, "(HTTP 401): it is wrong or has expired: fetch it again (`az aks get-credentials "
      "--resource-group RG --name CLUSTER --overwrite-existing`), or choose another --context\n"),
     (500, "(HTTP 500), after 4 attempts\n")],
)  # fmt: skip
def test_failed_cluster_list_keeps_the_registered_tags(
    capsys, panorama, api_key, tmp_path, status, error
):
    panorama.seed("20.0.0.1", ["aks.aks1.web", "aks.aks1.svc.app.web"])
    with FakeKubeApi(token="t0k3n") as kube:
        kube.services = [service("other", "shop", ips=["20.0.0.9"])]
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="aks1")
        kube.inject(status, count=10, on_page=1 if status == 500 else None)
        if status == 500:
            kube.services += [service(f"s{i}", "shop", ips=[f"20.0.1.{i}"]) for i in range(600)]
        code, out, err = run(
            capsys,
            "sync",
            "--cluster",
            "aks1",
            "--kubeconfig",
            str(kubeconfig),
            "--panorama",
            panorama.url,
        )
    assert code == 1 and out == ""
    assert err.endswith(error) and "Error" not in err and "Retryable" not in err
    assert panorama.registered() == {"20.0.0.1": {"aks.aks1.web", "aks.aks1.svc.app.web"}}
    assert panorama.write_calls() == []


def test_an_unexpected_failure_is_one_line_unless_verbose(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(options, "compute_tags", broken)
    code, out, err = run(capsys, "tags", "--cluster", "c1", SAMPLE)
    assert code == 1 and out == ""
    assert err == "aksfw: internal error, a bug: boom (-v shows the traceback)\n"
    with pytest.raises(RuntimeError):
        main(["-v", "tags", "--cluster", "c1", SAMPLE])
