"""The command line's mistakes and failures, as a person reads them: one line that says what
was tried, how often and what to check; no exception class names; library noise hidden
unless -v; -v anywhere; --version and --help that explain themselves."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from functools import partial
from importlib import metadata

import pytest
from azure.core.exceptions import ClientAuthenticationError

from aksfw_core.cli import options
from aksfw_core.cli.program import main, parse
from aksfw_core.config import PanoramaSettings, parse_settings
from aksfw_core.errors import AuthError, InputError
from aksfw_core.transport import azure_errors
from aksfw_local.fakes.panorama import Fault, PanoramaSimulator
from aksfw_local.fakes.tls import new_certificate_authority
from tests.support import REPO_ROOT, cli
from tests.support.cli import SAMPLE
from tests.support.panorama import API_KEY

CA_PEM = new_certificate_authority("test CA").pem.decode()

CLASS_NAMES = ("Retryable", "NonRetryable", "AuthError", "InputError", "Error:", "Exception")


run = partial(cli.run, hidden=CLASS_NAMES)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    for name in ("PANORAMA_USER", "PANORAMA_PASSWORD", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- mistakes: exit 2

PANORAMA = ["--panorama", "http://127.0.0.1:1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["registered", *PANORAMA, "--batch-size", "5"],
         "--batch-size means nothing for registered: registered only reads, it writes nothing"),
        (["registered", *PANORAMA, "--tag-timeout=60"],
         "--tag-timeout means nothing for registered: registered only reads"),
        (["registered", *PANORAMA, "--dry-run"], "--dry-run means nothing for registered"),
        (["tags", "--cluster", "c1", "--dry-run", SAMPLE], "--dry-run means nothing for tags"),
        (["tags", "--cluster", "c1", *PANORAMA, SAMPLE],
         "--panorama means nothing for tags (it is an option of keygen, registered, sync)"),
        (["status", "--app", "https://app.example.com", "--bogus"],
         "status has no option --bogus (see `aksfw status --help`)"),
        (["sync", "--cluster", "c1", "--services", SAMPLE, "--context", "aks1", *PANORAMA],
         "sync: --context needs --kubeconfig"),
        (["watch", "--context", "aks1"], "watch: --context needs --kubeconfig"),
    ],
)  # fmt: skip
def test_an_option_that_means_nothing_is_refused_naming_it_and_the_command(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("aksfw: ") and err.count("\n") == 1 and message in err


def test_write_options_still_work_where_something_is_written(capsys, panorama):
    code, _, err = run(
        capsys, "sync", "--cluster", "prod1", "--services", SAMPLE, "--panorama", panorama.url,
        "--batch-size", "1", "--tag-timeout", "60",
    )  # fmt: skip
    assert code == 0, err
    assert len(panorama.write_calls()) == 2


# ------------------------------------------------- options that are configuration fields too

SHARED = [  # (option, where the configuration's `panorama` has it, values to try)
    ("--batch-size", ["batchSize"], [-1, 0, 1, 1000, 5000, 5001, 100_000]),
    ("--tag-timeout", ["tagTimeoutSeconds"], [-1, 0, 60, 2_592_000, 2_592_001]),
    ("--vsys", ["vsys"], ["", "  ", "vsys1"]),
    ("--target", ["targets", "serials", 0], ["007000000001", "", "bad serial", "7" * 33]),
    ("--panorama", ["host"], ["{simulator}", "", "ftp://panorama", "https://u:p@panorama",
                              "panorama/api", "https://panorama?x", "pano\\rama@evil",
                              "panorama:0", "http://pano_rama"]),
    ("--certificate-sha256", ["certificateSha256"], ["ab" * 32, ":".join(["AB"] * 32),
                                                     "ab" * 31, "xy" * 32, " "]),
]  # fmt: skip
SHARED_CASES = [(option, path, value) for option, path, values in SHARED for value in values]


def document_with(path: list, value: object, host: str) -> dict:
    """A configuration whose `panorama` has `value` at `path` (and `host` otherwise)."""
    panorama: dict = {"host": host}
    if path == ["targets", "serials", 0]:
        panorama["targets"] = {"serials": [value]}
    else:
        panorama[path[0]] = value
    return {"panorama": panorama}


@pytest.mark.parametrize(
    ("option", "path", "value"), SHARED_CASES, ids=[f"{o}={v!r}" for o, _, v in SHARED_CASES]
)
def test_an_option_is_refused_exactly_when_the_configuration_refuses_its_field(
    capsys, panorama, tmp_path, option, path, value
):
    if isinstance(value, str):
        value = value.format(simulator=panorama.url)
    field = "config.panorama." + ".".join(map(str, path)).replace(".0", "[0]")
    try:
        parse_settings(document_with(path, value, panorama.url))
        refusal = None
    except InputError as error:
        refusal = str(error).replace(field, option)
        assert refusal.startswith(f"{option}: "), refusal  # it names the field

    line = ["sync", "--cluster", "prod1", "--services", SAMPLE, "--dry-run"]
    line += ["--panorama", panorama.url] if option != "--panorama" else []
    code, out, err = run(capsys, *line, option, str(value))
    if refusal is None:
        assert (code, err) == (0, ""), err
    else:
        assert (code, out, err) == (2, "", f"aksfw: {refusal}\n")


@pytest.mark.parametrize(
    "content",
    [CA_PEM, "-----BEGIN CERTIFICATE-----\n", "not a certificate", " "],
    ids=["a CA", "a cut PEM", "not a PEM", "blank"],  # CA_PEM differs in each process
)
def test_a_ca_bundle_is_refused_exactly_when_the_configuration_refuses_its_text(
    capsys, panorama, tmp_path, content
):
    """`--ca-bundle FILE` gives the file's text to the check of `caCertificates`."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text(content)
    try:
        parse_settings({"panorama": {"host": panorama.url, "caCertificates": content}})
        refusal = None
    except InputError as error:
        refusal = str(error).replace("config.panorama.caCertificates", f"--ca-bundle {bundle}")
    line = ["sync", "--cluster", "prod1", "--services", SAMPLE, "--dry-run"]
    code, out, err = run(capsys, *line, "--panorama", panorama.url, "--ca-bundle", str(bundle))
    if refusal is None:
        assert (code, err) == (0, ""), err
    else:
        assert (code, out, err) == (2, "", f"aksfw: {refusal}\n")


