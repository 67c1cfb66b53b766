"""Node subnets as an address object (DESIGN section 11): each node pool's subnet CIDR is
registered under `aks.<cluster>.node_subnet` when a cluster opts in, kept in step with its
node pools, kept when a read fails, and removed with the cluster.

The tag rules and checks are tables; the Resource Manager reads use the real
container-service client against the fake ARM; the end-to-end cases run the whole app
(`world`: Azurite, fake ARM and Kubernetes, Panorama simulator).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import xml.etree.ElementTree as ET

import pytest
import requests

from aksfw_core.azure.events import ChangeKind, read_event, resolve
from aksfw_core.azure.identity import StaticToken
from aksfw_core.azure.inventory import Inventory, MonitoredCluster, inventory_from_json
from aksfw_core.azure.node_subnets import (
    MIN_PREFIX_V4,
    MIN_PREFIX_V6,
    NodeSubnets,
    SubnetRead,
    prefix_problem,
)
from aksfw_core.config import parse_settings
from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable
from aksfw_core.panorama import xmlapi
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.pipeline.node_subnet_tags import carried
from aksfw_core.pipeline.snapshot_guard import check_snapshot
from aksfw_core.rules.messages import MalformedMessage, Snapshot, encode
from aksfw_core.rules.model import Service
from aksfw_core.rules.plan import TagPlan
from aksfw_core.rules.tags import (
    compute_tags,
    entry_problem,
    node_subnet_tag,
    node_subnet_tags,
    owns,
)
from aksfw_local.fakes import panorama as fake_panorama
from aksfw_local.fakes.arm import SUBNET_READ, VNET_READ, FakeArm
from aksfw_local.fakes.kube_api import service
from aksfw_local.functions_host import enqueue, poison_messages
from tests.support.arm import ARM_TOKEN, cluster_arm, resource_event
from tests.support.arm import no_sdk_backoff as sdk_without_waits
from tests.support.flow import CLUSTER, NODE_GROUP, SUB, configure
from tests.support.panorama import API_KEY, settings_for

TAG = "aks.aks-prod1.node_subnet"
MANAGED = "10.224.0.0/16"
WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"]}


@pytest.fixture
def no_sdk_backoff(monkeypatch):
    """azure-core's own retries of 429/5xx do not sleep in tests."""
    sdk_without_waits(monkeypatch)


# ----------------------------------------------------------------------------- tag rules


@pytest.mark.parametrize("cluster", ["aks-prod1", "A_b-9", "x" * 63])
def test_the_node_subnet_tag_is_the_clusters_own(cluster):
    tag = node_subnet_tag(cluster)
    assert tag == f"aks.{cluster}.node_subnet"
    assert owns(cluster, tag)
    assert not owns("other", tag)


@pytest.mark.parametrize("name", ["node-subnet", "nodesubnet", "node", "web", "a" * 63])
def test_no_dns_1035_service_name_spells_the_node_subnet_tag(name):
    result = compute_tags("c1", [Service("ns", name, {"node_subnet": "x"}, ("20.0.0.1",))])
    assert node_subnet_tag("c1") not in result.tags["20.0.0.1"]


def test_a_service_named_like_the_tag_is_left_out_of_it_with_a_warning():
    forged = Service("ns", "node_subnet", {"app": "x"}, ("20.0.0.1",))
    result = compute_tags("c1", [forged])
    assert result.tags == {"20.0.0.1": frozenset({"aks.c1.svc.app.x"})}
    assert any("node-subnet tag" in w.message for w in result.warnings)


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        ([], {}),
        (["10.224.0.0/16"], {"10.224.0.0/16": {TAG}}),
        (["10.1.2.3/24"], {"10.1.2.0/24": {TAG}}),  # host bits cleared, as PAN-OS stores it
        (["FD00:0:0:1::/64"], {"fd00:0:0:1::/64": {TAG}}),
        (["10.1.0.0/24", "fd00::/64"], {"10.1.0.0/24": {TAG}, "fd00::/64": {TAG}}),
    ],
)
def test_node_subnet_entries(prefixes, expected):
    assert node_subnet_tags("aks-prod1", prefixes) == expected


@pytest.mark.parametrize("prefix", ["10.0.0.1", "10.0.0.0/33", "nonsense/8", ""])
def test_a_prefix_that_is_not_a_network_is_refused(prefix):
    with pytest.raises(InputError, match="not a network"):
        node_subnet_tags("c1", [prefix])


