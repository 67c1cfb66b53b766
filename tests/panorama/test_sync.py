"""Syncing one cluster into the simulator: exact end state, ownership, no needless writes."""

from __future__ import annotations

import pytest

from aksfw_core.errors import AuthError, Retryable
from aksfw_core.limits import Limits
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.pipeline.decisions import worst_removal
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.rules.model import Service
from aksfw_core.rules.plan import MassRemoval
from aksfw_core.rules.selectors import named_selector
from aksfw_core.rules.tags import compute_tags
from aksfw_local.fakes.panorama import Fault
from tests.support.panorama import API_KEY, settings_for

WEB = Service("shop", "web", {"app": "web"}, ("20.1.1.1",))
API = Service("shop", "api", {"app": "api"}, ("20.1.1.2",))


def wanted(*services, cluster="c1", selectors=()):
    return compute_tags(cluster, services, selectors)


def test_sync_leaves_exactly_the_wanted_tags_and_every_foreign_tag(client, panorama):
    panorama.seed("20.1.1.1", ["corp.dmz", "aks.c2.web", "aks.c1.stale", "aks_old.c1.web"])
    panorama.seed("20.9.9.9", ["aks.c1.gone", "manual"])
    panorama.seed("20.8.8.8", ["aks.c10.web"])
    report = sync_cluster(wanted(WEB, API, selectors=[named_selector("all", "app")]), client)
    assert panorama.registered() == {
        "20.1.1.1": {
            "corp.dmz",
            "aks.c2.web",
            "aks.c1.web",
            "aks.c1.svc.app.web",
            "aks_all.c1.web",
        },
        "20.1.1.2": {"aks.c1.api", "aks.c1.svc.app.api", "aks_all.c1.api"},
        "20.9.9.9": {"manual"},
        "20.8.8.8": {"aks.c10.web"},
    }
    assert (report.plan.register_count, report.plan.unregister_count) == (6, 3)
    assert report.write_requests == 1 and report.failures == ()


def test_second_sync_sends_no_write(client, panorama):
    sync_cluster(wanted(WEB, API), client)
    panorama.reset_calls()
    report = sync_cluster(wanted(WEB, API), client)
    assert report.plan.is_empty and report.write_requests == 0
    assert panorama.write_calls() == []
    assert report.read_requests == 2  # the count, then one page


def test_label_change_replaces_the_old_label_tag(client, panorama):
    sync_cluster(wanted(WEB), client)
    relabelled = Service("shop", "web", {"app": "web2"}, ("20.1.1.1",))
    sync_cluster(wanted(relabelled), client)
    assert panorama.registered() == {"20.1.1.1": {"aks.c1.web", "aks.c1.svc.app.web2"}}


def test_ip_move_follows_the_service(client, panorama):
    sync_cluster(wanted(WEB), client)
    moved = Service("shop", "web", {"app": "web"}, ("20.1.1.77",))
    sync_cluster(wanted(moved), client)
    assert set(panorama.registered()) == {"20.1.1.77"}


def test_successful_empty_list_removes_all_the_clusters_tags_only(client, panorama):
    sync_cluster(wanted(WEB, API), client)
    panorama.seed("20.1.1.1", ["corp.dmz"])
    sync_cluster(wanted(), client)
    assert panorama.registered() == {"20.1.1.1": {"corp.dmz"}}


@pytest.mark.parametrize(
    ("fault", "error"), [(Fault.HTTP_500, Retryable), (Fault.FORBIDDEN, AuthError)]
)
def test_failed_read_unregisters_nothing(client, panorama, fault, error):
    sync_cluster(wanted(WEB, API), client)
    before = panorama.registered()
    panorama.inject(fault, count=3)
    with pytest.raises(error):
        sync_cluster(wanted(), client)
    assert panorama.registered() == before


def test_dry_run_plans_but_writes_nothing(client, panorama):
    panorama.seed("20.9.9.9", ["aks.c1.gone"])
    report = sync_cluster(wanted(WEB), client, dry_run=True)
    assert panorama.write_calls() == []
    assert report.as_json()["plan"] == {
        "register": {"20.1.1.1": ["aks.c1.svc.app.web", "aks.c1.web"]},
        "unregister": {"20.9.9.9": ["aks.c1.gone"]},
    }


