"""A firewall that forgot (a reboot, a failover, a clear), through the whole local stack: the
timer checks each target's canary with one request, a target found to have forgotten is
audited and repaired within that timer run, and the canary is registered again. Each case
asserts the path (which requests reach Panorama, in which order, how many), not only the
end state."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from contextlib import suppress

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_core import functions
from aksfw_core.cli.tables import status_table
from aksfw_core.config import PanoramaSettings, PanoramaTargets
from aksfw_core.limits import Limits
from aksfw_core.panorama.canary import CANARY_NETWORK, canary_for
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.canaries import CanaryWatch
from aksfw_core.pipeline.decisions import CanaryStep
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.pipeline.storage import StorageAccount, StorageNames
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import Fault
from tests.support.flow import HANDLERS, configure
from tests.support.panorama import API_KEY
from tests.support.resyncs import visible_resyncs

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}
WEB_TAGS = {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}}
PERIOD_S = 300  # the timer's default period: every 5 minutes
SERIALS = ["007000000001", "007000000002"]


def run_timer() -> None:
    HANDLERS["resync_timer"](TimerRequest())


def status(world) -> dict:
    return json.loads(world.http("GET", "status").get_body())


def path(world) -> list[tuple[str | None, str]]:
    """The Panorama requests so far, in order: (target, what it asked)."""
    return [(call.target, _what(call.type, call.command or "")) for call in world.panorama.calls]


def _what(kind: str, command: str) -> str:
    if "aksfw.canary." in command:
        return "register canary" if "<register>" in command else "unregister canary"
    if kind == "op" and "100::" in command:
        return "check canary"
    if kind == "op":
        return "count" if "<option>count" in command else "page"
    return "write"


def events(caplog, name: str) -> list[dict]:
    found = []
    for record in caplog.records:
        with suppress(ValueError):
            line = json.loads(record.getMessage())
            if line.get("event") == name:
                found.append(line)
    return found


@pytest.fixture
def clock(world):
    """The app's clock, moved by the test (the simulator keeps real time)."""
    now = [time.time()]
    functions.application().engine.clock.source = lambda: now[0]
    return now


@pytest.fixture
def converged(world, clock, caplog):
    """One cluster's Service registered and the canary in place (a first timer run)."""
    caplog.set_level(logging.INFO, logger="aksfw_core")
    world.kube.services = [service(**WEB)]
    run_timer()
    world.drain()
    assert world.registered() == WEB_TAGS
    assert len(world.canary()) == 1
    world.panorama.reset_calls()
    clock[0] += PERIOD_S
    return world


def test_a_cleared_panorama_is_audited_and_repaired_in_the_next_timer_run(converged, clock, caplog):
    world = converged
    world.panorama.clear()  # `debug object registered-ip clear all`
    assert world.panorama.registered() == {}

    run_timer()
    # The timer: one check of the canary, which is gone; the clusters' states on the target
    # are marked dirty and they are resynced at once; then the canary is registered again.
    assert path(world) == [(None, "check canary"), (None, "register canary")]
    reasons = sorted(request.reason for request in visible_resyncs(world))
    assert reasons == ["target panorama lost its registrations", "timer"]
    assert world.applied().dirty
    world.drain()
    # The repair: the applier compares with Panorama itself (its count, one page) and
    # registers what is missing, once (the earlier of the two snapshots is superseded).
    assert path(world)[2:] == [(None, "count"), (None, "page"), (None, "write")]
    assert world.registered() == WEB_TAGS
    assert not world.applied().dirty
    (forgot,) = events(caplog, "panorama.target_forgot")
    assert (forgot["target"], forgot["clusters"], forgot["repair"]) == ("panorama", 1, "queued")
    assert events(caplog, "panorama.canary_lapsed") == []

    (shown,) = status(world)["canaries"]
    assert shown["target"] == "panorama" and shown["lastError"] is None
    assert shown["lastAmnesia"] == shown["lastCheck"] == shown["lastRegistered"]
    assert "LAST AMNESIA" in status_table(status(world))

    # The next run finds the canary and repairs nothing.
    world.panorama.reset_calls()
    clock[0] += PERIOD_S
    run_timer()
    world.drain()
    assert path(world) == [(None, "check canary"), (None, "register canary")]
    assert len(events(caplog, "panorama.target_forgot")) == 1


