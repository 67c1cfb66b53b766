"""The Azure fakes (ARM, Key Vault) work with the real SDK clients; the event samples parse."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache
from azure.mgmt.containerservice import ContainerServiceClient

from aksfw_local.fakes.arm import AKS_AAD_SERVER_ID, DEFAULT_API_VERSION, FakeArm
from aksfw_local.fakes.keyvault import FakeKeyVault
from aksfw_local.stack import EVENTS

SUB = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
ARM_SCOPE = "https://management.azure.com/.default"


class StaticTokenCredential:
    """A ``TokenCredential`` that hands out one fixed token and records what was asked."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def keyvault() -> Iterator[FakeKeyVault]:
    with FakeKeyVault() as fake:
        http_challenge_cache.remove_challenge_for_url(fake.url)  # a reused port's old entry
        yield fake
        assert fake.errors == []
        http_challenge_cache.remove_challenge_for_url(fake.url)


def arm_client(
    fake: FakeArm, credential: StaticTokenCredential | None = None, **kwargs: Any
) -> ContainerServiceClient:
    kwargs.setdefault("retry_backoff_factor", 0)
    return ContainerServiceClient(
        credential or StaticTokenCredential(fake.token),
        SUB,
        base_url=fake.url,
        credential_scopes=[ARM_SCOPE],
        connection_verify=str(fake.ca_file),
        **kwargs,
    )


def kv_client(fake: FakeKeyVault, credential: StaticTokenCredential) -> SecretClient:
    return SecretClient(
        vault_url=fake.url,
        credential=credential,
        verify_challenge_resource=False,
        connection_verify=str(fake.ca_file),
        retry_total=0,
    )


# --------------------------------------------------------------------------- ARM


def test_list_follows_next_link_across_pages(arm: FakeArm) -> None:
    for name in ("aks-prod1", "aks-prod2", "aks-prod3"):
        arm.add_cluster(SUB, "rg-prod", name)
    arm.add_cluster(SUB2, "rg-other", "aks-elsewhere")
    credential = StaticTokenCredential(arm.token)

    with arm_client(arm, credential) as client:
        names = sorted(str(cluster.name) for cluster in client.managed_clusters.list())

    assert names == ["aks-prod1", "aks-prod2", "aks-prod3"]
    assert [request.method for request in arm.requests] == ["GET", "GET"]
    first, second = arm.requests
    assert first.path == (
        f"/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters"
    )
    assert first.query == {"api-version": DEFAULT_API_VERSION}
    assert second.path == first.path
    assert second.query["api-version"] == DEFAULT_API_VERSION
    assert second.query["$skipToken"]
    assert all(request.authorized for request in arm.requests)
    assert {scopes for scopes, _ in credential.calls} == {(ARM_SCOPE,)}


def test_list_by_resource_group_is_case_insensitive(arm: FakeArm) -> None:
    arm.add_cluster(SUB, "rg-prod", "aks-prod1")
    arm.add_cluster(SUB, "rg-test", "aks-test1")

    with arm_client(arm) as client:
        names = [c.name for c in client.managed_clusters.list_by_resource_group("RG-PROD")]
        with pytest.raises(ResourceNotFoundError) as missing:
            list(client.managed_clusters.list_by_resource_group("rg-nope"))

    assert names == ["aks-prod1"]
    assert missing.value.error is not None
    assert missing.value.error.code == "ResourceGroupNotFound"


def test_get_with_mixed_case_resource_group(arm: FakeArm) -> None:
    stored = arm.add_cluster(SUB, "rg-prod", "aks-prod1", tags={"env": "prod"}, aad=True)

    with arm_client(arm) as client:
        cluster = client.managed_clusters.get("RG-Prod", "AKS-prod1")
        with pytest.raises(ResourceNotFoundError) as missing:
            client.managed_clusters.get("rg-prod", "aks-gone")

    assert cluster.id == stored["id"]
    assert cluster.id == (
        f"/subscriptions/{SUB}/resourceGroups/rg-prod"
        "/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
    )
    assert cluster.tags == {"env": "prod"}
    assert cluster.location == "westeurope"
    assert cluster.provisioning_state == "Succeeded"
    assert cluster.power_state is not None and cluster.power_state.code == "Running"
    assert cluster.node_resource_group == "MC_rg-prod_aks-prod1_westeurope"
    assert cluster.fqdn is not None and cluster.fqdn.endswith(".hcp.westeurope.azmk8s.io")
    assert cluster.aad_profile is not None
    assert cluster.aad_profile.managed and cluster.aad_profile.enable_azure_rbac
    assert missing.value.error is not None
    assert missing.value.error.code == "ResourceNotFound"
    assert arm.requests[0].path.endswith(
        "/resourceGroups/RG-Prod/providers/Microsoft.ContainerService/managedClusters/AKS-prod1"
    )


