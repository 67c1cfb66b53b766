"""Plans touch only the cluster's own tags and are empty when nothing changed."""

from aksfw_core.rules.plan import owned_only, plan_changes
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
