"""Plans touch only the cluster's own tags and are empty when nothing changed."""

import pytest

from aksfw_core.rules.plan import owned_only, plan_changes, removal_of
from aksfw_core.rules.tags import ownership

C1 = ownership("c1")


def fs(*tags):
    return frozenset(tags)


def test_plan_registers_missing_and_unregisters_stale_owned_tags_only():
    wanted = {"1.1.1.1": fs("aks.c1.web", "aks.c1.svc.app.web"), "2.2.2.2": fs("aks.c1.api")}
    registered = {
        "1.1.1.1": fs("aks.c1.web", "aks.c1.svc.app.old", "corp.dmz", "aks.c2.web"),
        "3.3.3.3": fs("aks.c1.gone", "aks_sel.c1.gone", "manual"),
    }
    plan = plan_changes(wanted, registered, C1)
    assert plan.register == {"1.1.1.1": fs("aks.c1.svc.app.web"), "2.2.2.2": fs("aks.c1.api")}
    assert plan.unregister == {
        "1.1.1.1": fs("aks.c1.svc.app.old"),
        "3.3.3.3": fs("aks.c1.gone", "aks_sel.c1.gone"),
    }
    assert (plan.register_count, plan.unregister_count) == (2, 3)


def test_unchanged_state_gives_an_empty_plan():
    wanted = {"1.1.1.1": fs("aks.c1.web")}
    registered = {"1.1.1.1": fs("aks.c1.web", "foreign")}
    plan = plan_changes(wanted, registered, C1)
    assert plan.is_empty


def test_empty_wanted_state_unregisters_every_owned_tag_and_nothing_else():
    registered = {"1.1.1.1": fs("aks.c1.web", "foreign"), "2.2.2.2": fs("aks.c2.x")}
    plan = plan_changes({}, registered, C1)
    assert plan.register == {}
    assert plan.unregister == {"1.1.1.1": fs("aks.c1.web")}


def test_owned_only_filters_and_drops_empty_ips():
    registered = {"1.1.1.1": fs("aks.c1.web", "foreign"), "2.2.2.2": fs("foreign")}
    assert owned_only(registered, C1) == {"1.1.1.1": fs("aks.c1.web")}


def test_refresh_registers_every_wanted_tag_again():
    wanted = {"1.1.1.1": fs("aks.c1.web")}
    plan = plan_changes(wanted, {"1.1.1.1": fs("aks.c1.web", "aks.c1.old")}, C1, refresh=True)
    assert plan.register == wanted
    assert plan.unregister == {"1.1.1.1": fs("aks.c1.old")}


# -- mass removals: one rule for the app and the command line ------------------------------

NODES = "aks.c1.node_subnet"


def pairs(count, first=0, cluster="c1"):
    """`count` IP-tag pairs, two per IP (a Service tag and a label tag)."""
    result = {}
    for n in range(first, first + count // 2):
        result[f"20.0.0.{n}"] = fs(f"aks.{cluster}.web{n}", f"aks.{cluster}.svc.app.web{n}")
    return result


def with_nodes(tags, *networks):
    return {**tags, **{network: fs(NODES) for network in networks}}


@pytest.mark.parametrize(
    ("registered", "wanted", "expected"),
    [
        ({}, pairs(12), None),  # a first sync
        (pairs(12), pairs(12), None),  # nothing changes
        (pairs(12), pairs(8), None),  # 4 of 12: not most
        (pairs(12), pairs(4), None),  # 8 of 12, but fewer than 10
        (pairs(20), pairs(6), (14, 20)),
        (pairs(12), {}, (12, 12)),  # emptied
        (pairs(2), {}, (2, 2)),  # emptied, however few
        # every pair replaced by as many others: all 12 unregistered
        (pairs(12), pairs(12, first=100), (12, 12)),
        # half replaced, half kept: 6 of 12 is not more than half
        (pairs(12), {**pairs(6), **pairs(6, first=100)}, None),
        (pairs(24), {**pairs(8), **pairs(16, first=100)}, (16, 24)),
        # a label dropped on every IP: one pair of two on each goes, half is not most
        (pairs(20), {ip: fs(f"aks.c1.web{n}") for n, ip in enumerate(pairs(20))}, None),
        # node-subnet entries neither hide an emptied Service list ...
        (with_nodes(pairs(2), "10.224.0.0/16"), with_nodes({}, "10.224.0.0/16"), (2, 2)),
        # ... nor count as removed or registered
        (with_nodes(pairs(2), "10.224.0.0/16", "10.30.0.0/24"), pairs(2), None),
        (with_nodes({}, "10.224.0.0/16"), {}, None),
        (with_nodes(pairs(20), "10.224.0.0/16"), with_nodes(pairs(6), "10.30.0.0/24"), (14, 20)),
    ],
)
def test_a_mass_removal_counts_what_would_actually_be_unregistered(registered, wanted, expected):
    found = removal_of("c1", registered, wanted, 0.5, 10)
    assert (None if found is None else (found.removing, found.registered)) == expected
