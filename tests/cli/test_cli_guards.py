"""Mistakes the command line makes loud: a selector that selects nothing (with the fix when
Services carry the label it spells: `tier=frontend` written for a label, a valid selector
that is kept), and a sync that would remove most of a cluster's tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aksfw_core.cli.program import main
from aksfw_local.fakes.kube_api import service
from tests.support.cli import SAMPLE, SAMPLE_TAGS, run

pytestmark = pytest.mark.usefixtures("api_key")

UNSELECTED = {  # the sample's tags without selectors: 8 IP-tag pairs
    ip: [tag for tag in tags if not tag.startswith("aks_")] for ip, tags in SAMPLE_TAGS.items()
}


@pytest.mark.parametrize(
    "selector", ["c=k01", "all=app", "c=x6", "in=in", "notin=notin", "key=key", "x=in", "key=x"]
)
def test_an_existence_selector_is_accepted_whatever_its_name(capsys, selector):
    # Issue 20: these were refused as "reads as a label"; a valid selector never is.
    code, out, err = run(capsys, "tags", "--cluster", "c", "--selector", selector, SAMPLE)
    assert code == 0 and json.loads(out)
    assert "aksfw:" not in err and "did you mean" not in err


def test_an_existence_selector_that_selects_is_silent(capsys):
    code, out, err = run(capsys, "tags", "--cluster", "c", "--selector", "c=tier", SAMPLE)
    assert code == 0 and err == ""
    assert "aks_c.c.web" in json.loads(out)["20.50.10.11"]


@pytest.mark.parametrize(
    ("selector", "spelled", "why"),
    [
        (
            "tier=frontend",
            "(frontend)",
            "the expression matches none of the 4 LoadBalancer Services; 1 of them carries "
            "the label tier=frontend: did you mean the expression tier=frontend "
            "(--selector frontend=tier=frontend)?",
        ),
        (
            "tier=frontend@shop",
            "(frontend@shop)",
            "the expression matches none of the 3 LoadBalancer Services in namespace shop; 1 "
            "of them carries the label tier=frontend: did you mean the expression "
            "tier=frontend (--selector frontend=tier=frontend@shop)?",
        ),
    ],
)
def test_a_label_given_as_selector_is_kept_and_warned_with_the_fix(capsys, selector, spelled, why):
    code, out, err = run(capsys, "tags", "--cluster", "prod1", "--selector", selector, SAMPLE)
    assert code == 0 and json.loads(out) == UNSELECTED
    assert err.splitlines() == [
        f"warning: selector-unmatched: cluster prod1: selector 'tier' {spelled} selects no "
        f"Service: {why}"
    ]


@pytest.mark.parametrize(
    "selector",
    ["app=frontend", "tier=frontend@monitoring", "tier=frontend,app=web", "c=k01"],
)
def test_no_fix_is_offered_without_a_service_carrying_that_label(capsys, selector):
    code, out, err = run(capsys, "tags", "--cluster", "prod1", "--selector", selector, SAMPLE)
    assert code == 0 and json.loads(out) and "selector-unmatched" in err
    assert "did you mean" not in err


def test_an_existence_selector_named_after_its_label_is_accepted(capsys):
    code, out, err = run(capsys, "tags", "--cluster", "prod1", "--selector", "tier=tier", SAMPLE)
    assert code == 0 and err == ""
    assert "aks_tier.prod1.web" in json.loads(out)["20.50.10.11"]


def test_a_selector_that_selects_nothing_warns_on_stderr_and_says_why(capsys):
    code, out, err = run(
        capsys, "tags", "--cluster", "prod1",
        "--selector", "pay=app=web@payments", "--selector", "db=tier=db@shop", SAMPLE,
    )  # fmt: skip
    assert code == 0 and json.loads(out)  # the tags are still printed
    assert err.splitlines() == [
        "warning: selector-unmatched: cluster prod1: selector 'pay' (app=web@payments) "
        "selects no Service: there is no LoadBalancer Service in namespace payments",
        "warning: selector-unmatched: cluster prod1: selector 'db' (tier=db@shop) selects "
        "no Service: the expression matches none of the 3 LoadBalancer Services in "
        "namespace shop",
    ]


# ------------------------------------------------------------------- mass removal


def sync(capsys, panorama, services_file, *extra):
    return run(
        capsys, "sync", "--cluster", "prod1", "--services", str(services_file),
        "--panorama", panorama.url, *extra,
    )  # fmt: skip


def service_list(tmp_path, *items):
    path = tmp_path / "services.json"
    path.write_text(json.dumps({"kind": "List", "items": list(items)}))
    return path


@pytest.fixture
def synced(capsys, panorama):
    """The sample synced as cluster prod1: 8 IP-tag pairs, next to a foreign tag."""
    panorama.seed("20.50.10.11", ["corp.keep"])
    assert sync(capsys, panorama, SAMPLE)[0] == 0
    panorama.reset_calls()
    return panorama


def test_a_sync_that_would_remove_every_tag_is_refused_and_writes_nothing(capsys, synced, tmp_path):
    code, out, err = sync(capsys, synced, service_list(tmp_path))
    assert code == 1
    assert err == (
        "aksfw: held back, nothing changed: the sync would remove 8 of the 8 IP-tag pairs "
        "of cluster prod1 on panorama: a wrong kubectl context, or an empty list from a "
        "misconfigured cluster? Pass --allow-mass-removal if that is meant\n"
    )
    report = json.loads(out)
    assert report["heldBack"] == {"pairsToRemove": 8, "pairsRegistered": 8}
    assert report["requests"] == 0 and report["plan"]["register"] == {}
    assert (report["unregistered"], report["wouldUnregister"]) == (0, 8)  # not done: "would"
    assert synced.write_calls() == []
    registered = run(capsys, "registered", "--panorama", synced.url, "--cluster", "prod1")[1]
    assert json.loads(registered) == UNSELECTED


def test_a_dry_run_shows_the_plan_and_says_it_would_be_held_back(capsys, synced, tmp_path):
    code, out, err = sync(capsys, synced, service_list(tmp_path), "--dry-run")
    assert code == 0 and synced.write_calls() == []
    assert err.startswith("aksfw: dry run: this sync would be held back: it would remove 8")
    report = json.loads(out)
    assert report["dryRun"] and report["heldBack"]["pairsToRemove"] == 8
    assert report["plan"]["unregister"] == UNSELECTED
    assert (report["unregistered"], report["wouldUnregister"]) == (0, 8)


def test_the_flag_lets_a_real_deletion_of_every_service_end_in_zero_tags(capsys, synced, tmp_path):
    code, out, err = sync(capsys, synced, service_list(tmp_path), "--allow-mass-removal")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert (report["unregistered"], report["wouldUnregister"]) == (8, 0)
    assert "heldBack" not in report
    assert synced.registered() == {"20.50.10.11": {"corp.keep"}}


def test_a_removal_below_the_threshold_is_applied_at_once(capsys, synced, tmp_path):
    document = json.loads(Path(SAMPLE).read_text())
    kept = [item for item in document["items"] if item["metadata"]["name"] != "metrics"]
    code, out, err = sync(capsys, synced, service_list(tmp_path, *kept))
    assert code == 0 and err == ""
    assert json.loads(out)["unregistered"] == 2  # aks.prod1.metrics, svc.app.prometheus


def test_most_but_not_all_removed_is_held_back_past_the_minimum(capsys, panorama, tmp_path):
    many = [service(f"s{i}", "shop", ips=[f"20.0.0.{i}"]) for i in range(12)]
    assert sync(capsys, panorama, service_list(tmp_path, *many))[0] == 0
    code, _, err = sync(capsys, panorama, service_list(tmp_path, many[0]))
    assert code == 1 and "would remove 11 of the 12 IP-tag pairs" in err
    assert len(panorama.registered()) == 12
    assert main(["sync", "--cluster", "prod1", "--services", str(service_list(tmp_path, *many[:7])),
                 "--panorama", panorama.url]) == 0  # 5 of 12: under the minimum of 10  # fmt: skip
    assert len(panorama.registered()) == 7


@pytest.mark.parametrize(
    ("extra", "done", "undone"),
    [
        ([], (11, 1), (0, 0)),
        (["--dry-run"], (0, 0), (11, 1)),
    ],
    ids=["applied", "dry-run"],
)
def test_a_sync_counts_as_done_only_what_it_sent(capsys, caplog, panorama, extra, done, undone):
    """`registered`/`unregistered` are what was sent; what a dry run or a hold left undone
    is `wouldRegister`/`wouldUnregister`, in the report and in the -v log line alike."""
    panorama.seed("10.240.0.7", ["corp.keep", "aks.prod1.old"])
    caplog.set_level("INFO", logger="aksfw_core.panorama.audit")
    line = ["--selector", "front=tier in (frontend)", "--selector", "shop=app!=db@shop"]
    code, out, _ = sync(capsys, panorama, SAMPLE, *line, *extra)
    report = json.loads(out)
    assert code == 0
    assert (report["registered"], report["unregistered"]) == done
    assert (report["wouldRegister"], report["wouldUnregister"]) == undone
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith(".audit")]
    [logged] = [event for event in events if event["event"] == "sync.cluster"]
    assert (logged["registered"], logged["unregistered"]) == done
    assert (logged["would_register"], logged["would_unregister"]) == undone
    assert ("aks.prod1.old" in panorama.registered()["10.240.0.7"]) == bool(extra)