@pytest.mark.parametrize(
    ("key", "tags", "problem"),
    [
        ("10.224.0.0/16", {TAG}, None),
        ("fd00::/64", {TAG}, None),
        ("20.0.0.1", {"aks.aks-prod1.web"}, None),
        ("2001:db8::1", {"aks.aks-prod1.web"}, None),
        ("10.224.0.0/16", {"aks.aks-prod1.web"}, "may carry only"),
        ("10.224.0.0/16", {TAG, "aks.aks-prod1.web"}, "may carry only"),
        ("10.224.0.0/16", {"aks.aks-prod1.svc.app.web"}, "may carry only"),
        ("10.224.0.0/16", {"aks_sel.aks-prod1.web"}, "may carry only"),
        ("10.224.0.0/16", {"aks.other.node_subnet"}, "may carry only"),
        ("10.224.0.1/16", {TAG}, "normal form"),
        ("10.224.0.0/99", {TAG}, "not a network"),
        ("20.0.0.1", {TAG}, "belongs on networks"),
        ("not-an-ip", {"aks.aks-prod1.web"}, "neither an IP address nor a network"),
    ],
)
def test_which_keys_may_carry_which_tags(key, tags, problem):
    found = entry_problem("aks-prod1", key, tags)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    ("tags", "refused"),
    [
        ({"10.224.0.0/16": frozenset({TAG}), "20.0.0.1": frozenset({"aks.aks-prod1.web"})}, False),
        ({"10.224.0.0/16": frozenset({"aks.aks-prod1.web"})}, True),  # a network for a Service
        ({"0.0.0.0/0": frozenset({"aks.aks-prod1.svc.app.web"})}, True),
        ({"20.0.0.1": frozenset({TAG})}, True),
    ],
)
def test_the_applier_accepts_a_network_only_under_the_node_subnet_tag(tags, refused):
    snapshot = Snapshot(CLUSTER, "aks-prod1", "panorama", 1, tags)
    if refused:
        with pytest.raises(MalformedMessage):
            check_snapshot(snapshot)
    else:
        check_snapshot(snapshot)


def test_carried_entries_follow_an_alias_change():
    applied = {
        "10.1.0.0/24": frozenset({"aks.old.node_subnet"}),
        "20.0.0.1": frozenset({"aks.old.web"}),
    }
    assert carried("new", "old", applied) == {"10.1.0.0/24": frozenset({"aks.new.node_subnet"})}


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("global_value", "cluster_value", "expected"),
    [
        (None, None, False),
        (True, None, True),
        (False, None, False),
        (True, False, False),
        (None, True, True),
        (False, True, True),
    ],
)
def test_node_subnets_opt_in_globally_and_per_cluster(global_value, cluster_value, expected):
    document: dict[str, object] = {"clusters": [{"id": CLUSTER}]}
    if global_value is not None:
        document["nodeSubnets"] = global_value
    if cluster_value is not None:
        document["clusters"] = [{"id": CLUSTER, "nodeSubnets": cluster_value}]
    settings = parse_settings(document)
    assert settings.node_subnets_for(settings.clusters[0]) is expected
    assert settings.node_subnets_for(None) is (global_value is True)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"nodeSubnets": "yes"}, "config.nodeSubnets"),
        ({"clusters": [{"id": CLUSTER, "nodeSubnets": 1}]}, "config.clusters[0].nodeSubnets"),
    ],
)
def test_node_subnets_must_be_a_boolean(document, field):
    with pytest.raises(InputError, match=re.escape(f"{field}: expected true or false")):
        parse_settings(document)


def test_the_inventory_document_carries_the_opt_in_only_when_on():
    plain = MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP)
    opted = MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP, node_subnets=True)
    assert "nodeSubnets" not in plain.as_json()
    document = Inventory((opted,)).as_json()
    assert document["clusters"][0]["nodeSubnets"] is True
    assert inventory_from_json(document).clusters[0].node_subnets is True


# ----------------------------------------------------------------------------- events


_event = resource_event