@pytest.mark.parametrize("name", ["missing.pem", "folder"])
def test_a_ca_bundle_that_is_not_a_file_is_one_line(capsys, panorama, tmp_path, name):
    (tmp_path / "folder").mkdir()
    line = ["sync", "--cluster", "prod1", "--services", SAMPLE, "--dry-run"]
    path = tmp_path / name
    code, out, err = run(capsys, *line, "--panorama", panorama.url, "--ca-bundle", str(path))
    assert (code, out, err) == (2, "", f"aksfw: --ca-bundle: {path} is not a file\n")


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--certificate-sha256", "ab" * 32, "--no-verify-tls"],
         "--no-verify-tls: certificate checks off contradict --certificate-sha256; drop one"),
        (["--certificate-sha256", "ab" * 32, "--ca-bundle", "{bundle}"],
         "--certificate-sha256: a pin accepts one certificate whoever issued it; drop --ca-bundle"),
    ],
)  # fmt: skip
def test_ways_of_trust_that_contradict_each_other_are_refused(
    capsys, panorama, tmp_path, extra, error
):
    bundle = tmp_path / "ca.pem"
    bundle.write_text(CA_PEM)
    line = ["sync", "--cluster", "prod1", "--services", SAMPLE, "--dry-run"]
    extra = [part.format(bundle=bundle) for part in extra]
    code, out, err = run(capsys, *line, "--panorama", panorama.url, *extra)
    assert (code, out, err) == (2, "", f"aksfw: {error}\n")