def test_user_credentials_decode_to_a_kubeconfig(arm: FakeArm) -> None:
    arm.add_cluster(SUB, "rg-prod", "aks-aad", aad=True)
    arm.add_cluster(SUB, "rg-prod", "aks-local")
    given = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    arm.add_cluster(SUB, "rg-prod", "aks-given", kubeconfig=given)

    with arm_client(arm) as client:
        aad = client.managed_clusters.list_cluster_user_credentials(
            "rg-prod", "aks-aad", format="exec"
        )
        local = client.managed_clusters.list_cluster_user_credentials("rg-prod", "aks-local")
        fixed = client.managed_clusters.list_cluster_user_credentials("RG-PROD", "aks-given")

    assert aad.kubeconfigs is not None and aad.kubeconfigs[0].name == "clusterUser"
    assert aad.kubeconfigs[0].value is not None
    aad_config = json.loads(aad.kubeconfigs[0].value)
    exec_plugin = aad_config["users"][0]["user"]["exec"]
    assert exec_plugin["command"] == "kubelogin"
    assert exec_plugin["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_plugin["args"][exec_plugin["args"].index("--server-id") + 1] == AKS_AAD_SERVER_ID
    assert aad_config["clusters"][0]["cluster"]["server"].endswith(".azmk8s.io:443")

    assert local.kubeconfigs is not None and local.kubeconfigs[0].value is not None
    assert json.loads(local.kubeconfigs[0].value)["users"][0]["user"]["token"]
    assert fixed.kubeconfigs is not None and fixed.kubeconfigs[0].value is not None
    assert json.loads(fixed.kubeconfigs[0].value) == given

    credential_calls = [r for r in arm.requests if r.path.endswith("/listClusterUserCredential")]
    assert [r.method for r in credential_calls] == ["POST", "POST", "POST"]
    assert [c.format for c in arm.credential_requests] == ["exec", None, None]
    assert credential_calls[0].query == {"api-version": DEFAULT_API_VERSION, "format": "exec"}


def test_user_credential_value_is_base64_on_the_wire(arm: FakeArm) -> None:
    arm.add_cluster(SUB, "rg-prod", "aks-prod1")
    url = (
        f"{arm.url}/subscriptions/{SUB}/resourceGroups/rg-prod/providers/"
        "Microsoft.ContainerService/managedClusters/aks-prod1/listClusterUserCredential"
        f"?api-version={DEFAULT_API_VERSION}"
    )
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Authorization": f"Bearer {arm.token}"}
    )
    context = ssl.create_default_context(cafile=str(arm.ca_file))
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        body = json.load(response)
    config = json.loads(base64.b64decode(body["kubeconfigs"][0]["value"]))
    assert config["kind"] == "Config"


def test_wrong_token_is_rejected_with_401(arm: FakeArm) -> None:
    arm.add_cluster(SUB, "rg-prod", "aks-prod1")

    with (
        arm_client(arm, StaticTokenCredential("not-the-token")) as client,
        pytest.raises(ClientAuthenticationError) as failure,
    ):
        client.managed_clusters.get("rg-prod", "aks-prod1")

    assert failure.value.status_code == 401
    assert failure.value.error is not None
    assert failure.value.error.code == "InvalidAuthenticationToken"
    assert [request.authorized for request in arm.requests] == [False]


def test_429_with_retry_after_is_retried_by_the_sdk(arm: FakeArm) -> None:
    arm.add_cluster(SUB, "rg-prod", "aks-prod1")
    arm.inject(429, retry_after=1)

    started = time.monotonic()
    with arm_client(arm, retry_total=2) as client:
        cluster = client.managed_clusters.get("rg-prod", "aks-prod1")
    elapsed = time.monotonic() - started

    assert cluster.name == "aks-prod1"
    assert len(arm.requests) == 2
    assert arm.pending_faults == []
    assert elapsed >= 0.9  # the SDK waited for Retry-After