AGENT_POOL = f"{CLUSTER}/agentPools/np2"
BYO_SUBNET = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/hub/subnets/nodes"
MANAGED_VNET = f"/subscriptions/{SUB}/resourceGroups/{NODE_GROUP}/providers/Microsoft.Network/virtualNetworks/aks-vnet-1"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_event("Write", AGENT_POOL, "Microsoft.ContainerService/managedClusters/agentPools/write"),
         ChangeKind.RESYNC),
        (_event("Delete", AGENT_POOL, "Microsoft.ContainerService/managedClusters/agentPools/delete"),
         ChangeKind.RESYNC),
        # The managed VNet lives in the node resource group: its writes find the cluster.
        (_event("Write", MANAGED_VNET, "Microsoft.Network/virtualNetworks/write"), ChangeKind.RESYNC),
        # A subnet of a VNet of one's own names no cluster: the timer resync heals it.
        (_event("Write", BYO_SUBNET, "Microsoft.Network/virtualNetworks/subnets/write"), None),
    ],
    ids=["agent-pool-write", "agent-pool-delete", "managed-vnet-write", "byo-subnet-write"],
)  # fmt: skip
def test_node_pool_and_subnet_changes_resolve_to_the_cluster_where_they_can(event, expected):
    inventory = Inventory((MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP),))
    resolution = resolve(read_event(event), inventory)
    assert [c.kind for c in resolution.clusters] == ([expected] if expected else [])
    assert all(c.id == CLUSTER for c in resolution.clusters)


# ----------------------------------------------------------------------------- PAN-OS XML


def test_register_entries_carry_the_network_as_written():
    plan = TagPlan(
        register={"10.224.0.0/16": frozenset({TAG})},
        unregister={"fd00::/64": frozenset({TAG})},
    )
    (batch,) = xmlapi.uid_batches(plan)
    root = ET.fromstring(batch.command)
    assert [e.get("ip") for e in root.iter("entry")] == ["fd00::/64", "10.224.0.0/16"]
    assert [m.text for m in root.iter("member")] == [TAG, TAG]


def test_registered_networks_are_read_in_normal_form():
    body = (
        '<response status="success"><result>'
        '<entry ip="10.224.0.0/16"><tag><member>t</member></tag></entry>'
        '<entry ip="FD00:0:0:1::/64"><tag><member>t</member></tag></entry>'
        '<entry ip="20.0.0.1"><tag><member>t</member></tag></entry>'
        "</result></response>"
    )
    page = xmlapi.registered_page(xmlapi.parse_response(200, body.encode()))
    assert [ip for ip, _ in page] == ["10.224.0.0/16", "fd00:0:0:1::/64", "20.0.0.1"]


def test_a_refused_network_entry_names_the_pan_os_version_it_needs():
    body = (
        '<response status="error"><msg><line><uid-response><payload><register>'
        '<entry ip="10.224.0.0/16" message="Invalid ip address"/>'
        '<entry ip="20.0.0.1" message="Invalid tag"/>'
        "</register></payload></uid-response></line></msg></response>"
    )
    network, address = xmlapi.entry_messages(xmlapi.parse_response(200, body.encode()))
    assert "PAN-OS" in network.message and "10.0" in network.message
    assert address.message == "Invalid tag"


# ----------------------------------------------------------------------------- simulator


def test_the_simulator_registers_and_lists_networks(client, panorama):
    plan = TagPlan(register={"10.224.0.0/16": frozenset({TAG}), "fd00::/64": frozenset({TAG})})
    assert client.apply(plan).failures == ()
    assert panorama.registered() == {"10.224.0.0/16": {TAG}, "fd00::/64": {TAG}}
    assert client.registered() == {
        "10.224.0.0/16": frozenset({TAG}),
        "fd00::/64": frozenset({TAG}),
    }
    assert client.apply(TagPlan(unregister={"10.224.0.0/16": frozenset({TAG})})).failures == ()
    assert panorama.registered() == {"fd00::/64": {TAG}}


@pytest.mark.parametrize(
    ("within", "listed"),
    [
        ("10.0.0.0/8", ["10.224.0.0/16"]),
        ("10.224.0.0/16", ["10.224.0.0/16"]),
        ("10.224.128.0/17", []),  # it starts outside: listed under the network it starts in
        ("20.0.0.0/8", ["20.0.0.1"]),
    ],
)
def test_the_simulator_lists_a_network_under_the_query_it_starts_in(panorama, within, listed):
    panorama.seed("10.224.0.0/16", [TAG])
    panorama.seed("20.0.0.1", ["aks.aks-prod1.web"])
    command = xmlapi.registered_ip_command(500, 1, ipaddress.ip_network(within))
    response = requests.post(
        f"{panorama.url}/api/",
        data={"type": "op", "cmd": command},
        headers={"X-PAN-KEY": API_KEY},
        timeout=10,
    )
    page = xmlapi.registered_page(xmlapi.parse_response(200, response.content))
    assert [ip for ip, _ in page] == listed