def test_the_options_give_the_settings_the_configuration_gives(panorama, tmp_path):
    def settings(*line: str) -> PanoramaSettings:
        args = parse(["sync", "--cluster", "c1", "--services", SAMPLE, *line])
        return options.panorama_settings(args)

    document = {"panorama": {"host": panorama.url}}
    assert settings("--panorama", panorama.url) == parse_settings(document).panorama
    bundle = tmp_path / "ca.pem"
    bundle.write_text(CA_PEM)
    line = ["--panorama", f" {panorama.url}/ ", "--vsys", " vsys2 ", "--ca-bundle", str(bundle),
            "--batch-size", "5000", "--tag-timeout", "60"]  # fmt: skip
    document["panorama"] |= {
        "vsys": " vsys2 ", "caCertificates": CA_PEM, "batchSize": 5000, "tagTimeoutSeconds": 60,
    }  # fmt: skip
    assert settings(*line) == parse_settings(document).panorama
    pin = ":".join(["AB"] * 32)
    document["panorama"] = {"host": panorama.url, "certificateSha256": pin, "verifyTls": True}
    assert settings("--panorama", panorama.url, "--certificate-sha256", pin) == (
        parse_settings(document).panorama
    )
    document["panorama"] = {"host": panorama.url, "verifyTls": False}
    assert settings("--panorama", panorama.url, "--no-verify-tls") == (
        parse_settings(document).panorama
    )


# ---------------------------------------------------------------------- -v, --version, --help


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "tags", "--cluster", "c1", SAMPLE],
        ["tags", "-v", "--cluster", "c1", SAMPLE],
        ["tags", "--cluster", "c1", SAMPLE, "-v"],
        ["tags", "--cluster", "c1", SAMPLE, "--verbose"],
    ],
)
def test_verbose_is_accepted_anywhere_on_the_line(capsys, monkeypatch, argv):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(options, "compute_tags", broken)
    with pytest.raises(RuntimeError):  # -v shows the traceback, wherever it stands
        main(argv)