def test_500_surfaces_when_retries_are_off(arm: FakeArm) -> None:
    arm.add_cluster(SUB, "rg-prod", "aks-prod1")
    arm.inject(500, count=2, path_contains="/managedClusters/aks-prod1")

    with arm_client(arm, retry_total=0) as client:
        listed = [cluster.name for cluster in client.managed_clusters.list()]  # not matched
        with pytest.raises(HttpResponseError) as failure:
            client.managed_clusters.get("rg-prod", "aks-prod1")

    assert listed == ["aks-prod1"]
    assert failure.value.status_code == 500
    assert failure.value.error is not None
    assert failure.value.error.code == "InternalServerError"
    assert arm.pending_faults == [(500, 1)]


# --------------------------------------------------------------------------- Key Vault


def test_secret_is_read_through_the_challenge(keyvault: FakeKeyVault) -> None:
    first = keyvault.set_secret("panorama-api-key", "first-value")
    keyvault.set_secret("panorama-api-key", "s3cr3t-value")
    credential = StaticTokenCredential(keyvault.token)

    with kv_client(keyvault, credential) as client:
        latest = client.get_secret("Panorama-API-Key")
        older = client.get_secret("panorama-api-key", first)

    assert latest.value == "s3cr3t-value"
    assert older.value == "first-value"
    assert older.properties.version == first
    assert latest.id is not None and latest.id.startswith(f"{keyvault.url}/secrets/")
    assert latest.properties.enabled is True
    challenge, answered = keyvault.requests[:2]
    assert not challenge.authorized and answered.authorized
    assert answered.path == "/secrets/Panorama-API-Key/"
    assert answered.query["api-version"]
    assert credential.calls[0][0] == ("https://vault.azure.net/.default",)
    assert credential.calls[0][1].get("tenant_id") == keyvault.tenant_id
    assert "s3cr3t-value" not in repr(keyvault) + repr(keyvault.requests)


def test_unknown_secret_is_404(keyvault: FakeKeyVault) -> None:
    with (
        kv_client(keyvault, StaticTokenCredential(keyvault.token)) as client,
        pytest.raises(ResourceNotFoundError) as missing,
    ):
        client.get_secret("nope")

    assert missing.value.error is not None
    assert missing.value.error.code == "SecretNotFound"


def test_wrong_vault_token_is_401(keyvault: FakeKeyVault) -> None:
    keyvault.set_secret("panorama-api-key", "value")

    with (
        kv_client(keyvault, StaticTokenCredential("wrong")) as client,
        pytest.raises(ClientAuthenticationError),
    ):
        client.get_secret("panorama-api-key")


# --------------------------------------------------------------------------- events


def _load(name: str) -> dict[str, Any]:
    data = json.loads((EVENTS / name).read_text())
    assert isinstance(data, dict), f"{name} must hold one event object"
    return data


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.eventgrid.json")))
def test_event_grid_samples_parse(name: str) -> None:
    raw = _load(name)
    event = EventGridEvent.from_dict(raw)
    assert event.event_type == raw["eventType"]
    assert event.subject == raw["subject"]
    assert event.id == raw["id"]
    assert event.data_version and event.metadata_version == "1"
    assert event.topic == raw["topic"]
    if event.event_type.startswith("Microsoft.Resources."):
        data = raw["data"]
        assert data["resourceUri"] == raw["subject"]
        assert data["authorization"]["action"] == data["operationName"]
        assert data["status"] == "Succeeded"
        assert raw["topic"] == f"/subscriptions/{data['subscriptionId']}"


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.cloudevent.json")))
def test_cloud_event_samples_parse(name: str) -> None:
    raw = _load(name)
    event: CloudEvent[Any] = CloudEvent.from_dict(raw)
    assert event.specversion == "1.0"
    assert event.type == raw["type"]
    assert event.source == raw["source"]
    assert event.subject == raw["subject"]
    assert isinstance(event.data, dict)


def test_event_readme_lists_every_sample() -> None:
    readme = (EVENTS / "README.md").read_text()
    samples = sorted(p.name for p in EVENTS.glob("*.json"))
    assert len(samples) == 11
    for name in samples:
        assert f"`{name}`" in readme