def test_networks_are_read_exactly_once_when_the_table_is_read_by_networks(panorama, monkeypatch):
    # The device's paging reach scaled down to 1,000 (client and simulator alike): 1,200 IPs
    # force the read network by network, splitting 10.0.0.0/8 down to /20s. A network entry
    # is listed under the one part it starts in, so each is read once.
    monkeypatch.setattr(xmlapi, "REGISTERED_MAX_START_POINT", 1_000)
    monkeypatch.setattr(fake_panorama, "MAX_START_POINT", 1_000)
    table = {str(ipaddress.ip_address("10.0.0.0") + i): {"t"} for i in range(1, 1_201)}
    table |= {"10.0.0.0/8": {TAG}, "10.224.0.0/16": {TAG}, "fd00::/64": {TAG}}
    panorama.seed_many(table)
    with PanoramaClient(settings_for(panorama), api_key(API_KEY)) as client:
        assert client.registered() == {ip: frozenset(tags) for ip, tags in table.items()}
    assert "<ip>10.0.0.0/20</ip>" in "".join(call.command or "" for call in panorama.calls)


def test_the_command_line_sync_leaves_the_node_subnet_entries_alone(client, panorama):
    # It reads Services, not Resource Manager: the app keeps the node subnets.
    panorama.seed("10.224.0.0/16", [TAG])
    panorama.seed("20.0.0.9", ["aks.aks-prod1.gone"])
    wanted = compute_tags("aks-prod1", [Service("shop", "web", {}, ("20.0.0.1",))])
    sync_cluster(wanted, client)
    assert panorama.registered() == {MANAGED: {TAG}, "20.0.0.1": {"aks.aks-prod1.web"}}


def test_a_device_before_10_0_refuses_networks_and_aksfw_says_why(client, panorama):
    panorama.sw_version = "9.1.16"
    result = client.apply(TagPlan(register={"10.224.0.0/16": frozenset({TAG})}))
    (failure,) = result.failures
    assert failure.ip == "10.224.0.0/16"
    assert "PAN-OS accepts networks" in failure.message and "10.0" in failure.message
    assert panorama.registered() == {}
    assert client.apply(TagPlan(register={"20.0.0.1": frozenset({"t"})})).failures == ()


# ----------------------------------------------------------------------------- ARM reads


@pytest.fixture
def arm(monkeypatch, tmp_path):
    with cluster_arm(monkeypatch, tmp_path) as fake:
        yield fake


def read_all(arm: FakeArm, **limits: int) -> SubnetRead:
    settings = parse_settings({"limits": limits} if limits else {}, arm_endpoint=arm.url)
    cluster = MonitoredCluster(CLUSTER, "aks-prod1", "aks-prod1", NODE_GROUP, node_subnets=True)
    return NodeSubnets(settings, StaticToken(ARM_TOKEN)).read(cluster)


def read_subnets(arm: FakeArm, **limits: int) -> tuple[str, ...]:
    read = read_all(arm, **limits)
    assert read.pools_without_prefix == ()
    return read.prefixes


def test_a_pool_without_a_subnet_id_reads_the_managed_vnet(arm):
    assert read_subnets(arm) == (MANAGED,)
    paths = [r.path.lower() for r in arm.requests if r.authorized]
    assert paths[-1].endswith(
        f"/resourcegroups/{NODE_GROUP.lower()}/providers/microsoft.network/virtualnetworks"
    )


def test_pools_in_own_vnets_read_each_subnet_once(arm):
    ids = arm.add_virtual_network(
        SUB, "rg-net", "hub", {"nodes": "10.10.0.0/22", "dual": ["10.20.0.0/24", "fd00:1::/64"]}
    )
    pools = {"system": ids["nodes"], "user": ids["nodes"].upper(), "dual": ids["dual"]}
    arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", pools)
    assert read_subnets(arm) == ("10.10.0.0/22", "10.20.0.0/24", "fd00:1::/64")
    subnet_gets = [r for r in arm.requests if "/subnets/" in r.path]
    assert len(subnet_gets) == 2
    assert not any(r.path.lower().endswith("/virtualnetworks") for r in arm.requests)