def test_version_is_the_installed_packages(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"aksfw {metadata.version('aksfw')}\n"


def test_help_describes_aksfw_its_environment_and_examples(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "keeps Palo Alto Networks Panorama in step with AKS" in out
    for variable in (
        "PANORAMA_API_KEY", "PANORAMA_USER", "PANORAMA_PASSWORD", "AKSFW_CONFIG",
        "AKSFW_CONFIG_FILE", "AKSFW_FUNCTION_KEY", "AKSFW_WATCH_CLUSTER_ID",
        "AKSFW_EVENTGRID_TOPIC_ENDPOINT", "AZURE_CLIENT_ID",
    ):  # fmt: skip
        assert variable in out
    examples = [line.strip() for line in out.split("examples:")[1].splitlines()]
    assert sum(line.startswith("aksfw ") for line in examples) >= 2
    assert "aksfw tags --cluster prod1 --selector web=app=web examples/services.json" in out


@pytest.mark.parametrize("command", ["tags", "registered", "sync", "watch", "status"])
def test_each_command_describes_itself(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    description = out.split("\n\n")[1].strip()
    assert description and not description.startswith(("options", "positional"))


# ---------------------------------------------------------------------- failures: exit 1


def test_an_answer_that_stays_5xx_says_how_often_it_was_tried(capsys, panorama):
    panorama.inject(Fault.HTTP_503, count=10)
    code, out, err = run(capsys, "registered", "--panorama", panorama.url)
    host = panorama.url.removeprefix("http://")
    assert (code, out) == (1, "")
    assert err == f"aksfw: {host} answered with an error (HTTP 503), after 4 attempts\n"


def test_a_refused_connection_says_host_port_and_what_to_check(capsys):
    port = closed_port()
    code, _, err = run(capsys, "registered", "--panorama", f"http://127.0.0.1:{port}")
    assert code == 1
    assert err == (
        f"aksfw: show registered-ip count: 127.0.0.1:{port} refused the connection "
        "(is Panorama listening on that port?), after 4 attempts\n"
    )


def test_a_name_that_does_not_resolve_is_a_dns_failure(capsys, retry_waits):
    code, _, err = run(capsys, "registered", "--panorama", "https://panorama.aksfw.invalid")
    assert code == 1
    assert err == (
        "aksfw: show registered-ip count: panorama.aksfw.invalid does not resolve (DNS): "
        "check the name, after 4 attempts\n"
    )
    assert len(retry_waits) == 3  # transient, so retried (without waiting here)


def test_tls_to_a_plain_http_server_asks_whether_it_is_one(capsys):
    with PanoramaSimulator(api_key=API_KEY) as plain:
        address = plain.url.removeprefix("http://")
        code, _, err = run(capsys, "registered", "--panorama", f"https://{address}")
    assert code == 1
    assert err == (
        f"aksfw: show registered-ip count: TLS handshake failed with {address}: "
        "is this an http:// server?\n"
    )


@pytest.mark.parametrize(
    ("fault", "answer"), [(Fault.NOT_XML, "an HTML page, HTTP 200"), (Fault.HTTP_501, "HTTP 501")]
)
def test_an_address_that_is_not_an_xml_api_is_said_so_and_not_retried(
    capsys, panorama, fault, answer
):
    panorama.inject(fault, count=5)
    code, _, err = run(capsys, "registered", "--panorama", panorama.url)
    host = panorama.url.removeprefix("http://")
    assert code == 1
    assert err == (
        f"aksfw: {host} does not answer like a PAN-OS XML API ({answer}): check the Panorama "
        "address (--panorama, or panorama.host in the configuration)\n"
    )
    assert len(panorama.calls) == 1


def test_no_azure_credential_says_to_run_az_login():
    # What DefaultAzureCredential raises when none of its ways found a credential: no answer.
    with pytest.raises(AuthError) as caught, azure_errors("list clusters", "Resource Manager"):
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
    assert str(caught.value).startswith("list clusters: no Azure credential: run `az login`")
    assert "AZURE_CLIENT_ID" in str(caught.value)


# ---------------------------------------------------------------------- noise, as a process


def run_process(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PANORAMA_API_KEY": API_KEY}
    return subprocess.run(
        [sys.executable, "-m", "aksfw_core", *argv],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.subprocess
def test_without_v_stderr_holds_only_aksfws_own_readable_lines(panorama):
    panorama.inject(Fault.HTTP_503, count=1)
    done = run_process("registered", "--panorama", panorama.url)
    host = panorama.url.removeprefix("http://")
    assert done.returncode == 0 and done.stdout.strip() == "{}"
    assert re.fullmatch(
        re.escape(f"aksfw: retrying show registered-ip count on {host}: {host} answered with an "
                  "error (HTTP 503) (attempt 1/4 failed, waiting ")
        + r"[0-9.]+ s\)\n",
        done.stderr,
    )  # fmt: skip
    assert done.stderr.count("\n") == 1


@pytest.mark.subprocess
def test_a_closed_port_gives_retry_lines_and_one_reason_and_nothing_else():
    port = closed_port()
    done = run_process("registered", "--panorama", f"http://127.0.0.1:{port}")
    lines = done.stderr.splitlines()
    assert done.returncode == 1 and len(lines) == 4
    assert all(line.startswith("aksfw: retrying show registered-ip count") for line in lines[:3])
    assert lines[-1].endswith("refused the connection (is Panorama listening on that port?), "
                              "after 4 attempts")  # fmt: skip
    assert not any(name in done.stderr for name in CLASS_NAMES)
