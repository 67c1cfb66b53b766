"""The Service watcher (`aksfw watch`) with the real kubernetes client against the fake
API server's watch streams: what publishes, what does not, and the requests it takes to
get there (resume, relist on 410 Gone, refusal); then its parts alone: change detection,
watch-stream reading and the debounced publisher, on plain data and a fake clock.

No test waits for a window or a backoff in real time: the publisher runs on a `FakeClock`
the test moves, the watch's reconnects on one that moves by itself when waited on."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aksfw_core.__main__ import main
from aksfw_core.errors import AuthError, NonRetryable, Retryable
from aksfw_core.kube import Gone
from aksfw_core.limits import Limits
from aksfw_core.rules.model import Service
from aksfw_core.transport import ResponseTooLarge
from aksfw_core.watcher.changes import ServiceViews, ViewChange, event_change, list_views
from aksfw_core.watcher.publishing import DebouncedPublisher, Debouncer
from aksfw_core.watcher.stream import WatchEvent, event_lines, read_event
from aksfw_core.watcher.timing import backoff_s
from aksfw_local.fakes.kube_api import FakeKubeApi, service
from tests.support.watcher import (
    LIMITS,
    WINDOW_S,
    FakeClock,
    caught_up,
    wait_until,
    watching,
)

TOKEN = "watch-token-abc"
CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-aks"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
)


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi(token=TOKEN) as api:
        yield api
    assert api.errors == []


def watches(api: FakeKubeApi) -> list[str | None]:
    """The resourceVersion of each watch request the fake got, in order."""
    return [r.query.get("resourceVersion") for r in api.requests if r.query.get("watch")]


def sequence(api: FakeKubeApi) -> list[str]:
    return ["watch" if r.query.get("watch") else "list" for r in api.requests]


def set_labels(labels: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        item["metadata"]["labels"] = labels

    return change


def test_a_label_change_publishes_once_after_the_window(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"], labels={"app": "web"})]
    listed = kube_api.resource_version
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        changed_at = run.clock.now()
        kube_api.update_service("web", set_labels({"app": "web", "tier": "front"}))
        wait_until(lambda: run.watcher.resource_version == kube_api.resource_version)
        assert run.published == [] and not run.watcher.idle  # the window is open
        caught_up(run, kube_api)
        assert len(run.published) == 1
        assert run.published[0] - changed_at >= WINDOW_S  # the window collected it
    assert sequence(kube_api) == ["list", "watch"]
    assert watches(kube_api) == [listed]
    watch = next(r for r in kube_api.requests if r.query.get("watch"))
    assert watch.query["allowWatchBookmarks"] == "true" and watch.had_valid_token
    assert int(watch.query["timeoutSeconds"]) == 5
    assert run.error is None


def _annotate(item: dict[str, Any]) -> None:
    item["metadata"].setdefault("annotations", {})["example.com/owner"] = "team-a"


def _condition(item: dict[str, Any]) -> None:
    item["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "Ok"}]


def _port(item: dict[str, Any]) -> None:
    item["spec"]["ports"][0]["port"] = 8443


@pytest.mark.parametrize("change", [_annotate, _condition, _port], ids=lambda f: f.__name__)
def test_changes_that_cannot_change_tags_publish_nothing(kube_api, tmp_path, change):
    kube_api.services = [service("web", ips=["20.0.0.1"], labels={"app": "web"})]
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("web", change)
        caught_up(run, kube_api)
        assert run.published == []
    assert sequence(kube_api) == ["list", "watch"]


def test_a_burst_of_changes_publishes_once_per_window(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"])]
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        for i in range(20):
            kube_api.update_service("web", set_labels({"rev": str(i)}))
        caught_up(run, kube_api)
        assert len(run.published) == 1
        kube_api.update_service("web", set_labels({"rev": "last"}))
        caught_up(run, kube_api)
        assert len(run.published) == 2
        assert run.published[1] - run.published[0] >= WINDOW_S
    assert sequence(kube_api) == ["list", "watch"]


def test_a_dropped_stream_resumes_from_the_last_version_seen(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"])]
    listed = kube_api.resource_version
    kube_api.drop_watch(after_events=1)
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("web", set_labels({"app": "one"}))
        first = kube_api.resource_version
        kube_api.update_service("web", set_labels({"app": "two"}))
        caught_up(run, kube_api)
        assert len(run.published) == 1
        assert len(run.waits) == 1 and 0 < run.waits[0] <= LIMITS.watch_backoff_initial_s
    # The second watch starts after the one event the first delivered, not from the list.
    assert watches(kube_api) == [listed, first]
    assert sequence(kube_api) == ["list", "watch", "watch"]


def test_a_bookmark_moves_the_version_the_next_watch_resumes_from(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"])]
    kube_api.bookmark_interval_s = 0.05
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        listed = kube_api.resource_version
        kube_api.advance(5)  # other objects changed: no Service event, only bookmarks
        advanced = kube_api.resource_version
        wait_until(lambda: run.watcher.resource_version == advanced)
        kube_api.end_watches()  # the server's timeout: the watcher reconnects at once
        wait_until(lambda: len(watches(kube_api)) == 2)
        assert run.published == [] and run.waits == []
    assert watches(kube_api) == [listed, advanced]  # not the old version: no 410 later
    assert sequence(kube_api) == ["list", "watch", "watch"]


def test_bookmarks_and_non_loadbalancer_events_publish_nothing(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"]), service("other", type="ClusterIP")]
    kube_api.bookmark_interval_s = 0.05
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("other", set_labels({"x": "y"}))
        caught_up(run, kube_api)
        assert run.published == []
    assert sequence(kube_api) == ["list", "watch"]


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
def test_gone_relists_then_watches_from_the_new_list(kube_api, tmp_path, as_http):
    kube_api.services = [service("web", ips=["20.0.0.1"])]
    kube_api.gone_as_http = as_http
    listed = kube_api.resource_version
    kube_api.drop_watch(after_events=0)

    def while_disconnected(_seconds: float) -> None:
        # A change the watch never delivers, and history that no longer reaches back.
        if len(watches(kube_api)) == 1:
            kube_api.update_service("web", set_labels({"app": "missed"}))
            kube_api.expire_history()

    with watching(kube_api, tmp_path, on_reconnect_wait=while_disconnected) as run:
        wait_until(lambda: len(watches(kube_api)) >= 3)
        caught_up(run, kube_api)
        relisted = kube_api.resource_version
        assert len(run.published) == 1  # the relist found the missed label change
    assert sequence(kube_api) == ["list", "watch", "watch", "list", "watch"]
    assert watches(kube_api) == [listed, listed, relisted]


def test_a_refused_watch_is_a_permanent_error(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"])]
    kube_api.watch_forbidden = True
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: run.error is not None)
    assert isinstance(run.error, AuthError) and "403" in str(run.error)
    assert sequence(kube_api) == ["list", "watch"]  # not retried
    assert run.published == [] and run.waits == []


def test_the_cli_exits_non_zero_with_one_line_when_the_watch_is_refused(
    kube_api, tmp_path, capsys, monkeypatch
):
    kube_api.watch_forbidden = True
    monkeypatch.setenv("AKSFW_DEV_TOKEN", "dev-token")
    monkeypatch.setenv("AKSFW_WATCH_CLUSTER_ID", CLUSTER_ID)
    kubeconfig = str(kube_api.write_kubeconfig(tmp_path / "kubeconfig"))
    code = main(
        ["watch", "--topic-endpoint", "https://127.0.0.1:9/api/events", "--kubeconfig", kubeconfig]
    )
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "403" in err and "AuthError" not in err
    assert "Traceback" not in err
    assert sequence(kube_api) == ["list", "watch"]


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--cluster-id", "/subscriptions/x"], "not an Azure resource ID"),
        ([], "--cluster-id"),
        (["--cluster-id", CLUSTER_ID, "--debounce-seconds", "-1"], "--debounce-seconds"),
        (["--cluster-id", CLUSTER_ID, "--context", "c"], "--context needs --kubeconfig"),
    ],
)
def test_the_cli_refuses_bad_input_with_one_line(capsys, monkeypatch, arguments, reason):
    monkeypatch.delenv("AKSFW_WATCH_CLUSTER_ID", raising=False)
    monkeypatch.setenv("AKSFW_EVENTGRID_TOPIC_ENDPOINT", "https://topic.example.invalid")
    try:  # argparse-level mistakes exit from the parser itself
        code = main(["watch", *arguments])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and reason in err


def test_a_service_that_stays_non_loadbalancer_publishes_nothing_until_it_becomes_one(
    kube_api, tmp_path
):
    kube_api.services = [service("internal", type="ClusterIP", labels={"app": "db"})]
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("internal", set_labels({"app": "db", "tier": "back"}))
        caught_up(run, kube_api)
        assert run.published == []

        def to_load_balancer(item: dict[str, Any]) -> None:
            item["spec"]["type"] = "LoadBalancer"
            item["status"]["loadBalancer"] = {"ingress": [{"ip": "20.0.0.9"}]}

        kube_api.update_service("internal", to_load_balancer)
        caught_up(run, kube_api)
        assert len(run.published) == 1
    assert sequence(kube_api) == ["list", "watch"]


def test_a_failed_publish_is_retried_with_backoff_and_the_watch_goes_on(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"])]
    attempts: list[float] = []

    def flaky_publish() -> None:
        attempts.append(run.clock.now())
        if len(attempts) == 1:
            raise Retryable("Event Grid unreachable")

    with watching(kube_api, tmp_path, publish=flaky_publish) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("web", set_labels({"app": "x"}))
        wait_until(lambda: run.watcher.resource_version == kube_api.resource_version)
        run.clock.advance(WINDOW_S)
        wait_until(lambda: len(attempts) == 1 and run.clock.waiting)  # backing off
        backoff = run.clock.waits[-1]
        assert 0 < backoff <= LIMITS.watch_backoff_initial_s
        run.clock.advance(backoff)
        wait_until(lambda: run.watcher.published == 1)
        assert attempts[1] - attempts[0] >= backoff and len(attempts) == 2
        assert run.waits == []  # the watch never reconnected
    assert run.error is None and sequence(kube_api) == ["list", "watch"]


def test_a_refused_publish_stops_the_watcher(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"])]

    def refused() -> None:
        raise AuthError("Event Grid refused the credential (HTTP 403)", status=403)

    with watching(kube_api, tmp_path, publish=refused) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("web", set_labels({"app": "x"}))
        wait_until(lambda: run.watcher.resource_version == kube_api.resource_version)
        run.clock.advance(WINDOW_S)
        wait_until(lambda: run.error is not None)
    assert isinstance(run.error, AuthError)


@pytest.mark.parametrize(
    ("events", "now", "due"),
    [
        ([], 0.0, None),
        ([1.0], 1.0, 2.0),
        ([1.0, 2.5], 2.5, 0.5),
        ([1.0, 2.5], 3.5, 0.0),
    ],
)
def test_the_window_opens_at_the_first_change(events, now, due):
    debouncer = Debouncer(window_s=2.0)
    for at in events:
        debouncer.changed(at)
    assert debouncer.due_in(now) == due


def test_a_failed_publish_keeps_its_changes_due():
    debouncer = Debouncer(window_s=2.0)
    debouncer.changed(1.0)
    first = debouncer.begin()
    debouncer.changed(2.0)  # arrived while publishing
    debouncer.failed(first)
    assert debouncer.due_in(3.0) == 0.0


@pytest.mark.parametrize(
    ("failures", "jitter", "expected"),
    [(1, 0.0, 0.25), (1, 1.0, 0.5), (3, 1.0, 2.0), (20, 1.0, 30.0), (20, 0.0, 15.0)],
)
def test_backoff_doubles_with_jitter_up_to_its_cap(failures, jitter, expected):
    assert backoff_s(failures, Limits(), lambda: jitter) == expected


# --- change detection: plain Service objects, no client ---------------------------------

WEB = service("web", "shop", ips=["20.0.0.1"], labels={"app": "web"})
WEB_KEY = ("shop", "web")


def edited(obj: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copy: dict[str, Any] = {**obj, "metadata": dict(obj["metadata"]), "spec": dict(obj["spec"])}
    copy["status"] = {"loadBalancer": dict(obj["status"]["loadBalancer"])}
    change(copy)
    return copy


def _relabel(obj: dict[str, Any]) -> None:
    obj["metadata"]["labels"] = {"app": "web", "tier": "front"}


def _new_ip(obj: dict[str, Any]) -> None:
    obj["status"]["loadBalancer"]["ingress"] = [{"ip": "20.0.0.2"}]


def _to_cluster_ip(obj: dict[str, Any]) -> None:
    obj["spec"]["type"] = "ClusterIP"


def _new_version(obj: dict[str, Any]) -> None:
    obj["metadata"]["resourceVersion"] = "999999"


def _other_annotation(obj: dict[str, Any]) -> None:
    obj["metadata"]["annotations"] = {"example.com/owner": "team-a"}


def _aksfw_tags(obj: dict[str, Any]) -> None:
    obj["metadata"]["annotations"] = {"aksfw.io/tags": "pci"}


def _aksfw_ignore(obj: dict[str, Any]) -> None:
    obj["metadata"]["annotations"] = {"aksfw.io/ignore": "true"}


def _another_aksfw_annotation(obj: dict[str, Any]) -> None:
    obj["metadata"]["annotations"] = {"aksfw.io/owner": "team-a"}


def _conditions(obj: dict[str, Any]) -> None:
    obj["status"]["conditions"] = [{"type": "Ready", "status": "True"}]


def _ports(obj: dict[str, Any]) -> None:
    obj["spec"]["ports"] = [{"port": 8443, "protocol": "TCP"}]


def _bad_labels(obj: dict[str, Any]) -> None:
    obj["metadata"]["labels"] = ["not", "a", "map"]


def _no_name(obj: dict[str, Any]) -> None:
    obj["metadata"] = {"namespace": "shop"}


@pytest.mark.parametrize(
    ("kind", "change", "why"),
    [
        ("MODIFIED", _relabel, "modified"),
        ("MODIFIED", _new_ip, "modified"),
        ("MODIFIED", _to_cluster_ip, "modified"),
        ("DELETED", _new_version, "deleted"),
        ("MODIFIED", _bad_labels, "modified"),
        ("MODIFIED", _no_name, "unreadable"),
        ("MODIFIED", _new_version, None),
        ("MODIFIED", _other_annotation, None),
        ("MODIFIED", _aksfw_tags, "modified"),
        ("MODIFIED", _aksfw_ignore, "modified"),
        ("MODIFIED", _another_aksfw_annotation, None),
        ("MODIFIED", _conditions, None),
        ("MODIFIED", _ports, None),
        ("ADDED", _new_version, None),  # a watch's initial ADDED of a Service already listed
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_an_event_is_a_change_only_if_it_changes_what_tags_see(kind, change, why):
    views = list_views([WEB])
    result = event_change(views, kind, edited(WEB, change))
    assert (result.why if result else None) == why
    assert views == list_views([WEB])  # only read


@pytest.mark.parametrize(
    ("before", "kind", "after", "changed"),
    [
        (None, "ADDED", service("db", type="ClusterIP"), False),
        (None, "ADDED", service("web", ips=["20.0.0.1"]), True),
        (service("db", type="ClusterIP"), "DELETED", service("db", type="ClusterIP"), False),
        (service("web", ips=["20.0.0.1"]), "DELETED", service("web", ips=["20.0.0.1"]), True),
        (service("db", type="ClusterIP"), "MODIFIED", service("db", ips=["20.0.0.9"]), True),
    ],
)
def test_services_that_are_not_loadbalancers_are_invisible(before, kind, after, changed):
    views = ServiceViews()
    views.relist([before] if before else [])
    assert (views.apply(kind, after) is not None) == changed


def test_the_views_follow_the_events_and_a_relist_reports_what_the_watch_missed():
    views = ServiceViews()
    assert views.relist([WEB]) is None  # the first list is the baseline
    change = views.apply("MODIFIED", edited(WEB, _relabel))
    assert change == ViewChange(
        "modified", WEB_KEY, Service("shop", "web", {"app": "web", "tier": "front"}, ("20.0.0.1",))
    )
    assert views.apply("MODIFIED", edited(WEB, _relabel)) is None  # already seen
    assert views.relist([edited(WEB, _relabel)]) is None  # the list agrees with the watch
    assert views.relist([WEB]) == ViewChange("relist", None)  # a change the watch missed
    assert views.apply("DELETED", WEB) == ViewChange("deleted", WEB_KEY, None)
    assert views.relist([]) is None


# --- reading a watch stream -------------------------------------------------------------

SERVER = "https://kube.example"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"type": "ADDED", "object": {"metadata": {"resourceVersion": "7"}}}',
         WatchEvent("ADDED", {"metadata": {"resourceVersion": "7"}}, "7")),
        (b'{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}',
         WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "9"}}, "9")),
        (b'{"type": "DELETED", "object": {"metadata": {}}}', WatchEvent("DELETED", {"metadata": {}}, None)),
        (b'{"type": "ERROR", "object": {"code": 410}}', Gone),
        (b'{"type": "ERROR", "object": {"code": 403}}', AuthError),
        (b'{"type": "ERROR", "object": {"code": 400}}', NonRetryable),
        (b'{"type": "ERROR", "object": {"code": 500}}', Retryable),
        (b'{"type": "ERROR", "object": {}}', Retryable),
        (b'{"type": "RENAMED", "object": {}}', Retryable),
        (b'{"type": "ADDED"}', Retryable),
        (b"not json", Retryable),
        (b"[" * 100_000, Retryable),
    ],
)  # fmt: skip
def test_a_watch_line_is_an_event_or_a_classified_error(line, expected):
    if isinstance(expected, WatchEvent):
        assert read_event(line, SERVER) == expected
    else:
        with pytest.raises(expected) as raised:
            read_event(line, SERVER)
        assert type(raised.value) is expected


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b'{"a": 1}\n{"b": 2}\n'], [b'{"a": 1}', b'{"b": 2}']),
        ([b'{"a"', b": 1}\n\n", b'{"b": 2}'], [b'{"a": 1}', b'{"b": 2}']),  # no final newline
        ([b"\n", b"  \n"], []),
    ],
)
def test_a_stream_is_split_into_lines_across_chunks(chunks, lines):
    assert list(event_lines(chunks, 64, "watch")) == lines


def test_an_event_larger_than_its_cap_is_refused():
    with pytest.raises(ResponseTooLarge, match="larger than 64 bytes"):
        list(event_lines([b"x" * 40, b"x" * 40], 64, "watch"))


# --- the debounced publisher on a fake clock ----------------------------------------------


@contextmanager
def publishing(publish: Callable[[], None], clock: FakeClock) -> Iterator[DebouncedPublisher]:
    publisher = DebouncedPublisher(
        publish, window_s=2.0, limits=Limits(), clock=clock, jitter=lambda: 1.0
    )
    thread = threading.Thread(target=publisher.run, daemon=True)
    thread.start()
    try:
        yield publisher
    finally:
        publisher.stop()
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_the_publisher_waits_out_the_window_on_its_clock_not_in_real_time():
    clock = FakeClock(auto=True)
    published: list[float] = []
    started = time.monotonic()
    with publishing(lambda: published.append(clock.now()), clock) as publisher:
        opened = clock.now()
        publisher.changed("modified", WEB_KEY)
        publisher.changed("modified", WEB_KEY)
        wait_until(lambda: publisher.published == 1)
    assert published == [opened + 2.0] and clock.waits == [2.0]
    assert time.monotonic() - started < 1.0


def test_a_failed_publish_is_due_again_after_its_backoff_or_its_retry_after():
    clock = FakeClock(auto=True)
    attempts: list[float] = []

    def publish() -> None:
        attempts.append(clock.now())
        if len(attempts) == 1:
            raise Retryable("throttled (HTTP 429)")
        if len(attempts) == 2:
            raise Retryable("throttled (HTTP 429)", retry_after=7.0)

    with publishing(publish, clock) as publisher:
        publisher.changed("relist")
        wait_until(lambda: publisher.published == 1)
    # The window, then backoff 0.5 s (initial, full jitter), then Retry-After over 1 s.
    assert [round(b - a, 3) for a, b in itertools.pairwise(attempts)] == [0.5, 7.0]
    assert clock.waits == [2.0, 0.5, 7.0]


def test_a_refused_publish_ends_the_publisher_with_its_error():
    def refused() -> None:
        raise AuthError("Event Grid refused the credential (HTTP 403)", status=403)

    clock = FakeClock(auto=True)
    publisher = DebouncedPublisher(refused, window_s=1.0, clock=clock)
    publisher.changed("modified")
    with pytest.raises(AuthError):
        publisher.run()
    assert publisher.idle and publisher.published == 0


def test_stop_ends_a_wait_that_the_clock_would_not():
    clock = FakeClock()  # never moves: only stop can end the window's wait
    with publishing(lambda: None, clock) as publisher:
        publisher.changed("modified")
        wait_until(lambda: clock.waiting)
    assert publisher.published == 0