def test_managed_vnets_are_listed_page_by_page_within_the_page_cap(arm):
    # One VNet a page; the others of the node resource group are listed, not taken.
    for index in range(3):
        arm.add_virtual_network(SUB, NODE_GROUP, f"extra-{index}", {"s": f"10.{index}.0.0/24"})
    assert read_subnets(arm) == (MANAGED,)
    with pytest.raises(NonRetryable, match="armMaxPages"):
        read_subnets(arm, armMaxPages=3)


def test_an_oversized_answer_is_refused(arm):
    with pytest.raises(NonRetryable, match="larger than"):
        read_subnets(arm, armMaxResponseBytes=100)


@pytest.mark.parametrize(
    ("permission", "own_vnet"),
    [(SUBNET_READ, True), (VNET_READ, False)],
    ids=["subnet", "managed-vnet"],
)
def test_a_403_names_the_permission_that_is_missing(arm, permission, own_vnet):
    if own_vnet:
        ids = arm.add_virtual_network(SUB, "rg-net", "hub", {"nodes": "10.10.0.0/22"})
        arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": ids["nodes"]})
    arm.deny(permission)
    with pytest.raises(AuthError, match=permission) as raised:
        read_subnets(arm)
    assert raised.value.status == 403


def test_a_server_fault_is_retryable(arm):
    arm.inject(500, count=100, path_contains="/virtualNetworks")
    with pytest.raises(Retryable):
        read_subnets(arm)


def test_a_subnet_that_is_gone_is_a_failed_read(arm):
    arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": BYO_SUBNET})
    with pytest.raises(NonRetryable, match="not found"):
        read_subnets(arm)


# ----------------------------------------------------------------------------- hostile prefixes

HOSTILE = {"any4": "0.0.0.0/0", "any6": "::/0", "mcast": "224.0.0.0/4"}
GOOD = "10.10.0.0/16"
ROGUE = "10.50.0.0/16"
SUBNETS_LOGGER = "aksfw_core.azure.node_subnets"


@pytest.mark.parametrize(
    "prefix",
    [
        "10.0.0.0/8",  # the shortest IPv4 accepted
        "10.224.0.0/16",
        "100.64.0.0/10",
        "20.1.2.0/24",
        "192.168.255.248/29",
        "2001:db8::/32",  # the shortest IPv6 accepted
        "fd00:1::/64",
        "2603:1020:1:2::/64",
    ],
)
def test_a_plausible_node_subnet_prefix_is_accepted(prefix):
    assert prefix_problem(prefix) is None


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("0.0.0.0/0", f"shorter than /{MIN_PREFIX_V4}"),
        ("::/0", f"shorter than /{MIN_PREFIX_V6}"),
        ("224.0.0.0/4", f"shorter than /{MIN_PREFIX_V4}"),
        ("10.0.0.0/7", "shorter than /8"),
        ("2001::/31", "shorter than /32"),
        ("0.0.0.0/8", "unspecified"),
        ("0.1.0.0/16", "unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("169.0.0.0/8", "link-local"),  # it holds the link-local /16
        ("239.1.0.0/16", "multicast"),
        ("240.0.0.0/8", "reserved"),
        ("255.255.255.255/32", "reserved"),
        ("::1/128", "loopback"),
        ("::ffff:10.0.0.0/104", "IPv4-mapped"),
        ("fe80::/64", "link-local"),
        ("fec0::/64", "site-local"),
        ("ff02::/64", "multicast"),
        ("4000::/32", "reserved"),
    ],
)
def test_a_prefix_too_short_or_in_a_reserved_range_is_refused(prefix, reason):
    problem = prefix_problem(prefix)
    assert problem is not None and reason in problem


def test_carried_entries_leave_a_hostile_prefix_behind():
    applied = {
        "0.0.0.0/0": frozenset({"aks.c1.node_subnet"}),
        "::/0": frozenset({"aks.c1.node_subnet"}),
        "10.1.0.0/24": frozenset({"aks.c1.node_subnet"}),
    }
    assert carried("c1", "c1", applied) == {"10.1.0.0/24": frozenset({"aks.c1.node_subnet"})}


