"""What aksfw refuses to trust in Resource Manager's answers (issue 20, items 5 and 6): a
kubeconfig from `listClusterUserCredential` that names local files or plain-HTTP servers,
and a `nextLink` that leads to another origin with the bearer token."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest
from azure.core.rest import HttpRequest as SdkRequest

from aksfw_core.azure.access import ClusterAccess, check_kubeconfig
from aksfw_core.azure.arm import container_service, follow_link, same_origin
from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.identity import StaticToken
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.azure.node_subnets import NodeSubnets
from aksfw_core.config import parse_settings
from aksfw_core.errors import NonRetryable
from aksfw_core.limits import Limits
from aksfw_local.fakes.arm import FakeArm
from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.fakes.server import FakeServer, HttpRequest, HttpResponse
from tests.support.arm import ARM_TOKEN

SUB = "11111111-1111-1111-1111-111111111111"
SECRET = "s3cret-from-the-app-host"


def cluster_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}"


def monitored(name: str) -> MonitoredCluster:
    return MonitoredCluster(cluster_id(name), name, name, "MC")


class PlainRecorder(FakeServer):
    """A plain-HTTP server that records every request's headers."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def _handle(self, request: HttpRequest) -> HttpResponse:
        with self._lock:
            self.headers.append(dict(request.headers.items()))
        return HttpResponse(200, b'{"kind": "ServiceList", "items": [], "metadata": {}}')


@pytest.fixture
def elsewhere(arm, trust):
    """Another origin (trusted, accepting the same token): it must never see a request."""
    with FakeArm(token=ARM_TOKEN) as other:
        trust(arm, other)
        yield other
    assert other.errors == []


def read_services(arm: FakeArm, name: str) -> list[Any]:
    access = ClusterAccess(parse_settings({}, arm_endpoint=arm.url), StaticToken(ARM_TOKEN))
    source = access.services(monitored(name))
    try:
        return list(source.list_items())
    finally:
        source.close()


# ----------------------------------------------------------------- item 5: kubeconfigs


def test_a_token_file_in_azures_kubeconfig_is_refused_and_never_read(arm, tmp_path):
    secret_file = tmp_path / "environ"
    secret_file.write_text(SECRET)
    with FakeKubeApi(token=SECRET) as kube:  # were the file read, its token would work
        kube.services = [service("web", ips=["20.0.0.1"])]
        arm.add_cluster(
            SUB, "rg", "aks-file", kubeconfig=kube.kubeconfig(user={"tokenFile": str(secret_file)})
        )
        with pytest.raises(NonRetryable, match="'tokenFile' in users\\[0\\]") as refused:
            read_services(arm, "aks-file")
        assert kube.requests == []  # no request, so no header carried the secret
    assert str(secret_file) not in str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("user", "client-certificate", "{file}"),
        ("user", "client-key", "{file}"),
        ("cluster", "certificate-authority", "{file}"),
        ("cluster", "proxy-url", "http://127.0.0.1:9"),
        ("cluster", "insecure-skip-tls-verify", True),
    ],
)
def test_keys_that_read_files_or_weaken_tls_are_refused_by_name(arm, tmp_path, section, key, value):
    secret_file = tmp_path / "key.pem"
    secret_file.write_text(SECRET)
    if value == "{file}":
        value = str(secret_file)
    with FakeKubeApi(token="kube-token") as kube:
        kubeconfig = kube.kubeconfig()
        target = kubeconfig["users" if section == "user" else "clusters"][0][section]
        if key == "certificate-authority":
            target.pop("certificate-authority-data")
        target[key] = value
        arm.add_cluster(SUB, "rg", "aks-key", kubeconfig=kubeconfig)
        with pytest.raises(NonRetryable, match=repr(key)) as refused:
            read_services(arm, "aks-key")
        assert kube.requests == []
    assert str(secret_file) not in str(refused.value)


def test_a_plain_http_server_in_azures_kubeconfig_is_refused(arm):
    with PlainRecorder() as plain, FakeKubeApi(token="http-token") as kube:
        kubeconfig = kube.kubeconfig()
        kubeconfig["clusters"][0]["cluster"]["server"] = plain.url
        arm.add_cluster(SUB, "rg", "aks-http", kubeconfig=kubeconfig)
        with pytest.raises(NonRetryable, match="https://") as refused:
            read_services(arm, "aks-http")
        assert plain.headers == []  # the token never went out in clear
        assert "http-token" not in str(refused.value)


