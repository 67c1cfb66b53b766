"""The Service watcher (`aksfw watch`) with the real kubernetes client against the fake
API server's watch streams: what publishes, what does not, and the requests it takes to
get there (resume, relist on 410 Gone, refusal)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aksfw_core.__main__ import main
from aksfw_core.errors import AuthError, Retryable
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.watch import Debouncer, ServiceWatcher, backoff_s, kube_api_client
from aksfw_local.fakes.kube_api import FakeKubeApi, service

TOKEN = "watch-token-abc"
CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-aks"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
)
WINDOW_S = 0.3
LIMITS = Limits(kube_watch_timeout_s=5, kube_read_timeout_s=5, kube_deadline_s=10)


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi(token=TOKEN) as api:
        yield api
    assert api.errors == []


class Run:
    """A watcher running in a thread, with what it published and waited."""

    def __init__(self, watcher: ServiceWatcher, published: list[float], waits: list[float]):
        self.watcher, self.published, self.waits = watcher, published, waits
        self.error: BaseException | None = None


@contextmanager
def watching(
    api: FakeKubeApi,
    tmp_path: Any,
    sleep: Callable[[float], object] | None = None,
    publish: Callable[[], None] | None = None,
) -> Iterator[Run]:
    published: list[float] = []
    waits: list[float] = []

    def record_wait(seconds: float) -> None:
        waits.append(seconds)
        if sleep is not None:
            sleep(seconds)

    client = kube_api_client(str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    watcher = ServiceWatcher(
        client,
        publish or (lambda: published.append(time.monotonic())),
        limits=LIMITS,
        debounce_s=WINDOW_S,
        list_retry=RetrySettings(attempts=1),
        sleep=record_wait,
    )
    run = Run(watcher, published, waits)

    def target() -> None:
        try:
            watcher.run()
        except BaseException as error:
            run.error = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield run
    finally:
        watcher.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the watcher did not stop"


def wait_until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    ends = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < ends, "timed out waiting"
        time.sleep(0.01)


def watches(api: FakeKubeApi) -> list[str | None]:
    """The resourceVersion of each watch request the fake got, in order."""
    return [r.query.get("resourceVersion") for r in api.requests if r.query.get("watch")]


def sequence(api: FakeKubeApi) -> list[str]:
    return ["watch" if r.query.get("watch") else "list" for r in api.requests]


def caught_up(run: Run, api: FakeKubeApi) -> None:
    """Wait until the watcher has seen every change, then one more window."""
    wait_until(lambda: run.watcher.resource_version == api.resource_version)
    time.sleep(WINDOW_S * 2)


def set_labels(labels: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        item["metadata"]["labels"] = labels

    return change


def test_a_label_change_publishes_once_after_the_window(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"], labels={"app": "web"})]
    listed = kube_api.resource_version
    with watching(kube_api, tmp_path) as run:
        wait_until(lambda: watches(kube_api))
        changed_at = time.monotonic()
        kube_api.update_service("web", set_labels({"app": "web", "tier": "front"}))
        caught_up(run, kube_api)
        assert len(run.published) == 1
        assert run.published[0] - changed_at >= WINDOW_S * 0.9  # the window collected it
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

    with watching(kube_api, tmp_path, sleep=while_disconnected) as run:
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
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise Retryable("Event Grid unreachable")

    with watching(kube_api, tmp_path, publish=flaky_publish) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("web", set_labels({"app": "x"}))
        wait_until(lambda: len(attempts) == 2)
        assert run.watcher.published == 1 and len(run.waits) == 1
    assert run.error is None and sequence(kube_api) == ["list", "watch"]


def test_a_refused_publish_stops_the_watcher(kube_api, tmp_path):
    kube_api.services = [service("web", ips=["20.0.0.1"])]

    def refused() -> None:
        raise AuthError("Event Grid refused the credential (HTTP 403)", status=403)

    with watching(kube_api, tmp_path, publish=refused) as run:
        wait_until(lambda: watches(kube_api))
        kube_api.update_service("web", set_labels({"app": "x"}))
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
