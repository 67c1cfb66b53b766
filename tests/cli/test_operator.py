"""`aksfw status` and `aksfw replay` against the app's HTTP functions served by a real
loopback server (`FunctionsHttpHost`) over the local stack."""

from __future__ import annotations

import json
import re
import socket
from functools import partial

import pytest
from azure.functions.timer import TimerRequest

from aksfw_core.cli.program import main
from aksfw_core.endpoints import app_url
from aksfw_core.errors import InputError
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.server import HttpResponse, LoopbackHTTPServer
from aksfw_local.functions_host import enqueue, poison_messages
from aksfw_local.functions_http import FunctionsHttpHost
from tests.support import cli
from tests.support.flow import HANDLERS
from tests.support.panorama import API_KEY

FUNCTION_KEY = "fn-key-7f3a9c1e5b"
WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}


@pytest.fixture
def host(world, monkeypatch):
    monkeypatch.delenv("AKSFW_FUNCTION_KEY", raising=False)
    with FunctionsHttpHost(key=FUNCTION_KEY) as served:
        yield served
    assert served.errors == []


run = partial(cli.run, hidden=[FUNCTION_KEY])


def no_key_in_urls(host):
    assert host.requests
    assert all(FUNCTION_KEY not in request.path for request in host.requests)


def test_status_prints_a_table_of_clusters_targets_and_queues(world, host, capsys):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    code, out, err = run(capsys, "status", "--app", host.url, "--key", FUNCTION_KEY)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["CLUSTER", "TARGET", "STATE", "LAST", "APPLIED", "IPS", "TAGS",
                                "LAST", "ERROR"]  # fmt: skip
    row = lines[1].split()
    assert row[:3] == ["aks-prod1", "panorama", "ok"] and row[-3:] == ["1", "2", "-"]
    assert "panorama-updates-poison  0" in out
    assert host.requests[0].headers["x-functions-key"] == FUNCTION_KEY
    no_key_in_urls(host)


def test_status_shows_each_targets_canary_and_when_it_last_forgot(world, host, capsys):
    HANDLERS["resync_timer"](TimerRequest())  # the canary is registered
    world.panorama.clear()
    HANDLERS["resync_timer"](TimerRequest())  # ... found gone: the target forgot
    (canary,) = json.loads(world.http("GET", "status").get_body())["canaries"]
    assert canary["lastAmnesia"] and canary["lastError"] is None
    code, out, _ = run(capsys, "status", "--app", host.url, "--key", FUNCTION_KEY)
    assert code == 0
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("TARGET")))
    assert lines[header].split() == ["TARGET", "CANARY", "CHECKED", "LAST", "AMNESIA", "CANARY",
                                     "ERROR"]  # fmt: skip
    assert lines[header + 1].split() == ["panorama", canary["lastCheck"], canary["lastAmnesia"],
                                         "-"]  # fmt: skip


def test_status_shows_an_uninstalls_hold_since_when_and_by_whom(world, host, capsys):
    assert world.http("POST", "uninstall", b'{"dryRun": false}').status_code == 202
    answer = json.loads(world.http("GET", "status").get_body())
    assert answer["uninstallingBy"] == "function key" and answer["uninstallingSince"]
    code, out, _ = run(capsys, "status", "--app", host.url, "--key", FUNCTION_KEY)
    assert code == 0
    assert out.splitlines()[-1] == (
        f"uninstalling: resyncs held back until {answer['uninstallingUntil']}, since "
        f"{answer['uninstallingSince']} by function key (`aksfw uninstall --cancel` ends it)"
    )
    code, _, _ = run(capsys, "uninstall", "--app", host.url, "--key", FUNCTION_KEY, "--cancel")
    assert code == 0
    code, out, _ = run(capsys, "status", "--app", host.url, "--key", FUNCTION_KEY)
    assert "uninstalling" not in out


def test_status_json_is_the_apps_answer_and_the_key_may_come_from_the_environment(
    world, host, capsys, monkeypatch
):
    monkeypatch.setenv("AKSFW_FUNCTION_KEY", FUNCTION_KEY)
    code, out, _ = run(capsys, "status", "--app", host.url, "--json")
    assert code == 0
    assert json.loads(out) == json.loads(world.http("GET", "status").get_body())


def test_a_refused_key_gives_one_clear_line_and_never_shows_the_key(world, host, capsys):
    code, out, err = run(capsys, "status", "--app", host.url, "--key", "wrong-" + FUNCTION_KEY)
    assert (code, out) == (1, "")
    assert err == (
        f"aksfw: GET /api/status on {host.url.removeprefix('http://')}: "
        "the function key was refused (HTTP 401): set AKSFW_FUNCTION_KEY (or --key) to a key of "
        "this app (az functionapp keys list --resource-group RG --name APP)\n"
    )
    assert "wrong-" not in err
    code, _, err = run(capsys, "replay", "--app", host.url)
    assert code == 1 and "a function key is needed (HTTP 401): set AKSFW_FUNCTION_KEY" in err


