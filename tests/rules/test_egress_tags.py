"""Egress tags (DESIGN section 11), as pure rules: the names (`aks.<cluster>.egress`, and
`…egress.<namespace>.<gateway>` for a Static Egress Gateway), ownership, the Service named
`egress` that may not spell the egress tag, which keys may carry them, the one tag rule
they join (127 characters, 32 per IP, union with Service tags on a shared IP), an address
or prefix as a key, a gateway object read, and the mass-removal counts they stay out of.
"""

from __future__ import annotations

import pytest

from aksfw_core.errors import InputError
from aksfw_core.pipeline.decisions import counted_removal
from aksfw_core.pipeline.state import StateSummary
from aksfw_core.rules.egress import (
    MAX_GATEWAY_PREFIXES,
    Gateway,
    applied_egress,
    egress_key,
    gateway_entries,
    gateway_fields,
    merged,
    outbound_entries,
    read_gateway,
)
from aksfw_core.rules.model import Service, WarningKind
from aksfw_core.rules.plan import removal_of, without_arm_entries
from aksfw_core.rules.tags import (
    MAX_TAGS_PER_IP,
    compute_tags,
    egress_tag,
    entry_problem,
    is_network_tag,
    owns,
    service_ownership,
    tag_patterns,
)

EGRESS = "aks.c1.egress"
GATEWAY = "aks.c1.egress.shop.gw1"


# ----------------------------------------------------------------------------- names


def test_the_egress_tags_are_the_clusters_own():
    assert egress_tag("c1") == EGRESS
    assert egress_tag("c1", "shop", "gw1") == GATEWAY
    for tag in (EGRESS, GATEWAY):
        assert owns("c1", tag)
        assert not owns("c2", tag)
        assert is_network_tag("c1", tag)
    assert not is_network_tag("c1", "aks.c1.egressx")
    assert not is_network_tag("c1", "aks.c2.egress")


@pytest.mark.parametrize(
    ("tag", "decided_by_services"),
    [
        ("aks.c1.web", True),
        ("aks.c1.egress-api", True),  # a Service named egress-api is a Service tag
        ("aks.c1.svc.app.egress", True),
        ("aks_sel.c1.egress", True),  # a selector tag of a Service named egress
        (EGRESS, False),
        (GATEWAY, False),
        ("aks.c1.node_subnet", False),
    ],
)
def test_a_sync_that_reads_only_services_leaves_the_egress_tags_alone(tag, decided_by_services):
    assert (service_ownership("c1").match(tag) is not None) is decided_by_services
    assert owns("c1", tag)


def test_the_patterns_name_both_egress_tags_when_on():
    assert tag_patterns("c1")[-1] != EGRESS
    patterns = tag_patterns("c1", ["sel"], node_subnets=True, egress=True)
    assert patterns[-2:] == [EGRESS, "aks.c1.egress.<namespace>.<gateway>"]
    assert tag_patterns("<name>", egress=True)[-2] == "aks.<name>.egress"


def test_a_service_named_egress_is_left_out_of_the_egress_tag_with_a_warning():
    forged = Service("shop", "egress", {"app": "x"}, ("20.0.0.1",))
    result = compute_tags("c1", [forged])
    assert result.tags == {"20.0.0.1": frozenset({"aks.c1.svc.app.x"})}
    (warning,) = [w for w in result.warnings if "egress tag" in w.message]
    assert warning.kind is WarningKind.TAG_INVALID
    assert "shop/egress" in warning.message and EGRESS in warning.message


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("key", "tags", "problem"),
    [
        ("20.1.2.3", {EGRESS}, None),
        ("20.1.2.3", {EGRESS, "aks.c1.web"}, None),  # an outbound IP a Service reuses
        ("20.1.2.0/30", {EGRESS}, None),
        ("20.1.2.0/31", {GATEWAY, "aks.c1.egress.web.gw2"}, None),
        ("2603:1000::/124", {EGRESS}, None),
        ("20.1.2.0/30", {EGRESS, "aks.c1.web"}, "may carry only"),
        ("20.1.2.0/30", {"aks.c2.egress"}, "may carry only"),
        ("20.1.2.0/30", set(), "may carry only"),
        ("20.1.2.1/30", {EGRESS}, "normal form"),
    ],
)
def test_networks_may_carry_the_egress_tags(key, tags, problem):
    found = entry_problem("c1", key, tags)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("20.1.2.3", "20.1.2.3"),
        (" 20.1.2.3 ", "20.1.2.3"),
        ("20.1.2.3/32", "20.1.2.3"),  # a one-address prefix is its address
        ("2603:1000:0:0::1/128", "2603:1000::1"),
        ("20.1.2.0/30", "20.1.2.0/30"),
        ("20.1.2.1/30", "20.1.2.0/30"),  # host bits cleared, as PAN-OS stores it
        ("2603:1000::/124", "2603:1000::/124"),
    ],
)
def test_an_address_or_prefix_as_a_key(text, key):
    assert egress_key(text) == key


@pytest.mark.parametrize("text", ["", "nonsense", "20.1.2.0/33", "20.1.2/x", "::g"])
def test_a_value_that_is_no_address_is_refused(text):
    with pytest.raises(InputError):
        egress_key(text)


# ----------------------------------------------------------------------------- gateway objects


def sgc(namespace="shop", name="gw1", prefix="20.1.2.0/31", **extra):
    status = {} if prefix is None else {"egressIpPrefix": prefix, "gatewayServerProfile": {}}
    return {"metadata": {"namespace": namespace, "name": name, **extra}, "status": status}