def hostile_pools(arm: FakeArm) -> None:
    """A good pool, one in the managed VNet, three whose subnets are hostile, and a VNet in
    the node resource group that no pool uses."""
    ids = arm.add_virtual_network(SUB, "rg-net", "hub", {"good": GOOD, **HOSTILE})
    arm.add_virtual_network(SUB, NODE_GROUP, "rogue", {"aks-subnet": ROGUE})
    pools: dict[str, str | None] = {"system": None, "good": ids["good"]}
    pools |= {name: ids[name] for name in HOSTILE}
    arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", pools)


def refusals(caplog) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if "node_subnets.prefix_refused" in r.getMessage()]  # fmt: skip


def test_hostile_prefixes_and_other_vnets_are_not_read_as_node_subnets(arm, caplog):
    hostile_pools(arm)
    with caplog.at_level(logging.WARNING, logger=SUBNETS_LOGGER):
        read = read_all(arm)
    assert read == SubnetRead((GOOD, MANAGED), ("any4", "any6", "mcast"))
    refused = refusals(caplog)
    assert {(tuple(r["pools"]), r["prefix"]) for r in refused} == {
        (("any4",), "0.0.0.0/0"),
        (("any6",), "::/0"),
        (("mcast",), "224.0.0.0/4"),
    }
    (any4,) = [r for r in refused if r["prefix"] == "0.0.0.0/0"]
    assert any4["cluster"] == CLUSTER
    assert all(word in str(any4["message"]) for word in (CLUSTER, "any4", "0.0.0.0/0", "/8"))


def test_a_dual_stack_pool_keeps_its_good_prefix(arm, caplog):
    ids = arm.add_virtual_network(SUB, "rg-net", "hub", {"dual": ["10.20.0.0/24", "::/0"]})
    arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": ids["dual"]})
    with caplog.at_level(logging.WARNING, logger=SUBNETS_LOGGER):
        assert read_all(arm) == SubnetRead(("10.20.0.0/24",), ())
    assert [r["prefix"] for r in refusals(caplog)] == ["::/0"]


def test_a_hostile_managed_vnet_prefix_leaves_its_pools_without_a_subnet(arm):
    arm.add_cluster(
        SUB, "rg-prod", "aks-prod1", node_resource_group=NODE_GROUP, managed_vnet_prefix="::/0"
    )
    assert read_all(arm) == SubnetRead((), ("nodepool1",))


@pytest.mark.parametrize("second", [True, False], ids=["two-candidates", "none"])
def test_a_managed_vnet_that_cannot_be_told_apart_is_not_read(arm, caplog, second):
    if second:
        arm.add_virtual_network(SUB, NODE_GROUP, "aks-vnet-12345678", {"aks-subnet": ROGUE})
    else:
        arm.remove_cluster(SUB, "rg-prod", "aks-prod1")  # and its node resource group
        arm.add_resource_group(SUB, NODE_GROUP)
        arm.add_cluster(
            SUB, "rg-prod", "aks-prod1", node_resource_group=NODE_GROUP, managed_vnet_prefix=None
        )
    with caplog.at_level(logging.WARNING, logger=SUBNETS_LOGGER):
        assert read_all(arm) == SubnetRead((), ("nodepool1",))
    assert any("node_subnets.managed_subnet_unknown" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- end to end


def opt_in(world, monkeypatch, **document: object) -> None:
    configure(monkeypatch, (world.arm, world.panorama, world.connection_string), **document)


def write_event(subject: str, operation: str) -> dict[str, object]:
    return _event("Write", subject, operation)


def sync(world, event: dict[str, object] | None = None) -> None:
    world.event(event or write_event(CLUSTER, "Microsoft.ContainerService/managedClusters/write"))
    world.drain()


def test_off_by_default_registers_no_subnet_and_reads_no_network(world):
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}}
    assert not any("microsoft.network" in r.path.lower() for r in world.arm.requests)


