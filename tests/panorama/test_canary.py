"""The canary (who it is, what no cluster can do to it) and the client's requests for it,
and the count of registered IPs a read reports (the capacity warning), against the
simulator."""

from __future__ import annotations

import ipaddress
import json
import logging

import pytest

from aksfw_core.errors import NonRetryable
from aksfw_core.panorama.canary import (
    CANARY_NETWORK,
    canary_for,
    canary_timeout,
    is_canary_tag,
)
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.rules.plan import owned_only
from aksfw_core.rules.tags import ownership
from aksfw_local.fakes.panorama import PanoramaSimulator
from tests.support.panorama import API_KEY, settings_for

ENVIRONMENT = "https://stprod1.blob.core.windows.net/aksfw-state"


def test_the_canary_routes_nowhere_and_is_its_environments_own():
    canary = canary_for(ENVIRONMENT)
    assert ipaddress.ip_address(canary.ip) in CANARY_NETWORK  # RFC 6666: discard only
    assert ipaddress.ip_address(canary.ip) != CANARY_NETWORK.network_address
    assert canary.tag.startswith("aksfw.canary.") and len(canary.tag) == 29
    assert is_canary_tag(canary.tag)
    assert canary_for(ENVIRONMENT.upper() + " ") == canary  # stable, however spelt
    other = canary_for("https://stprod2.blob.core.windows.net/aksfw-state")
    assert other.ip != canary.ip and other.tag != canary.tag


@pytest.mark.parametrize("cluster", ["aks-prod1", "fw", "canary", "aksfw", "a"])
def test_no_cluster_owns_a_canary(cluster):
    canary = canary_for(ENVIRONMENT)
    assert not ownership(cluster).match(canary.tag)
    table = {canary.ip: frozenset({canary.tag}), "20.0.0.1": frozenset({f"aks.{cluster}.web"})}
    assert owned_only(table, ownership(cluster)) == {"20.0.0.1": frozenset({f"aks.{cluster}.web"})}


def test_the_canarys_timeout_is_one_pan_os_takes():
    assert canary_timeout(3600.0) == 3600
    assert canary_timeout(0.2) == 1
    assert canary_timeout(10**9) == 2_592_000


def test_a_canary_check_is_one_request_and_reads_only_the_canarys_address(
    panorama: PanoramaSimulator, client: PanoramaClient
):
    canary = canary_for(ENVIRONMENT)
    assert client.canary_present(canary) is False
    client.write_canary(canary, "register", 3600)
    panorama.seed("20.0.0.1", ["aks.aks-prod1.web"])
    panorama.seed(str(ipaddress.ip_address(canary.ip) + 1), ["corp.other"])  # a neighbour
    panorama.reset_calls()
    assert client.canary_present(canary) is True
    (call,) = panorama.calls
    assert call.type == "op" and f"<ip>{canary.ip}/128</ip>" in (call.command or "")
    panorama.reboot()  # not persistent: gone, the other registrations stay
    assert client.canary_present(canary) is False
    assert canary.ip not in panorama.registered() and len(panorama.registered()) == 2


def test_the_canary_is_registered_not_persistent_with_a_timeout_and_unregistered(
    panorama: PanoramaSimulator, client: PanoramaClient
):
    now = [1000.0]
    panorama.clock = lambda: now[0]
    canary = canary_for(ENVIRONMENT)
    client.write_canary(canary, "register", 600)
    assert panorama.registered() == {canary.ip: {canary.tag}}
    client.write_canary(canary, "unregister")
    client.write_canary(canary, "unregister")  # gone already: harmless
    assert panorama.registered() == {}
    client.write_canary(canary, "register", 600)
    now[0] += 601
    assert panorama.registered() == {}  # it expires by itself
    assert len(panorama.write_calls()) == 4


def test_a_refused_canary_says_why(panorama: PanoramaSimulator, client: PanoramaClient):
    canary = canary_for(ENVIRONMENT)
    panorama.reject_ips.add(canary.ip)
    with pytest.raises(NonRetryable, match="canary's register was refused: Failed to register"):
        client.write_canary(canary, "register", 600)


def test_each_read_reports_the_targets_count_and_warns_at_the_capacity_threshold(
    panorama: PanoramaSimulator, caplog
):
    panorama.seed_many({f"10.0.{i >> 8}.{i & 255}": ["corp.x"] for i in range(1200)})
    panorama.seed_many({"10.9.0.1": ["a"]}, target="007000000001")
    counts = []

    def read(target: str | None, warning: int | None) -> None:
        settings = settings_for(panorama, capacity_warning_ips=warning)
        if target:
            settings = settings.for_target(target)
        with PanoramaClient(settings, api_key(API_KEY), on_count=counted) as client:
            client.registered()

    def counted(target: str, ips: int, warning: int | None) -> None:
        counts.append((target, ips, warning))

    caplog.set_level(logging.INFO, logger="aksfw_core")
    read(None, None)
    read(None, 1200)
    read("007000000001", 1200)
    assert counts == [("panorama", 1200, None), ("panorama", 1200, 1200), ("007000000001", 1, 1200)]
    warnings = [
        json.loads(r.getMessage()) for r in caplog.records if "capacity_warning" in r.getMessage()
    ]
    assert [(w["target"], w["ips"], w["warning_ips"]) for w in warnings] == [
        ("panorama", 1200, 1200)
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if "capacity" in r.getMessage())
