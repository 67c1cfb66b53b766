"""Listing Services with the real kubernetes client against the fake API server."""

from __future__ import annotations

import ssl
import time

import pytest
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable
from aksfw_core.kube import (
    Gone,
    KubernetesServices,
    RequestBounds,
    api_errors,
    kube_api_client,
    kube_api_client_from_dict,
    request_bounds,
)
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.transport import DeadlineExceeded, ResponseTooLarge
from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.fakes.server import HttpResponse

SERVER = "https://kube.example:443"
NO_WAIT = RetrySettings(attempts=2, initial_wait_s=0, max_wait_s=0)


@pytest.fixture
def kube_api():
    with FakeKubeApi(token="cluster-token-abc") as api:
        yield api
    assert api.errors == []


def source(api, tmp_path):
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    return KubernetesServices.from_kubeconfig(
        kubeconfig, limits=Limits(kube_page_size=2), retry=NO_WAIT
    )


def test_lists_every_page_with_the_real_client(kube_api, tmp_path):
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i}"]) for i in range(5)]
    items = source(kube_api, tmp_path).list_items()
    assert sorted(item["metadata"]["name"] for item in items) == [f"s{i}" for i in range(5)]
    lists = [r for r in kube_api.requests if r.path == "/api/v1/services"]
    assert len(lists) == 3 and all(r.had_valid_token for r in lists)


def test_unauthorized_is_an_auth_error(kube_api, tmp_path):
    listing = source(kube_api, tmp_path)
    kube_api.token = "rotated"
    with pytest.raises(AuthError, match="401"):
        listing.list_items()
    assert len(kube_api.requests) == 1


def test_failure_on_the_second_page_raises_and_never_returns_a_partial_list(kube_api, tmp_path):
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i}"]) for i in range(5)]
    kube_api.inject(500, count=2, on_page=1)
    with pytest.raises(Retryable, match="500"):
        source(kube_api, tmp_path).list_items()


def test_transient_server_error_is_retried(kube_api, tmp_path):
    kube_api.services = [service("s0", ips=["20.0.0.1"])]
    kube_api.inject(500, count=1)
    assert len(source(kube_api, tmp_path).list_items()) == 1


def test_missing_kubeconfig_is_input_error(tmp_path):
    with pytest.raises(InputError, match="kubeconfig"):
        KubernetesServices.from_kubeconfig(str(tmp_path / "nope"))


def test_slow_api_server_times_out_as_a_transient_failure(kube_api, tmp_path):
    kube_api.services = [service("s0", ips=["20.0.0.1"])]
    kube_api.delay_s = 1.0
    kubeconfig = str(kube_api.write_kubeconfig(tmp_path / "kubeconfig"))
    listing = KubernetesServices.from_kubeconfig(
        kubeconfig,
        retry=NO_WAIT,
        limits=Limits(kube_connect_timeout_s=2.0, kube_read_timeout_s=0.3),
    )
    with pytest.raises(Retryable, match="did not answer in time"):
        listing.list_items()
    kube_api.delay_s = 0.0
    assert len(listing.list_items()) == 1


def bounded_source(api, tmp_path, **limits):
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    return KubernetesServices.from_kubeconfig(
        kubeconfig, retry=NO_WAIT, limits=Limits(kube_page_size=2, **limits)
    )


@pytest.mark.parametrize("mode", ["same", "new"])
def test_a_server_that_never_stops_paging_is_stopped_with_a_clear_error(kube_api, tmp_path, mode):
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i}"]) for i in range(3)]
    kube_api.continue_mode = mode
    listing = bounded_source(kube_api, tmp_path, kube_max_pages=5)
    reason = "repeats a continue token" if mode == "same" else "past 5 pages"
    with pytest.raises(NonRetryable, match=reason):
        listing.list_items()
    lists = [r for r in kube_api.requests if r.path == "/api/v1/services"]
    assert len(lists) == (2 if mode == "same" else 5)  # stopped at once, not retried


def test_a_drip_fed_page_cannot_stretch_the_total_deadline(kube_api, tmp_path):
    # One byte every 0.05 s never trips the 5 s read timeout; the page would take minutes.
    kube_api.services = [service("s0", ips=["20.0.0.1"])]
    kube_api.drip_s = 0.05
    listing = bounded_source(kube_api, tmp_path, kube_read_timeout_s=5, kube_deadline_s=0.5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"within 0\.5 s"):
        listing.list_items()
    assert time.monotonic() - started < 5
    assert len(kube_api.requests) == NO_WAIT.attempts  # a timeout is transient: retried


