"""Listing Static Egress Gateways (StaticGatewayConfiguration objects) with the real
kubernetes client against the fake API server: paged and bounded as the Service list is,
reduced to what egress tags read, a cluster without the resource (404) has none, and a
refusal names the permission."""

from __future__ import annotations

import pytest

from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable
from aksfw_core.kube import KubernetesServices, kube_api_client_from_dict
from aksfw_core.kube_egress import GROUP, PLURAL, VERSION, StaticGateways
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.transport import ResponseTooLarge
from aksfw_local.fakes.kube_api import FakeKubeApi, gateway, service

NO_WAIT = RetrySettings(attempts=2, initial_wait_s=0, max_wait_s=0)
LIST_PATH = f"/apis/{GROUP}/{VERSION}/{PLURAL}"


@pytest.fixture
def kube_api():
    with FakeKubeApi(token="cluster-token-abc") as api:
        api.gateways = []
        yield api
    assert api.errors == []


def gateways(api: FakeKubeApi, **limits: object) -> StaticGateways:
    client = kube_api_client_from_dict(api.kubeconfig(), "cluster-1")
    return StaticGateways(client, Limits(**{"kube_page_size": 2, **limits}), NO_WAIT)  # type: ignore[arg-type]


def test_every_page_is_read_and_each_gateway_reduced(kube_api):
    kube_api.gateways = [gateway(f"gw{i}", "shop", f"20.1.{i}.0/31") for i in range(4)]
    kube_api.gateways.append(gateway("pending", "web"))  # not provisioned yet
    found = gateways(kube_api).gateways()
    assert found[0] == {"namespace": "shop", "name": "gw0", "egressIpPrefix": "20.1.0.0/31"}
    assert [g["egressIpPrefix"] for g in found] == [*(f"20.1.{i}.0/31" for i in range(4)), ""]
    lists = [r for r in kube_api.requests if r.path == LIST_PATH]
    assert len(lists) == 3 and all(r.had_valid_token for r in lists)


def test_a_cluster_without_the_resource_has_no_gateways(kube_api):
    kube_api.gateways = None  # the Static Egress Gateway is not enabled
    assert gateways(kube_api).gateways() == []
    assert len(kube_api.requests) == 1  # a 404 is an answer, not retried


def test_a_refusal_names_the_permission(kube_api):
    kube_api.inject(403, resource=PLURAL)
    with pytest.raises(AuthError, match=f"list on {PLURAL}.{GROUP}") as raised:
        gateways(kube_api).gateways()
    assert raised.value.status == 403


def test_a_server_fault_is_retried_then_retryable(kube_api):
    kube_api.inject(503, count=2, resource=PLURAL)
    with pytest.raises(Retryable):
        gateways(kube_api).gateways()
    kube_api.inject(503, count=1, on_page=1, resource=PLURAL)
    kube_api.gateways = [gateway(f"gw{i}", prefix="20.1.2.0/31") for i in range(3)]
    assert len(gateways(kube_api).gateways()) == 3  # the second attempt lists it all


def test_faults_for_gateways_leave_the_service_list_alone(kube_api):
    kube_api.services = [service("web", ips=["20.0.0.1"])]
    kube_api.inject(500, count=5, resource=PLURAL)
    client = kube_api_client_from_dict(kube_api.kubeconfig(), "cluster-1")
    assert len(KubernetesServices(client, retry=NO_WAIT).list_items()) == 1


def test_a_malformed_gateway_fails_the_list(kube_api):
    broken = gateway("gw1", prefix="20.1.2.0/31")
    broken["status"]["egressIpPrefix"] = ["20.1.2.0/31"]
    kube_api.gateways = [broken]
    with pytest.raises(InputError, match="non-string prefix"):
        gateways(kube_api).gateways()


def test_the_list_is_bounded_as_the_service_list_is(kube_api):
    kube_api.gateways = [gateway(f"gw{i}", prefix="20.1.2.0/31") for i in range(5)]
    with pytest.raises(ResponseTooLarge, match=r"more than 3 StaticGatewayConfigurations"):
        gateways(kube_api, kube_max_services=3).gateways()
    with pytest.raises(NonRetryable, match="past 2 pages"):
        gateways(kube_api, kube_max_pages=2).gateways()
    kube_api.item_padding_bytes = 10_000  # what egress tags do not read is dropped
    assert len(gateways(kube_api, kube_max_list_bytes=2_000).gateways()) == 5
    with pytest.raises(NonRetryable, match="larger than"):
        gateways(kube_api, kube_max_response_bytes=5_000).gateways()