def test_a_reboot_keeps_persistent_registrations_so_the_audit_writes_nothing(converged, caplog):
    world = converged
    world.panorama.reboot()
    assert world.registered() == WEB_TAGS  # persistent="1": kept
    assert world.canary() == {}  # persistent="0": gone

    run_timer()
    world.drain()
    assert path(world) == [
        (None, "check canary"),
        (None, "register canary"),
        (None, "count"),
        (None, "page"),
    ]
    assert len(world.panorama.write_calls()) == 1  # the canary only
    assert world.registered() == WEB_TAGS and len(world.canary()) == 1
    assert len(events(caplog, "panorama.target_forgot")) == 1


def test_a_first_run_registers_the_canary_and_declares_nothing(world, clock, caplog):
    caplog.set_level(logging.INFO, logger="aksfw_core")
    run_timer()
    assert path(world) == [(None, "check canary"), (None, "register canary")]
    assert [request.reason for request in visible_resyncs(world)] == ["timer"]
    canary = functions.application().engine.canaries.canary
    assert world.canary() == {canary.ip: {canary.tag}}
    assert ipaddress.ip_address(canary.ip) in CANARY_NETWORK
    assert events(caplog, "panorama.target_forgot") == []
    (shown,) = status(world)["canaries"]
    assert shown["lastCheck"] and shown["lastRegistered"] and shown["lastAmnesia"] is None


def test_a_canary_gone_after_its_timeout_is_audited_as_lapsed_not_as_amnesia(
    converged, clock, caplog
):
    world = converged
    world.panorama.clear()
    clock[0] += Limits().canary_timeout_s  # no timer ran for an hour
    run_timer()
    world.drain()
    assert path(world)[:2] == [(None, "check canary"), (None, "register canary")]
    assert world.registered() == WEB_TAGS  # audited and repaired all the same
    assert events(caplog, "panorama.target_forgot") == []
    (lapsed,) = events(caplog, "panorama.canary_lapsed")
    assert lapsed["target"] == "panorama"
    assert status(world)["canaries"][0]["lastAmnesia"] is None


def test_a_failed_check_neither_delays_the_fan_out_nor_declares_amnesia(converged, caplog):
    world = converged
    world.panorama.inject(Fault.HTTP_503, count=4)  # every attempt of the check
    run_timer()
    assert [request.reason for request in visible_resyncs(world)] == ["timer"]
    assert [what for _, what in path(world)] == ["check canary"] * 4  # no registration
    (shown,) = status(world)["canaries"]
    assert "503" in shown["lastError"] and shown["lastErrorAt"]
    (failed,) = events(caplog, "canary.failed")
    assert failed["target"] == "panorama"
    world.drain()
    world.panorama.reset_calls()
    run_timer()  # Panorama answers again: the canary is still there
    assert path(world) == [(None, "check canary"), (None, "register canary")]
    assert status(world)["canaries"][0]["lastError"] is None
    assert events(caplog, "panorama.target_forgot") == []


def test_one_forgetful_firewall_is_repaired_alone(world, monkeypatch, azurite, clock, caplog):
    caplog.set_level(logging.INFO, logger="aksfw_core")
    configure(monkeypatch, (world.arm, world.panorama, azurite.connection_string),
              panorama={"host": world.panorama.url,
                        "targets": {"panorama": True, "serials": SERIALS}},
              limits={"panoramaMaxConcurrentRequests": 2})  # fmt: skip
    functions.application().engine.clock.source = lambda: clock[0]
    world.kube.services = [service(**WEB)]
    run_timer()
    world.drain()
    for target in (None, *SERIALS):
        assert world.panorama.registered(target).keys() >= {"20.0.0.1"}
        assert len(world.canary(target)) == 1
    world.panorama.reset_calls()
    world.panorama.max_in_flight = 0
    clock[0] += PERIOD_S

    world.panorama.clear(SERIALS[1])
    run_timer()
    checks = [target for target, what in path(world) if what == "check canary"]
    assert sorted(checks, key=str) == sorted([None, *SERIALS], key=str)  # one per target
    assert world.panorama.max_in_flight <= 2
    world.drain()
    repair = [(target, what) for target, what in path(world) if "canary" not in what]
    assert repair == [(SERIALS[1], "count"), (SERIALS[1], "page"), (SERIALS[1], "write")]
    assert world.panorama.registered(SERIALS[1])["20.0.0.1"] == WEB_TAGS["20.0.0.1"]
    (forgot,) = events(caplog, "panorama.target_forgot")
    assert forgot["target"] == SERIALS[1]