def test_an_endless_page_stops_at_the_byte_cap(kube_api, tmp_path):
    kube_api.services = [service("s0", ips=["20.0.0.1"])]
    kube_api.endless = True
    listing = bounded_source(kube_api, tmp_path, kube_max_response_bytes=1024 * 1024)
    with pytest.raises(ResponseTooLarge, match="larger than 1048576 bytes"):
        listing.list_items()
    assert len(kube_api.requests) == 1  # the same answer would come again: not retried


def test_a_page_nested_past_the_parsers_recursion_is_refused(kube_api, tmp_path, monkeypatch):
    listing = bounded_source(kube_api, tmp_path)
    monkeypatch.setattr(
        kube_api, "_answer", lambda body: HttpResponse(200, b"[" * 200_000, "application/json")
    )
    with pytest.raises(Retryable, match="not JSON"):
        listing.list_items()


# --- the client, bounds and failures the list and the watcher share ------------------------


def test_context_without_kubeconfig_is_input_error():
    with pytest.raises(InputError, match="--context needs --kubeconfig"):
        kube_api_client(None, "aks1")


def test_outside_a_pod_without_kubeconfig_is_input_error(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError, match=r"this is not a pod .* give --kubeconfig PATH"):
        kube_api_client(None)


def test_a_kubeconfig_document_connects_like_its_file(kube_api, tmp_path):
    kube_api.services = [service("s0", ips=["20.0.0.1"])]
    document = yaml.safe_load(kube_api.write_kubeconfig(tmp_path / "kubeconfig").read_text())
    listing = KubernetesServices(kube_api_client_from_dict(document, "cluster-1"), retry=NO_WAIT)
    assert len(listing.list_items()) == 1
    with pytest.raises(NonRetryable, match="cluster-1: unusable kubeconfig"):
        kube_api_client_from_dict({"contexts": []}, "cluster-1")


def test_a_watch_request_is_bounded_by_its_stream_time_plus_the_usual_bounds():
    limits = Limits(kube_connect_timeout_s=3, kube_read_timeout_s=10, kube_deadline_s=30)
    assert request_bounds(limits) == RequestBounds(30, (3, 10))
    assert request_bounds(limits, 300) == RequestBounds(330, (3, 310))


def _api_exception(status, retry_after=None):
    error = ApiException(status=status, reason="test")
    error.headers = {"Retry-After": retry_after} if retry_after else None
    return error


@pytest.mark.parametrize(
    ("status", "retry_after", "expected", "waits"),
    [
        (401, None, AuthError, None),
        (403, None, AuthError, None),
        (410, None, Gone, None),
        (429, "3", Retryable, 3.0),
        (500, None, Retryable, None),
        (501, None, NonRetryable, None),
        (400, None, NonRetryable, None),
    ],
)
def test_an_api_failure_is_classified_by_its_status(status, retry_after, expected, waits):
    with pytest.raises(expected) as raised, api_errors(SERVER, "listing Services"):
        raise _api_exception(status, retry_after)
    assert type(raised.value) is expected
    assert raised.value.status == status
    assert f"{SERVER}: listing Services failed (HTTP {status}" in str(raised.value)
    assert getattr(raised.value, "retry_after", None) == waits


def test_a_refused_certificate_behind_an_api_failure_is_not_retried():
    with pytest.raises(NonRetryable, match="TLS verification failed"), api_errors(SERVER, "x"):
        try:
            raise urllib3.exceptions.SSLError("certificate verify failed")
        except urllib3.exceptions.SSLError:
            raise _api_exception(0) from None


@pytest.mark.parametrize(("tls_repeats", "expected"), [(True, NonRetryable), (False, Retryable)])
def test_a_failed_handshake_repeats_unless_a_stream_may_have_been_cut(tls_repeats, expected):
    handshake = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    handshake.reason = "WRONG_VERSION_NUMBER"
    with (
        pytest.raises(expected) as raised,
        api_errors(SERVER, "watching Services", tls_repeats=tls_repeats),
    ):
        raise urllib3.exceptions.SSLError(handshake)
    assert type(raised.value) is expected
    assert str(raised.value).startswith(f"watching Services on {SERVER}: TLS handshake failed")


def test_a_refused_connection_is_transient():
    refused = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    with (
        pytest.raises(Retryable, match="refused the connection"),
        api_errors(SERVER, "listing Services"),
    ):
        raise refused
