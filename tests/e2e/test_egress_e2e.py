"""Egress tags end to end, through the local stack (`world`: Azurite, the fake Resource
Manager with outbound IPs, prefixes and NAT gateways, the fake Kubernetes API with
StaticGatewayConfiguration objects, the Panorama simulator): a cluster's outbound
addresses under `aks.<cluster>.egress`, a gateway's prefix under its own tag, a failed read
that removes nothing, a public IP write event that moves the tag, and the cluster's
deletion that takes them away.
"""

from __future__ import annotations

import json
import logging

import pytest

from aksfw_local.fakes.arm import PUBLIC_IP_READ, derived_outbound_ip
from aksfw_local.fakes.kube_api import gateway, service
from tests.support.arm import no_sdk_backoff
from tests.support.arm import resource_event as event
from tests.support.flow import CLUSTER, NODE_GROUP, SUB, configure

EGRESS = "aks.aks-prod1.egress"
GW1 = "aks.aks-prod1.egress.shop.gw1"
WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"]}
OWN = "rg-net"
GATEWAYS = "staticgatewayconfigurations"


@pytest.fixture(autouse=True)
def _sdk_without_waits(monkeypatch):
    no_sdk_backoff(monkeypatch)


def opt_in(world, monkeypatch, **document: object) -> None:
    configure(monkeypatch, (world.arm, world.panorama, world.connection_string), **document)


def sync(world, document: dict[str, object] | None = None) -> None:
    world.event(document or event("Write", CLUSTER, "Microsoft.ContainerService/managedClusters/write"))  # fmt: skip
    world.drain()


def logged(caplog, name: str) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if f'"{name}"' in r.getMessage()]


@pytest.fixture
def managed_ip():
    return derived_outbound_ip(CLUSTER)


def test_off_by_default_registers_no_egress_and_reads_none(world):
    world.kube.gateways = [gateway("gw1", "shop", "20.1.2.0/31")]
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}}
    assert not any("microsoft.network" in r.path.lower() for r in world.arm.requests)
    assert not any(GATEWAYS in r.path for r in world.kube.requests)


@pytest.mark.parametrize(
    ("document", "registered"),
    [
        ({"egressTags": True}, True),
        ({"egressTags": True, "clusters": [{"id": CLUSTER, "egressTags": False}]}, False),
        ({"clusters": [{"id": CLUSTER, "egressTags": True}]}, True),
    ],
    ids=["global-on", "cluster-off-overrides", "cluster-on-overrides"],
)
def test_the_managed_outbound_ip_is_registered_when_on(
    world, monkeypatch, managed_ip, document, registered
):
    opt_in(world, monkeypatch, **document)
    world.kube.services = [service(**WEB)]
    sync(world)
    expected = {"20.0.0.1": {"aks.aks-prod1.web"}}
    if registered:
        expected[managed_ip] = {EGRESS}
    assert world.registered() == expected


def test_own_outbound_ips_prefixes_and_gateways_reach_panorama(world, monkeypatch):
    opt_in(world, monkeypatch, egressTags=True)
    ip = world.arm.add_public_ip(SUB, OWN, "egress-ip", "20.9.9.9")
    prefix = world.arm.add_public_ip_prefix(SUB, OWN, "egress-prefix", "20.8.8.0/30")
    world.arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [ip], [prefix])
    world.kube.gateways = [
        gateway("gw1", "shop", "20.1.2.0/31"),
        gateway("gw2", "web", "10.1.0.4,10.1.0.5"),  # private mode: its addresses
        gateway("gw3", "web", "20.1.2.0/31"),  # the same prefix as gw1: both tag it
        gateway("pending", "web"),  # no prefix yet: no entry
    ]
    # A Service reusing the outbound IP: the IP carries both tags.
    world.kube.services = [service(**WEB), service("api", "shop", ips=["20.9.9.9"])]
    sync(world)
    assert world.registered() == {
        "20.0.0.1": {"aks.aks-prod1.web"},
        "20.9.9.9": {"aks.aks-prod1.api", EGRESS},
        "20.8.8.0/30": {EGRESS},
        "20.1.2.0/31": {GW1, "aks.aks-prod1.egress.web.gw3"},
        "10.1.0.4": {"aks.aks-prod1.egress.web.gw2"},
        "10.1.0.5": {"aks.aks-prod1.egress.web.gw2"},
    }
    world.kube.gateways = [gateway("gw1", "shop", "20.1.2.0/31")]  # the others deleted
    sync(world)
    assert world.registered()["20.1.2.0/31"] == {GW1}
    assert "10.1.0.4" not in world.registered()


def test_a_user_assigned_nat_gateway_on_the_node_subnet(world, monkeypatch):
    opt_in(world, monkeypatch, egressTags=True)
    ip = world.arm.add_public_ip(SUB, OWN, "nat-ip", "20.9.9.10")
    nat = world.arm.add_nat_gateway(SUB, OWN, "nat", [ip])
    ids = world.arm.add_virtual_network(SUB, OWN, "hub", {"nodes": "10.10.0.0/22"})
    world.arm.attach_nat_gateway(ids["nodes"], nat)
    world.arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": ids["nodes"]})
    world.arm.set_outbound(SUB, "rg-prod", "aks-prod1", "userAssignedNATGateway")
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, "20.9.9.10": {EGRESS}}