def test_sync_at_scale_converges_in_few_requests(client, panorama):
    services = [
        Service(
            "ns",
            f"svc{i}",
            {"app": f"a{i % 50}", "tier": "web"},
            (f"10.{i >> 16}.{i >> 8 & 255}.{i & 255}",),
        )
        for i in range(5000)
    ]
    panorama.seed("10.0.0.1", ["corp.keep"])
    report = sync_cluster(wanted(*services), client)
    assert report.write_requests == 5 and report.failures == ()
    registered = panorama.registered()
    assert len(registered) == 5000
    assert registered["10.0.0.1"] == {
        "aks.c1.svc1",
        "aks.c1.svc.app.a1",
        "aks.c1.svc.tier.web",
        "corp.keep",
    }
    again = sync_cluster(wanted(*services), client)
    # the count, then 10 full pages of 500 and an empty page that ends the read
    assert again.write_requests == 0 and again.read_requests == 12


def test_tags_with_a_timeout_are_refreshed_by_every_sync(panorama):
    now = [1000.0]
    panorama.clock = lambda: now[0]
    with PanoramaClient(settings_for(panorama, tag_timeout_s=60), api_key(API_KEY)) as client:
        sync_cluster(wanted(WEB), client)
        now[0] += 50
        refreshed = sync_cluster(wanted(WEB), client)
        assert refreshed.write_requests == 1 and refreshed.plan.unregister_count == 0
        now[0] += 50  # 100 s after the first sync, 50 s after the refresh
        assert panorama.registered() == {"20.1.1.1": {"aks.c1.web", "aks.c1.svc.app.web"}}
        now[0] += 20  # 70 s after the refresh: expired
        assert panorama.registered() == {}


SIX = [Service("shop", f"web{i}", {"app": f"web{i}"}, (f"20.0.0.{i}",)) for i in range(6)]
OTHER_SIX = [Service("other", f"api{i}", {"app": f"api{i}"}, (f"20.9.0.{i}",)) for i in range(6)]


def app_decision(registered, wanted_tags):
    """What the app's resyncer decides on the same change, from its applied state."""
    applied = AppliedState("c1-id", "c1", "panorama", 1, "old", tags=registered)
    limits = Limits()
    found = worst_removal(
        "c1", [applied], wanted_tags, limits.mass_removal_fraction, limits.mass_removal_min_pairs
    )
    return None if found is None else found.removal


def test_a_list_that_replaces_every_pair_is_held_as_the_app_holds_it(client, panorama):
    before = wanted(*SIX)
    sync_cluster(before, client)
    panorama.reset_calls()
    report = sync_cluster(wanted(*OTHER_SIX), client, hold_mass_removal=Limits())
    assert report.held_back == MassRemoval(removing=12, registered=12)
    assert report.held_back == app_decision(before.tags, wanted(*OTHER_SIX).tags)
    assert panorama.write_calls() == [] and set(panorama.registered()) == set(before.tags)
    allowed = sync_cluster(wanted(*OTHER_SIX), client)  # --allow-mass-removal
    assert allowed.held_back is None and allowed.plan.unregister_count == 12
    assert set(panorama.registered()) == {f"20.9.0.{i}" for i in range(6)}


def test_the_node_subnet_neither_hides_an_emptied_list_nor_counts(client, panorama):
    sync_cluster(wanted(WEB), client)
    panorama.seed("10.224.0.0/16", ["aks.c1.node_subnet"])
    panorama.reset_calls()
    report = sync_cluster(wanted(), client, hold_mass_removal=Limits())
    assert report.held_back == MassRemoval(removing=2, registered=2)
    with_node_subnet = {**wanted(WEB).tags, "10.224.0.0/16": frozenset({"aks.c1.node_subnet"})}
    assert app_decision(with_node_subnet, {}) == report.held_back
    assert panorama.write_calls() == []


def test_a_change_below_the_threshold_is_applied_by_both(client, panorama):
    sync_cluster(wanted(*SIX), client)
    report = sync_cluster(wanted(*SIX[:4], *OTHER_SIX[:2]), client, hold_mass_removal=Limits())
    assert report.held_back is None and report.plan.unregister_count == 4
    assert app_decision(wanted(*SIX).tags, wanted(*SIX[:4], *OTHER_SIX[:2]).tags) is None