def test_an_entra_kubeconfig_from_azure_is_still_accepted(arm):
    kubelogin = {"exec": {"command": "kubelogin", "args": ["get-token"]}}
    with FakeKubeApi(token=ARM_TOKEN) as kube:  # StaticToken answers every scope
        kube.services = [service("web", ips=["20.0.0.1"])]
        arm.add_cluster(
            SUB, "rg", "aks-entra", aad=True, kubeconfig=kube.kubeconfig(user=kubelogin)
        )
        assert [item["metadata"]["name"] for item in read_services(arm, "aks-entra")] == ["web"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"clusters": "x"}, "clusters is not a list"),
        ({"clusters": ["x"]}, r"clusters\[0\] has no cluster"),
        ({"clusters": [{"name": "c", "cluster": {}}]}, "not an https:// URL"),
        ({"clusters": [{"cluster": {"server": "https://u:p@host"}}]}, "not an https:// URL"),
        ({"clusters": [{"cluster": {"server": 5}}]}, "not an https:// URL"),
        ({"users": [{"user": "token"}]}, r"users\[0\] has no user"),
        ({"users": [{"user": {"exec": {"command": "sh"}}}]}, "'exec'"),
        ({"users": [{"user": {"auth-provider": {"name": "gcp"}}}]}, "'auth-provider'"),
    ],
)
def test_a_kubeconfig_of_the_wrong_shape_is_refused(document, message):
    with pytest.raises(NonRetryable, match=message):
        check_kubeconfig(document, "c1")


def test_inline_credentials_and_https_pass_the_check():
    ca = base64.b64encode(b"pem").decode()
    check_kubeconfig(
        {
            "clusters": [
                {
                    "cluster": {
                        "server": "https://a.hcp.azmk8s.io:443",
                        "certificate-authority-data": ca,
                    }
                }
            ],
            "users": [
                {"user": {"client-certificate-data": ca, "client-key-data": ca, "token": "t"}}
            ],
        },
        "c1",
    )


# ----------------------------------------------------------------- item 6: paging


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://arm.example/sub?x=1", True),
        ("https://ARM.example:443/sub", True),
        ("http://arm.example/sub", False),
        ("https://arm.example:8443/sub", False),
        ("https://arm.example@evil.example/sub", False),
        ("https://evil.example/sub", False),
        ("/relative", False),
        ("https://arm.example:port/", False),
    ],
)
def test_same_origin(url, same):
    assert same_origin(url, "https://arm.example/") is same


def test_follow_link_refuses_another_origin_and_templates():
    assert follow_link(None, "https://arm.example", "list") is None
    assert follow_link("", "https://arm.example", "list") is None
    assert follow_link("https://arm.example/x", "https://arm.example", "list")
    for link in ("https://evil.example/x", "https://arm.example/{x}", 5):
        with pytest.raises(NonRetryable, match="nextLink leads away"):
            follow_link(link, "https://arm.example", "list")


def test_a_cluster_list_whose_next_link_leads_away_is_refused(arm, elsewhere):
    arm.page_size = 1
    arm.add_cluster(SUB, "rg", "aks-1", tags={"aksfw": "on"})
    arm.add_cluster(SUB, "rg", "aks-2", tags={"aksfw": "on"})
    arm.next_link_base = elsewhere.url
    settings = parse_settings(
        {"subscriptions": [SUB], "discovery": {"tag": "aksfw"}}, arm_endpoint=arm.url
    )
    with pytest.raises(NonRetryable, match="away from") as refused:
        ClusterDiscovery(settings, StaticToken(ARM_TOKEN)).inventory()
    assert elsewhere.requests == []  # no request, so no token
    assert ARM_TOKEN not in str(refused.value)
    assert len([r for r in arm.requests if r.authorized]) == 1  # not retried


def test_a_vnet_list_whose_next_link_leads_away_is_refused(arm, elsewhere):
    arm.page_size = 1
    arm.add_cluster(SUB, "rg", "aks-1", node_resource_group="MC_1")
    arm.add_virtual_network(SUB, "MC_1", "extra", {"s": "10.9.0.0/24"})
    arm.next_link_base = elsewhere.url
    reader = NodeSubnets(parse_settings({}, arm_endpoint=arm.url), StaticToken(ARM_TOKEN))
    with pytest.raises(NonRetryable, match="away from"):
        reader.read(MonitoredCluster(cluster_id("aks-1"), "aks-1", "aks-1", "MC_1"))
    assert elsewhere.requests == []


def test_any_resource_manager_request_to_another_origin_is_refused(arm, elsewhere):
    with container_service(StaticToken(ARM_TOKEN), SUB, arm.url, Limits()) as client:
        with pytest.raises(NonRetryable, match="away from"):
            client.send_request(SdkRequest("GET", f"{elsewhere.url}/subscriptions/{SUB}"))
        assert client.send_request(SdkRequest("GET", f"{arm.url}/nowhere")).status_code >= 400
    assert elsewhere.requests == []
    assert any(r.authorized for r in arm.requests)  # the configured origin still works