@pytest.mark.parametrize(
    ("document", "registered"),
    [
        ({"nodeSubnets": True}, True),
        ({"nodeSubnets": True, "clusters": [{"id": CLUSTER, "nodeSubnets": False}]}, False),
        ({"clusters": [{"id": CLUSTER, "nodeSubnets": True}]}, True),
        ({"nodeSubnets": False, "clusters": [{"id": CLUSTER}]}, False),
    ],
    ids=["global-on", "cluster-off-overrides", "cluster-on-overrides", "explicit-off"],
)
def test_opt_in_registers_the_node_subnet_under_the_cluster_tag(
    world, monkeypatch, no_sdk_backoff, document, registered
):
    opt_in(world, monkeypatch, **document)
    world.kube.services = [service(**WEB)]
    sync(world)
    expected = {"20.0.0.1": {"aks.aks-prod1.web"}}
    if registered:
        expected[MANAGED] = {TAG}
    assert world.registered() == expected


def test_opting_out_again_removes_the_node_subnet(world, monkeypatch, no_sdk_backoff):
    opt_in(world, monkeypatch, nodeSubnets=True)
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()[MANAGED] == {TAG}
    opt_in(world, monkeypatch, nodeSubnets=False)
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}}


def test_a_node_pool_added_in_an_own_subnet_is_registered_after_its_event(
    world, monkeypatch, no_sdk_backoff
):
    opt_in(world, monkeypatch, nodeSubnets=True)
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()[MANAGED] == {TAG}
    ids = world.arm.add_virtual_network(SUB, "rg-net", "hub", {"pool2": "10.30.0.0/24"})
    world.arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": None, "np2": ids["pool2"]})
    sync(
        world,
        write_event(AGENT_POOL, "Microsoft.ContainerService/managedClusters/agentPools/write"),
    )
    assert world.registered() == {
        "20.0.0.1": {"aks.aks-prod1.web"},
        MANAGED: {TAG},
        "10.30.0.0/24": {TAG},
    }
    # The system pool moves into the own VNet too: the managed VNet's subnet goes.
    world.arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": ids["pool2"]})
    sync(
        world,
        write_event(AGENT_POOL, "Microsoft.ContainerService/managedClusters/agentPools/delete"),
    )
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, "10.30.0.0/24": {TAG}}


@pytest.mark.parametrize(
    ("status", "error"), [(500, "Retryable"), (403, "AuthError")], ids=["server-fault", "forbidden"]
)
def test_a_failed_subnet_read_keeps_the_entries_while_service_tags_move_on(
    world, monkeypatch, no_sdk_backoff, caplog, status, error
):
    opt_in(world, monkeypatch, nodeSubnets=True)
    ids = world.arm.add_virtual_network(SUB, "rg-net", "hub", {"nodes": "10.10.0.0/22"})
    world.arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": ids["nodes"]})
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, "10.10.0.0/22": {TAG}}

    if status == 403:
        world.arm.deny(SUBNET_READ)
    else:
        world.arm.inject(status, count=1000, path_contains="/subnets/")
    world.kube.services = [service("api", "shop", ips=["20.0.0.2"])]
    with caplog.at_level(logging.WARNING, logger="aksfw_core.pipeline.node_subnet_tags"):
        sync(world)
    assert world.registered() == {"20.0.0.2": {"aks.aks-prod1.api"}, "10.10.0.0/22": {TAG}}
    failures = [json.loads(r.getMessage()) for r in caplog.records
                if "node_subnets.read_failed" in r.getMessage()]  # fmt: skip
    assert failures and failures[0]["error"].startswith(error)
    assert failures[0]["kept"] == ["10.10.0.0/22"]
    if status == 403:
        assert SUBNET_READ in failures[0]["error"]

    world.arm.clear_faults()
    world.arm.allow(SUBNET_READ)
    world.arm.add_virtual_network(SUB, "rg-net", "hub", {"nodes": "10.10.4.0/22"})
    sync(world)  # the read works again: the subnet's new prefix replaces the old one
    assert world.registered() == {"20.0.0.2": {"aks.aks-prod1.api"}, "10.10.4.0/22": {TAG}}


def test_an_audit_repairs_node_subnet_drift_and_leaves_others_networks(
    world, monkeypatch, no_sdk_backoff
):
    opt_in(world, monkeypatch, nodeSubnets=True)
    world.kube.services = [service(**WEB)]
    sync(world)
    wanted = world.registered()
    # By hand: aksfw's network removed, a stale one of its own added, somebody else's added.
    with PanoramaClient(settings_for(world.panorama), api_key(API_KEY)) as manual:
        manual.apply(
            TagPlan(
                register={"10.99.0.0/16": frozenset({TAG}), "10.98.0.0/16": frozenset({"corp"})},
                unregister={MANAGED: frozenset({TAG})},
            )
        )
    assert world.http("POST", "resync", b'{"audit": true}').status_code == 202
    world.drain()
    assert world.registered() == {**wanted, "10.98.0.0/16": {"corp"}}