def test_replay_dry_run_then_replay_through_the_command_line(world, host, capsys):
    world.kube.services = [service(**WEB)]
    world.panorama.api_key = "rotated"
    world.event("lb-write.eventgrid.json")
    world.drain()
    world.panorama.api_key = API_KEY
    poisoned = poison_messages(world.connection_string, "panorama-updates")
    assert len(poisoned) == 1
    app = ["--app", host.url, "--key", FUNCTION_KEY]
    code, out, _ = run(capsys, "replay", *app, "--dry-run", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["totals"] == {"read": 1, "replayed": 0, "wouldReplay": 1, "kept": 0}
    assert poison_messages(world.connection_string, "panorama-updates") == poisoned
    code, out, _ = run(capsys, "replay", *app, "--queue", "panorama-updates", "--max", "5")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == ["ID", "QUEUE", "KIND", "CLUSTER", "TARGET", "DECISION"]
    assert row.split()[1:] == ["panorama-updates", "snapshot", "aks-prod1", "panorama", "replayed"]
    assert out.splitlines()[-1] == "read 1: 1 replayed, 0 kept"
    world.drain()
    assert "20.0.0.1" in world.registered()
    assert json.loads(host.requests[-1].body) == {"dryRun": False, "queue": "panorama-updates",
                                                  "max": 5}  # fmt: skip
    no_key_in_urls(host)


def test_kept_messages_show_their_reason_under_the_table(world, host, capsys):
    enqueue(world.connection_string, "panorama-updates", "not json")
    world.drain()
    code, out, _ = run(capsys, "replay", "--app", host.url, "--key", FUNCTION_KEY)
    assert code == 0
    assert "kept: malformed" in out and "message is not JSON" in out
    assert out.splitlines()[-1] == "read 1: 0 replayed, 1 kept"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["replay", "--max", "0"], "aksfw: --max must be at least 1\n"),
        (["replay", "--max", "100000"], "max must be 1 to 200 (limits.replayMaxMessages)"),
        (["replay", "--queue", "nope"], "invalid choice: 'nope'"),
        (["status", "--app", "http://example.com"], "--app must use https://"),
        (["status", "--app", "https://user@example.com"], "must not carry user information"),
        (["status", "--app", "https://example.com/?code=x"], "must not carry a path, a query"),
        (["status", "--key", "two words"], "the function key is empty or holds characters"),
    ],
)
def test_bad_input_exits_2_with_one_line(world, host, capsys, argv, reason):
    if "--app" not in argv:
        argv = [*argv, "--app", host.url]
    if "--key" not in argv:
        argv = [*argv, "--key", FUNCTION_KEY]
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    _, err = capsys.readouterr()
    assert code == 2
    assert reason in err and len(err.strip().splitlines()) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_one_line(capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    code, _, err = run(capsys, "status", "--app", url, "--key", FUNCTION_KEY)
    assert code == 1 and err.endswith(": connection refused\n") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (HttpResponse(200, b"<html>sign in</html>", "text/html"), "something other than JSON"),
        (HttpResponse(302, headers={"Location": "https://elsewhere.invalid/"}), "a redirect; none is followed"),
        (HttpResponse(503, b'{"error": "Retryable: storage unreachable"}'), "aksfw: GET /api/status"),
    ],
    ids=["html", "redirect", "503"],
)  # fmt: skip
def test_odd_answers_are_one_clear_line(capsys, answer, reason):
    seen = []

    def app(request):
        seen.append(request)
        return answer

    server = LoopbackHTTPServer(app)
    server.start()
    try:
        code, out, err = run(capsys, "status", "--app", server.url, "--key", FUNCTION_KEY)
    finally:
        server.stop()
    assert (code, out) == (1, "")
    assert reason in err and err.count("\n") == 1
    assert len(seen) == 1  # no retry, no redirect followed


def test_tls_is_verified(world, capsys, tmp_path):
    with FunctionsHttpHost(key=FUNCTION_KEY, tls_dir=tmp_path / "tls") as host:
        url = host.url.replace("127.0.0.1", "localhost")
        code, _, err = run(capsys, "status", "--app", url, "--key", FUNCTION_KEY)
        assert code == 1 and "TLS verification failed" in err
        assert host.requests == []  # the key was never sent
        code, out, _ = run(capsys, "status", "--app", url, "--key", FUNCTION_KEY, "--ca-bundle",
                           str(host.ca_file), "--json")  # fmt: skip
        assert code == 0 and "queues" in json.loads(out)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("https://func-aksfw.azurewebsites.net", "https://func-aksfw.azurewebsites.net"),
        (" https://func-aksfw.azurewebsites.net/api/ ", "https://func-aksfw.azurewebsites.net"),
        ("func-aksfw.azurewebsites.net:8443", "https://func-aksfw.azurewebsites.net:8443"),
        ("http://localhost:7071/", "http://localhost:7071"),
        ("http://127.0.0.1:7071", "http://127.0.0.1:7071"),
        ("http://[::1]:7071", "http://[::1]:7071"),
    ],
)
def test_app_url_forms(text, url):
    assert app_url(text) == url


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "--app must be https://host[:port]"),
        ("ftp://app.example.com", "--app must be https://host[:port]"),
        ("http://app.example.com", "--app must use https:// (http:// only to this machine)"),
        ("https://key@app.example.com", "--app must not carry user information"),
        ("https://app.example.com/api/status", "--app must not carry a path"),
        ("https://app.example.com#x", "--app must not carry a path"),
        ("https://app.example.com:0", "--app has an invalid port"),
        ("https://app.example.com:99999", "--app has an invalid port"),
    ],
)
def test_app_urls_that_could_send_the_key_elsewhere_are_refused(text, reason):
    with pytest.raises(InputError, match=re.escape(reason)):
        app_url(text)