def test_a_gateway_object_is_reduced_to_what_egress_tags_read():
    assert gateway_fields(sgc()) == {"namespace": "shop", "name": "gw1", "egressIpPrefix": "20.1.2.0/31"}  # fmt: skip
    assert gateway_fields(sgc(prefix=None))["egressIpPrefix"] == ""
    assert read_gateway(gateway_fields(sgc(prefix=None))).prefixes == ()


def test_a_private_gateway_lists_its_addresses_comma_separated():
    gateway = read_gateway(gateway_fields(sgc(prefix="10.1.0.4, 10.1.0.5,")))
    assert gateway == Gateway("shop", "gw1", ("10.1.0.4", "10.1.0.5"))


@pytest.mark.parametrize(
    "obj",
    [
        "not an object",
        {"status": {"egressIpPrefix": "20.1.2.0/31"}},
        {"metadata": {"name": "gw1"}},
        {"metadata": {"namespace": "shop", "name": ""}},
        sgc(prefix=["20.1.2.0/31"]),
    ],
)
def test_a_malformed_gateway_object_fails_the_list(obj):
    with pytest.raises(InputError):
        gateway_fields(obj)


def test_a_gateway_listing_absurdly_many_values_is_refused():
    many = ",".join(f"10.1.{i // 250}.{i % 250}" for i in range(MAX_GATEWAY_PREFIXES + 1))
    with pytest.raises(InputError, match="more than"):
        read_gateway(gateway_fields(sgc(prefix=many)))


# ----------------------------------------------------------------------------- entries


def test_gateways_that_share_a_prefix_both_tag_it():
    one, two = Gateway("shop", "gw1", ()), Gateway("web", "gw2", ())
    entries = gateway_entries("c1", {one: ["20.1.2.0/31"], two: ["20.1.2.0/31", "20.1.3.0/31"]})
    assert entries == {
        "20.1.2.0/31": {GATEWAY, "aks.c1.egress.web.gw2"},
        "20.1.3.0/31": {"aks.c1.egress.web.gw2"},
    }


def test_entries_join_the_service_tags_under_the_one_rule():
    web = Service("shop", "web", {}, ("20.1.2.3",))
    entries = merged(
        outbound_entries("c1", ["20.1.2.3", "20.1.9.0/30"]),
        gateway_entries("c1", {Gateway("shop", "gw1", ()): ["20.1.8.0/31"]}),
        {"20.1.8.0/31": {egress_tag("c1", "shop", "g" * 120)}},  # over 127 characters
    )
    result = compute_tags("c1", [web], entries=entries)
    assert result.tags == {
        "20.1.2.3": {"aks.c1.web", EGRESS},  # an outbound IP a Service reuses: the union
        "20.1.9.0/30": {EGRESS},
        "20.1.8.0/31": {GATEWAY},
    }
    (too_long,) = [w for w in result.warnings if w.kind is WarningKind.TAG_TOO_LONG]
    assert "(max 127)" in too_long.message


def test_the_32_tag_cap_counts_the_egress_tag_with_the_service_tags():
    labels = {f"k{n:02}": "v" for n in range(MAX_TAGS_PER_IP)}
    web = Service("shop", "web", labels, ("20.1.2.3",))
    result = compute_tags("c1", [web], entries=outbound_entries("c1", ["20.1.2.3"]))
    kept = result.tags["20.1.2.3"]
    assert len(kept) == MAX_TAGS_PER_IP
    assert {"aks.c1.web", EGRESS} <= kept  # ranked with the Service tags, kept before labels
    assert any(w.kind is WarningKind.TAG_LIMIT for w in result.warnings)


def test_applied_entries_are_carried_by_kind_under_a_new_alias():
    applied = {
        "20.1.2.3": frozenset({"aks.old.egress", "aks.old.web"}),
        "20.1.8.0/31": frozenset({"aks.old.egress.shop.gw1"}),
        "10.224.0.0/16": frozenset({"aks.old.node_subnet"}),
        "20.1.9.9": frozenset({"aks.other.egress"}),
    }
    assert applied_egress("new", "old", applied, gateways=False) == {"20.1.2.3": {"aks.new.egress"}}
    assert applied_egress("new", "old", applied, gateways=True) == {
        "20.1.8.0/31": {"aks.new.egress.shop.gw1"}
    }


# ----------------------------------------------------------------------------- mass removals


def test_outbound_entries_stay_out_of_the_counts_and_gateway_entries_do_not():
    tags = {
        "20.1.2.3": frozenset({EGRESS, "aks.c1.web"}),
        "20.1.9.0/30": frozenset({EGRESS}),
        "20.1.8.0/31": frozenset({GATEWAY}),
        "10.224.0.0/16": frozenset({"aks.c1.node_subnet"}),
    }
    assert without_arm_entries("c1", tags) == {
        "20.1.2.3": {"aks.c1.web"},
        "20.1.8.0/31": {GATEWAY},
    }
    # The Services and gateways emptied, the outbound addresses still there: held back.
    left = {key: tags[key] - {"aks.c1.web"} for key in ("20.1.2.3", "20.1.9.0/30")}
    found = removal_of("c1", tags, left, fraction=0.5, min_pairs=10)
    assert found is not None and (found.removing, found.registered) == (2, 2)
    # The outbound addresses gone, the Services and gateways still there: not a removal.
    assert removal_of("c1", tags, without_arm_entries("c1", tags), 0.5, 10) is None


def test_the_summary_counts_leave_one_outbound_pair_per_ip_out():
    summary = StateSummary("id", "c1", "panorama", 1, "old", 0.0, ips=12, tags=12)
    wanted = outbound_entries("c1", [f"20.1.2.{n}" for n in range(12)])
    found = counted_removal("c1", ["panorama"], {"panorama": summary}, "f1", wanted, fraction=0.5, min_pairs=10)  # fmt: skip
    assert found is None  # every pair could be an outbound entry: only a read can tell