def test_a_failed_first_read_registers_no_subnet_and_removes_nothing(
    world, monkeypatch, no_sdk_backoff
):
    opt_in(world, monkeypatch, nodeSubnets=True)
    world.panorama.seed("10.224.0.0/16", ["corp.nodes"])
    world.arm.deny(VNET_READ)
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, MANAGED: {"corp.nodes"}}


def test_the_cluster_deleted_removes_its_node_subnet(world, monkeypatch, no_sdk_backoff):
    opt_in(world, monkeypatch, nodeSubnets=True)
    world.panorama.seed("10.224.0.0/16", ["corp.nodes"])
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered()[MANAGED] == {TAG, "corp.nodes"}
    world.arm.remove_cluster(SUB, "rg-prod", "aks-prod1")
    world.event("cluster-delete.eventgrid.json")
    world.drain()
    assert world.registered() == {MANAGED: {"corp.nodes"}}


def test_a_forged_snapshot_with_a_network_under_a_service_tag_is_poisoned(world):
    world.panorama.seed("20.0.0.1", ["corp.keep"])
    forged = encode(
        Snapshot(
            CLUSTER,
            "aks-prod1",
            "panorama",
            time.time_ns(),
            {"0.0.0.0/0": frozenset({"aks.aks-prod1.web"})},
        )
    )
    enqueue(world.connection_string, "panorama-updates", forged)
    world.updates.run_until_idle(timeout_s=20)
    assert poison_messages(world.connection_string, "panorama-updates") == [forged]
    assert world.panorama.write_calls() == []
    assert world.registered() == {"20.0.0.1": {"corp.keep"}}


def test_a_device_before_10_0_leaves_a_clear_error_and_service_tags_applied(
    world, monkeypatch, no_sdk_backoff
):
    opt_in(world, monkeypatch, nodeSubnets=True)
    world.panorama.sw_version = "9.1.16"
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}}
    (cluster,) = json.loads(world.http("GET", "status").get_body())["clusters"]
    text = json.dumps(cluster)
    assert MANAGED in text and "PAN-OS accepts networks" in text and "10.0" in text


def test_hostile_prefixes_are_not_registered_and_good_ones_are(
    world, monkeypatch, no_sdk_backoff, caplog
):
    opt_in(world, monkeypatch, nodeSubnets=True)
    hostile_pools(world.arm)
    world.kube.services = [service(**WEB)]
    with caplog.at_level(logging.WARNING):
        sync(world)
    assert world.registered() == {
        "20.0.0.1": {"aks.aks-prod1.web"},
        MANAGED: {TAG},
        GOOD: {TAG},
    }
    assert {r["prefix"] for r in refusals(caplog)} == set(HOSTILE.values())


def test_a_hostile_answer_keeps_the_good_subnet_applied_before(
    world, monkeypatch, no_sdk_backoff, caplog
):
    opt_in(world, monkeypatch, nodeSubnets=True)
    ids = world.arm.add_virtual_network(SUB, "rg-net", "hub", {"nodes": "10.10.0.0/22"})
    world.arm.set_agent_pools(SUB, "rg-prod", "aks-prod1", {"system": ids["nodes"]})
    world.kube.services = [service(**WEB)]
    sync(world)
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, "10.10.0.0/22": {TAG}}

    for hostile in HOSTILE.values():
        world.arm.add_virtual_network(SUB, "rg-net", "hub", {"nodes": hostile})
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            sync(world)
        assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, "10.10.0.0/22": {TAG}}
        assert [r["prefix"] for r in refusals(caplog)] == [hostile]
        kept = [json.loads(r.getMessage()) for r in caplog.records
                if "node_subnets.pool_kept" in r.getMessage()]  # fmt: skip
        assert kept and kept[0]["pools"] == ["system"] and kept[0]["kept"] == ["10.10.0.0/22"]

    world.arm.add_virtual_network(SUB, "rg-net", "hub", {"nodes": "10.10.4.0/22"})
    sync(world)  # a good answer again: it replaces the kept one
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web"}, "10.10.4.0/22": {TAG}}
