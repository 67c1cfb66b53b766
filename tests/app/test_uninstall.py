"""Uninstall (`POST /api/uninstall`, `aksfw uninstall`): every tag aksfw registered goes from
every target, foreign tags stay, and nothing registers again meanwhile. Over the real local
stack (Azurite, the Panorama simulator, the fakes). The azd `predown` hook that calls it runs
in tests/deploy/test_hooks.py."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace
from datetime import datetime
from functools import partial

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from aksfw_core import functions, limits
from aksfw_core.app.uninstall_gate import Uninstalling, iso
from aksfw_core.rules.messages import Snapshot, encode
from aksfw_local.fakes.kube_api import service
from aksfw_local.functions_host import enqueue
from aksfw_local.functions_http import FunctionsHttpHost
from tests.support import cli
from tests.support.flow import CLUSTER, HANDLERS, SUB, configure
from tests.support.queues import UPDATES, waiting

FUNCTION_KEY = "fn-key-uninstall-42"
SERIALS = ["007000000001", "007000000002"]
OTHER = CLUSTER.replace("aks-prod1", "aks-prod2")
WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}
FOREIGN = {"20.0.0.1": {"corp.monitoring"}}


def post(world, route: str, body: object) -> tuple[int, dict]:
    response = world.http("POST", route, json.dumps(body).encode())
    return response.status_code, json.loads(response.get_body())


def status(world) -> dict:
    return json.loads(world.http("GET", "status").get_body())


def registered(world) -> dict[str, dict[str, set[str]]]:
    return {serial: world.panorama.registered(target=serial) for serial in SERIALS}


@pytest.fixture
def converged(world, monkeypatch, azurite):
    """Two clusters on two firewalls, converged; a foreign tag on each firewall."""
    world.arm.add_cluster(SUB, "rg-prod", "aks-prod2", tags={"aksfw": "on"},
                          node_resource_group="MC_rg-prod_aks-prod2_westeurope",
                          kubeconfig=world.kube.kubeconfig())  # fmt: skip
    configure(monkeypatch, (world.arm, world.panorama, azurite.connection_string),
              panorama={"host": world.panorama.url, "targets": {"serials": SERIALS}})  # fmt: skip
    for serial in SERIALS:
        world.panorama.seed("20.0.0.1", ["corp.monitoring"], target=serial)
    world.kube.services = [service(**WEB)]
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    for tags in registered(world).values():
        assert tags["20.0.0.1"] == {"corp.monitoring", "aks.aks-prod1.web",
                                    "aks.aks-prod1.svc.app.web", "aks.aks-prod2.web",
                                    "aks.aks-prod2.svc.app.web"}  # fmt: skip
    return world


def test_dry_run_lists_every_cluster_and_target_and_changes_nothing(converged):
    world = converged
    before, updates = registered(world), len(world.updates.results)
    code, answer = post(world, "uninstall", {"dryRun": True})
    assert code == 200
    assert answer["dryRun"] is True and answer["heldUntil"] is None
    assert sorted((t["tagName"], t["target"], t["ips"], t["tags"]) for t in answer["targets"]) == [
        ("aks-prod1", SERIALS[0], 1, 2), ("aks-prod1", SERIALS[1], 1, 2),
        ("aks-prod2", SERIALS[0], 1, 2), ("aks-prod2", SERIALS[1], 1, 2),
    ]  # fmt: skip
    assert answer["totals"] == {"clusters": 2, "targets": 4, "ips": 4, "tags": 8}
    world.drain()
    assert len(world.updates.results) == updates  # nothing was queued
    assert registered(world) == before
    assert status(world)["uninstallingUntil"] is None
    assert world.http("POST", "resync", b"{}").status_code == 202  # not held


def test_uninstall_removes_only_aksfw_tags_and_holds_resyncs_back(converged, caplog):
    world = converged
    caplog.set_level(logging.INFO, logger="aksfw_core")
    # Snapshots listed before the uninstall, and resyncs asked for before it, still in
    # their queues when it runs:
    world.kube.services = [service(**WEB), service("api", "shop", ips=["20.0.0.9"])]
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.resyncs.run_until_idle(timeout_s=20)
    assert world.http("POST", "resync", b"{}").status_code == 202

    code, answer = post(world, "uninstall", {"dryRun": False})
    assert code == 202
    assert answer["totals"]["targets"] == 4 and answer["heldUntil"]
    # While uninstalling, nothing queues a resync: not the API, not an event, not the timer.
    refused = world.http("POST", "resync", b"{}")
    assert refused.status_code == 409
    assert "uninstalling" in json.loads(refused.get_body())["error"]
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert registered(world) == {serial: FOREIGN for serial in SERIALS}
    held = [r.getMessage() for r in caplog.records if ".held" in r.getMessage()]
    assert sum("apply.held" in line for line in held) == 4
    assert sum("resync.held" in line for line in held) == 2
    assert sum("event.held" in line for line in held) == 1
    # A snapshot that comes after the tombstones (a retried delivery) registers nothing.
    late = Snapshot(CLUSTER, "aks-prod1", SERIALS[0], time.time_ns(),
                    tags={"20.0.0.9": frozenset({"aks.aks-prod1.api"})})  # fmt: skip
    enqueue(world.connection_string, "panorama-updates", encode(late))
    world.drain()
    assert registered(world) == {serial: FOREIGN for serial in SERIALS}
    after = status(world)
    assert [c["targets"] for c in after["clusters"]] == [[], []]
    assert after["uninstallingUntil"] == answer["heldUntil"]
    # Asking again is safe: nothing is left to remove.
    code, again = post(world, "uninstall", {"dryRun": False})
    assert (code, again["totals"]["targets"]) == (202, 0)


def uninstall_as(body: object, **headers: str) -> tuple[int, dict]:
    """`POST /api/uninstall` carrying the headers the platform adds."""
    request = func.HttpRequest("POST", "http://localhost/api/uninstall", headers=headers,
                               body=json.dumps(body).encode())  # fmt: skip
    response = HANDLERS["uninstall"](request)
    return response.status_code, json.loads(response.get_body())


def fanned_out(caplog) -> int:
    return sum("timer.fanned_out" in r.getMessage() for r in caplog.records)


def test_cancel_ends_the_pause_here_at_once_and_on_other_instances_within_a_minute(
    converged, caplog
):
    world = converged
    caplog.set_level(logging.INFO, logger="aksfw_core")
    now = [time.time()]
    other = functions.application()  # the instance that uninstalls; it remembers the pause
    other.engine.clock.source = lambda: now[0]
    code, answer = uninstall_as({"dryRun": False},
                                **{"x-ms-client-principal-name": "ops@contoso.com"})  # fmt: skip
    assert code == 202 and answer["heldBy"] == "principal ops@contoso.com"
    world.drain()
    assert registered(world) == {serial: FOREIGN for serial in SERIALS}

    functions.application.cache_clear()
    here = functions.application()  # another instance, which will cancel
    here.engine.clock.source = lambda: now[0]
    assert world.http("POST", "resync", b"{}").status_code == 409  # it remembers it too
    shown = status(world)
    assert shown["uninstallingUntil"] == answer["heldUntil"]
    assert shown["uninstallingSince"] == iso(now[0])
    assert shown["uninstallingBy"] == "principal ops@contoso.com"

    now[0] += 5
    code, cancelled = uninstall_as({"cancel": True},
                                   **{"x-forwarded-for": "198.51.100.1, 203.0.113.7:51234"})  # fmt: skip
    assert code == 200
    assert cancelled == {
        "cancelled": True, "wasUntil": answer["heldUntil"], "startedAt": shown["uninstallingSince"],
        "startedBy": "principal ops@contoso.com",
        "cancelledBy": "function key from 203.0.113.7:51234", "cancelledAt": iso(now[0]),
    }  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "uninstall.cancelled" in r.getMessage()]
    assert len(lines) == 1 and "function key from 203.0.113.7:51234" in lines[0]
    assert "ops@contoso.com" in lines[0]
    # The instance that cancelled forgets at once: resyncs and the timer go on.
    assert world.http("POST", "resync", b"{}").status_code == 202
    HANDLERS["resync_timer"](TimerRequest())
    assert fanned_out(caplog) == 1
    assert status(world)["uninstallingUntil"] is None
    # The other trusts what it read for at most a minute, then reads it again.
    with pytest.raises(Uninstalling):
        other.triggers.request_resync(None)
    now[0] += 61
    assert other.triggers.request_resync(None) == [CLUSTER, OTHER]
    other.triggers.on_timer()
    assert fanned_out(caplog) == 2
    world.drain()  # the tags come back
    for tags in registered(world).values():
        assert "aks.aks-prod1.web" in tags["20.0.0.1"] and "aks.aks-prod2.web" in tags["20.0.0.1"]
    # Nothing left to cancel: said so, nothing changes.
    code, again = uninstall_as({"cancel": True})
    assert (code, again["cancelled"], again["cancelledBy"]) == (200, False, "function key")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"cancel": true, "dryRun": true}', "cancel and dryRun do not go together"),
        (b'{"dryRun": false, "cancel": true}', "cancel and dryRun do not go together"),
        (b'{"cancel": "yes"}', "cancel must be true or false"),
        (b'{"cancel": false}', "cancel must be true to cancel"),
        (b"", "dryRun is required"),
        (b"{}", "dryRun is required"),
        (b'{"dryRun": "yes"}', "dryRun must be true or false"),
        (b'{"dryRun": true, "force": 1}', "unknown field 'force'"),
        (b"[", 'send {"dryRun": true}'),
        # A check of one value and an act on the other: refused, however it is spelt.
        (b'{"dryRun": true, "dryRun": false}', "the key 'dryRun' twice"),
        (b'{"dryRun": false, "dryRun": true}', "the key 'dryRun' twice"),
    ],
)
def test_a_bad_body_removes_nothing(world, body, reason):
    response = world.http("POST", "uninstall", body)
    assert response.status_code == 400
    assert reason in json.loads(response.get_body())["error"]
    status = json.loads(world.http("GET", "status").get_body())
    assert status["uninstallingUntil"] is None  # nothing paused, nothing queued
    assert waiting(world, UPDATES) == 0


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def host(world, monkeypatch):
    monkeypatch.delenv("AKSFW_FUNCTION_KEY", raising=False)
    fast = replace(limits.COMMAND_LINE, uninstall_poll_s=0.1)
    monkeypatch.setattr(limits, "COMMAND_LINE", fast)
    with FunctionsHttpHost(key=FUNCTION_KEY) as served:
        yield served
    assert served.errors == []


run = partial(cli.run, hidden=[FUNCTION_KEY])


def test_cli_uninstall_waits_until_nothing_remains(converged, host, capsys):
    world = converged
    app = ["--app", host.url, "--key", FUNCTION_KEY]
    code, out, _ = run(capsys, "uninstall", *app, "--dry-run")
    assert code == 0
    assert out.splitlines()[0].split() == ["CLUSTER", "TARGET", "IPS", "TAGS"]
    assert "would remove the tags of 4 target(s) of 2 cluster(s): 4 IPs, 8 IP-tags" in out

    stop = threading.Event()

    def functions_host() -> None:  # the queue triggers run while the command waits
        while not stop.is_set():
            world.drain()
            stop.wait(0.1)

    worker = threading.Thread(target=functions_host)
    worker.start()
    try:
        code, out, err = run(capsys, "uninstall", *app, "--wait", "60")
    finally:
        stop.set()
        worker.join()
    assert code == 0, err
    assert "removing the tags of 4 target(s)" in out and "resyncs held back until" in out
    assert "no cluster holds a target" in err
    assert registered(world) == {serial: FOREIGN for serial in SERIALS}
    assert json.loads(host.requests[0].body) == {"dryRun": True}
    assert all(FUNCTION_KEY not in request.path for request in host.requests)


def test_cli_wait_times_out_with_what_remains(world, host, capsys):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    code, out, err = run(capsys, "uninstall", "--app", host.url, "--key", FUNCTION_KEY,
                         "--wait", "0.3", "--json")  # fmt: skip
    assert code == 1
    assert json.loads(out)["totals"]["targets"] == 1
    assert "after 0.3 s tags remain on aks-prod1/panorama" in err
    world.drain()
    assert "20.0.0.1" not in world.registered()


def test_cli_cancel_ends_the_pause_and_says_so(converged, host, capsys):
    world = converged
    app = ["--app", host.url, "--key", FUNCTION_KEY]
    code, answer = post(world, "uninstall", {"dryRun": False})
    assert code == 202
    code, out, err = run(capsys, "uninstall", *app, "--cancel")
    assert (code, err) == (0, "")
    assert out == (
        f"cancelled the uninstall's hold (started {status_since(answer)} by function key, "
        f"until {answer['heldUntil']}): resyncs run again within a minute on every instance\n"
    )
    assert json.loads(host.requests[-1].body) == {"cancel": True}
    assert world.http("POST", "resync", b"{}").status_code == 202
    code, out, _ = run(capsys, "uninstall", *app, "--cancel", "--json")
    assert code == 0 and json.loads(out)["cancelled"] is False
    code, out, _ = run(capsys, "uninstall", *app, "--cancel")
    assert out == "no uninstall held resyncs back: nothing to cancel\n"


def status_since(answer: dict) -> str:
    """When a pause that ends at `heldUntil` started."""
    until = datetime.fromisoformat(answer["heldUntil"]).timestamp()
    return iso(until - limits.Limits.uninstall_pause_s) or ""


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--cancel", "--dry-run"], "--cancel goes with neither --dry-run nor --wait"),
        (["--cancel", "--wait", "5"], "--cancel goes with neither --dry-run nor --wait"),
        (["--dry-run", "--wait", "5"], "--wait means nothing with --dry-run"),
        (["--wait", "0"], "--wait must be more than 0"),
    ],
)
def test_cli_refuses_a_wait_that_means_nothing(capsys, argv, reason):
    code, _, err = run(capsys, "uninstall", "--app", "https://example.com", *argv)
    assert code == 2 and reason in err
