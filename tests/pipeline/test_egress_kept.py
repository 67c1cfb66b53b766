"""What a failed egress read keeps (`pipeline.egress_tags`): the entries of its own kind from
the applied state, under the cluster's current tag name, without a value the bounds refuse
(a hostile value an older release registered is not carried). Pure."""

from __future__ import annotations

from aksfw_core.pipeline.egress_tags import kept_gateways, kept_outbound

APPLIED = {
    "20.1.2.3": frozenset({"aks.old.egress", "aks.old.web"}),
    "0.0.0.0/0": frozenset({"aks.old.egress"}),
    "20.1.8.0/31": frozenset({"aks.old.egress.shop.gw1", "aks.old.egress.web.gw2"}),
    "224.0.0.0/4": frozenset({"aks.old.egress.shop.gw1"}),
    "10.224.0.0/16": frozenset({"aks.old.node_subnet"}),
}


def test_a_failed_outbound_read_keeps_only_the_outbound_entries():
    assert kept_outbound("new", "old", APPLIED) == {"20.1.2.3": {"aks.new.egress"}}


def test_a_failed_gateway_list_keeps_only_the_gateway_entries():
    assert kept_gateways("new", "old", APPLIED) == {
        "20.1.8.0/31": {"aks.new.egress.shop.gw1", "aks.new.egress.web.gw2"}
    }