def test_a_new_outbound_ip_moves_the_tag_after_its_public_ip_write_event(
    world, monkeypatch, managed_ip
):
    opt_in(world, monkeypatch, egressTags=True)
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()[managed_ip] == {EGRESS}
    new = world.arm.add_public_ip(SUB, NODE_GROUP, "second-outbound", "20.9.9.11")
    world.arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [new])
    world.arm.reset_requests()
    sync(world, event("Write", new, "Microsoft.Network/publicIPAddresses/write"))
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, "20.9.9.11": {EGRESS}}
    assert any("second-outbound" in r.path for r in world.arm.requests)


@pytest.mark.parametrize(("fault", "error"), [("server", "Retryable"), ("forbidden", "AuthError")])
def test_a_failed_outbound_read_keeps_the_entries_while_service_tags_move_on(
    world, monkeypatch, caplog, managed_ip, fault, error
):
    opt_in(world, monkeypatch, egressTags=True)
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()[managed_ip] == {EGRESS}

    if fault == "forbidden":
        world.arm.deny(PUBLIC_IP_READ)
    else:
        world.arm.inject(500, count=1000, path_contains="/publicIPAddresses/")
    world.kube.services = [service("api", "shop", ips=["20.0.0.2"])]
    with caplog.at_level(logging.WARNING, logger="aksfw_core.pipeline.egress_tags"):
        sync(world)
    assert world.registered() == {"20.0.0.2": {"aks.aks-prod1.api"}, managed_ip: {EGRESS}}
    (failure, *_) = logged(caplog, "egress.read_failed")
    assert str(failure["error"]).startswith(error)
    assert failure["kept"] == [managed_ip]
    if fault == "forbidden":
        assert PUBLIC_IP_READ in str(failure["error"])

    world.arm.clear_faults()
    world.arm.allow(PUBLIC_IP_READ)
    new = world.arm.add_public_ip(SUB, NODE_GROUP, "second-outbound", "20.9.9.11")
    world.arm.set_outbound(SUB, "rg-prod", "aks-prod1", "loadBalancer", [new])
    sync(world)  # the read works again: the new address replaces the kept one
    assert world.registered() == {"20.0.0.2": {"aks.aks-prod1.api"}, "20.9.9.11": {EGRESS}}


@pytest.mark.parametrize("status", [500, 403])
def test_a_failed_gateway_list_keeps_the_gateway_entries(
    world, monkeypatch, caplog, managed_ip, status
):
    opt_in(world, monkeypatch, egressTags=True)
    world.kube.gateways = [gateway("gw1", "shop", "20.1.2.0/31")]
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()["20.1.2.0/31"] == {GW1}

    world.kube.inject(status, count=1000, resource=GATEWAYS)
    world.kube.gateways = []
    with caplog.at_level(logging.WARNING, logger="aksfw_core.pipeline.egress_tags"):
        sync(world)
    assert world.registered() == {
        "20.0.0.1": {"aks.aks-prod1.web"},
        managed_ip: {EGRESS},
        "20.1.2.0/31": {GW1},
    }
    (failure, *_) = logged(caplog, "egress.gateways_failed")
    assert failure["kept"] == ["20.1.2.0/31"] and failure["status"] == status

    world.kube.clear_faults()
    sync(world)  # the list works again and is empty: the gateway's tag goes
    assert "20.1.2.0/31" not in world.registered()


def test_a_failed_first_read_registers_no_egress_and_removes_nothing(
    world, monkeypatch, managed_ip
):
    opt_in(world, monkeypatch, egressTags=True)
    world.panorama.seed(managed_ip, ["corp.egress"])
    world.arm.deny(PUBLIC_IP_READ)
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, managed_ip: {"corp.egress"}}


def test_a_hostile_gateway_prefix_is_refused_and_its_tag_kept(world, monkeypatch, caplog):
    opt_in(world, monkeypatch, egressTags=True)
    world.kube.gateways = [gateway("gw1", "shop", "20.1.2.0/31"), gateway("gw2", "web", "20.1.3.0/31")]  # fmt: skip
    sync(world)
    world.kube.gateways = [gateway("gw1", "shop", "0.0.0.0/0"), gateway("gw2", "web", "20.1.4.0/31")]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="aksfw_core.pipeline.egress_tags"):
        sync(world)
    registered = world.registered()
    assert registered["20.1.2.0/31"] == {GW1}  # kept: its value now is refused
    assert registered["20.1.4.0/31"] == {"aks.aks-prod1.egress.web.gw2"}  # moved
    assert "20.1.3.0/31" not in registered and "0.0.0.0/0" not in registered
    (refusal,) = logged(caplog, "egress.gateway_prefix_refused")
    assert refusal["gateway"] == "shop/gw1"


def test_the_cluster_deleted_removes_its_egress_entries(world, monkeypatch, managed_ip):
    opt_in(world, monkeypatch, egressTags=True)
    world.panorama.seed(managed_ip, ["corp.egress"])
    world.kube.gateways = [gateway("gw1", "shop", "20.1.2.0/31")]
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()[managed_ip] == {EGRESS, "corp.egress"}
    world.arm.remove_cluster(SUB, "rg-prod", "aks-prod1")
    world.event("cluster-delete.eventgrid.json")
    world.drain()
    assert world.registered() == {managed_ip: {"corp.egress"}}