def test_audits_and_tombstones_leave_the_canary_and_an_uninstall_removes_it(
    converged, clock, caplog
):
    world = converged
    canary = world.canary()
    clock[0] += Limits().audit_interval_s  # the hourly audit
    run_timer()
    world.drain()
    assert world.canary() == canary and world.registered() == WEB_TAGS
    world.event("cluster-delete.eventgrid.json")  # the cluster's tombstone
    world.drain()
    assert world.registered() == {} and world.canary() == canary

    answer = json.loads(world.http("POST", "uninstall", b'{"dryRun": true}').get_body())
    assert answer["canaries"] == [{"target": "panorama", "removed": False}]
    assert world.canary() == canary
    answer = json.loads(world.http("POST", "uninstall", b'{"dryRun": false}').get_body())
    assert answer["canaries"] == [{"target": "panorama", "removed": True}]
    assert world.panorama.registered() == {}  # an uninstalled app leaves nothing behind
    assert status(world)["canaries"] == []
    run_timer()  # held: registers nothing again
    assert world.panorama.registered() == {}


@pytest.fixture
def second_environment(world, azurite):
    """Another aksfw environment (its own storage) on the same Panorama."""
    names = StorageNames("b-resync", "b-updates", "b-state")
    cs = azurite.connection_string
    queues = QueueServiceClient.from_connection_string(cs)
    blobs = BlobServiceClient.from_connection_string(cs)
    account = StorageAccount(queues, blobs, names)
    settings = PanoramaSettings(url=world.panorama.url)

    def panorama_for(target: str) -> PanoramaClient:
        return PanoramaClient(settings.for_target(target), api_key(API_KEY))

    targets = TargetResolver(PanoramaTargets(), lambda: panorama_for("panorama"))
    store = StateStore(account)
    yield CanaryWatch(
        canary_for(account.identity), store, MessageQueues(account), targets, panorama_for
    )
    for name in names.queues:
        with suppress(ResourceNotFoundError):
            queues.delete_queue(name)
    with suppress(ResourceNotFoundError):
        blobs.delete_container(names.state_container)


def test_two_environments_on_one_panorama_keep_their_own_canaries(
    converged, second_environment, caplog
):
    world, other = converged, second_environment
    mine = functions.application().engine.canaries.canary
    assert other.canary.ip != mine.ip and other.canary.tag != mine.tag

    assert [check.step for check in other.check()] == [CanaryStep.FIRST]
    run_timer()
    assert [check.step for check in other.check()] == [CanaryStep.PRESENT]
    world.drain()
    assert world.canary() == {mine.ip: {mine.tag}, other.canary.ip: {other.canary.tag}}
    assert events(caplog, "panorama.target_forgot") == []

    world.http("POST", "uninstall", b'{"dryRun": false}')
    assert world.canary() == {other.canary.ip: {other.canary.tag}}
    assert [check.step for check in other.check()] == [CanaryStep.PRESENT]


def test_a_hung_panorama_costs_the_timer_the_canary_deadline_and_no_more(
    world, monkeypatch, azurite, clock
):
    configure(monkeypatch, (world.arm, world.panorama, azurite.connection_string),
              limits={"canaryDeadlineSeconds": 1})  # fmt: skip
    world.panorama.slow_seconds = 30
    world.panorama.inject(Fault.SLOW, count=5)
    started = time.monotonic()
    run_timer()
    assert time.monotonic() - started < 10  # not 4 attempts of 120 s
    world.panorama.clear_faults()
    assert [request.reason for request in visible_resyncs(world)] == ["timer"]  # fanned out
    assert path(world) == [(None, "check canary")]  # one attempt, cut to the deadline
    (shown,) = status(world)["canaries"]
    assert shown["lastError"] and shown["lastCheck"] is None
