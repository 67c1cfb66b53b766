"""Listing Services with the real kubernetes client against the fake API server."""

from __future__ import annotations

import pytest

from aksfw_core.errors import AuthError, InputError, Retryable
from aksfw_core.kube import KubernetesServices
from aksfw_core.retry import RetrySettings
from tests.fakes.kube_api import FakeKubeApi, service

NO_WAIT = RetrySettings(attempts=2, initial_wait_s=0, max_wait_s=0)


@pytest.fixture
def kube_api():
    with FakeKubeApi(token="cluster-token-abc") as api:
        yield api
    assert api.errors == []


def source(api, tmp_path):
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    return KubernetesServices.from_kubeconfig(kubeconfig, page_size=2, retry=NO_WAIT)


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
    listing = KubernetesServices.from_kubeconfig(kubeconfig, retry=NO_WAIT, timeout_s=(2.0, 0.3))
    with pytest.raises(Retryable, match="unreachable"):
        listing.list_items()
    kube_api.delay_s = 0.0
    assert len(listing.list_items()) == 1
