"""Discovery and cluster access with the real Azure SDK and kubernetes clients, against
the fake Resource Manager, Key Vault and Kubernetes API servers."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.keyvault.secrets._shared import http_challenge_cache

from aksfw_core.__main__ import main
from aksfw_core.azure.access import ClusterAccess, EntraTokenHook
from aksfw_core.azure.discovery import ClusterDiscovery
from aksfw_core.azure.identity import AKS_SERVER_SCOPE, StaticToken
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.config import parse_settings
from aksfw_core.errors import AuthError, InputError, NonRetryable
from aksfw_core.limits import Limits
from aksfw_core.rules.services import parse_service_items
from aksfw_local.fakes.arm import USER_CREDENTIAL
from aksfw_local.fakes.keyvault import FakeKeyVault
from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.stack import EVENTS
from tests.support.arm import ARM_TOKEN

SUB1 = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
SUB3 = "33333333-3333-3333-3333-333333333333"


def cluster_id(sub, group, name):
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"


class ScopedTokens:
    """A TokenCredential giving one token per scope and recording what was asked."""

    def __init__(self, tokens: dict[str, str], lifetime_s: int = 3600) -> None:
        self.tokens, self.lifetime_s, self.asked = tokens, lifetime_s, []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.asked.append(scopes)
        token = self.tokens.get(scopes[0], ARM_TOKEN)
        return AccessToken(token, int(time.time()) + self.lifetime_s)


def settings(arm_url, **document):
    return parse_settings(document, arm_endpoint=arm_url)


def seed_two_subscriptions(arm):
    arm.add_cluster(SUB1, "rg-prod", "aks-prod1", tags={"aksfw": "enabled"})
    arm.add_cluster(SUB1, "rg-prod", "aks-untagged")
    arm.add_cluster(SUB1, "rg-dev", "aks-dev", tags={"aksfw": "disabled"})
    arm.add_cluster(
        SUB2, "rg-edge", "aks-edge", tags={"AKSFW": "Enabled"}, node_resource_group="nodes-edge"
    )
    arm.add_cluster(SUB3, "rg-x", "aks-prod1", node_resource_group="MC_x")


def test_discovery_by_tag_across_subscriptions_and_by_explicit_id(arm):
    seed_two_subscriptions(arm)
    explicit = cluster_id(SUB3, "RG-X", "AKS-PROD1")  # another aks-prod1: needs an alias
    config = settings(
        arm.url,
        subscriptions=[SUB1, SUB2],
        discovery={"tag": "aksfw=enabled"},
        clusters=[
            {"id": explicit, "alias": "prod1-x", "selectors": [{"name": "web", "match": "app=web"}]}
        ],
    )
    inventory = ClusterDiscovery(config, StaticToken(ARM_TOKEN)).inventory()
    found = {c.name if c.tag_name == c.name else c.tag_name: c for c in inventory.clusters}
    assert set(found) == {"aks-prod1", "aks-edge", "prod1-x"}
    assert found["aks-prod1"].node_resource_group == "MC_rg-prod_aks-prod1_westeurope"
    assert found["aks-edge"].node_resource_group == "nodes-edge"
    assert [s.name for s in found["prod1-x"].selectors] == ["web"]
    lists = [r for r in arm.requests if r.path.endswith("/managedClusters") and r.method == "GET"]
    assert len(lists) == 3  # sub1 in two pages of 2, sub2 in one


def test_same_name_without_alias_is_a_configuration_error(arm):
    seed_two_subscriptions(arm)
    config = settings(arm.url, subscriptions=[SUB1], discovery={"tag": "aksfw"},
                      clusters=[{"id": cluster_id(SUB3, "rg-x", "aks-prod1")}])  # fmt: skip
    with pytest.raises(InputError, match="give one an alias"):
        ClusterDiscovery(config, StaticToken(ARM_TOKEN)).inventory()


def test_inventory_is_cached_and_refreshed_once_for_an_unknown_cluster(arm):
    seed_two_subscriptions(arm)
    now = [0.0]
    config = settings(arm.url, subscriptions=[SUB1], discovery={"tag": "aksfw"})
    discovery = ClusterDiscovery(config, StaticToken(ARM_TOKEN), clock=lambda: now[0])
    discovery.inventory()
    arm.reset_requests()
    discovery.inventory()
    assert arm.requests == []
    unknown = cluster_id(SUB1, "rg-prod", "aks-untagged")
    for _ in range(5):  # an event storm naming a cluster aksfw does not monitor
        discovery.inventory_knowing(unknown)
    assert len(arm.requests) == 2  # one refresh (two pages)
    now[0] += 61
    discovery.inventory()
    assert len(arm.requests) == 4


def test_an_event_storm_of_distinct_unknown_clusters_costs_one_early_refresh(arm):
    seed_two_subscriptions(arm)
    now = [0.0]
    config = settings(arm.url, subscriptions=[SUB1], discovery={"tag": "aksfw"})
    discovery = ClusterDiscovery(config, StaticToken(ARM_TOKEN), clock=lambda: now[0])
    discovery.inventory()
    arm.reset_requests()
    for index in range(20):  # 20 clusters nobody monitors, each named once
        discovery.inventory_knowing(cluster_id(SUB1, "rg-x", f"aks-unknown-{index}"))
    assert len(arm.requests) == 2  # one early refresh (two pages) for the whole lifetime
    now[0] += 30  # the early refresh does not re-arm itself while the inventory lives
    discovery.inventory_knowing(cluster_id(SUB1, "rg-x", "aks-unknown-20"))
    assert len(arm.requests) == 2
    now[0] += 61  # a new lifetime: one read, and one early refresh again
    discovery.inventory_knowing(cluster_id(SUB1, "rg-x", "aks-unknown-21"))
    discovery.inventory_knowing(cluster_id(SUB1, "rg-x", "aks-unknown-22"))
    assert len(arm.requests) == 6


def test_a_cluster_list_past_its_cap_stops_with_a_clear_error(arm):
    seed_two_subscriptions(arm)  # sub1 lists three clusters, in pages of two
    config = settings(
        arm.url, subscriptions=[SUB1], discovery={"tag": "aksfw"}, limits={"armMaxClusters": 2}
    )
    with pytest.raises(NonRetryable, match="more than 2 clusters"):
        ClusterDiscovery(config, StaticToken(ARM_TOKEN)).inventory()


def test_concurrent_invocations_share_one_inventory_read(arm):
    seed_two_subscriptions(arm)
    now = [0.0]
    config = settings(arm.url, subscriptions=[SUB1], discovery={"tag": "aksfw"})
    discovery = ClusterDiscovery(config, StaticToken(ARM_TOKEN), clock=lambda: now[0])
    discovery.inventory()
    arm.reset_requests()
    now[0] += 61  # expired: every invocation below finds it so at the same moment
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda _: discovery.inventory(), range(16)))
    assert len(arm.requests) == 2  # one read (two pages), not one per invocation
    assert all(inventory == found[0] for inventory in found)


def test_new_cluster_is_found_by_the_early_refresh(arm):
    arm.add_cluster(SUB1, "rg-prod", "aks-prod1", tags={"aksfw": ""})
    discovery = ClusterDiscovery(
        settings(arm.url, subscriptions=[SUB1], discovery={"tag": "aksfw"}), StaticToken(ARM_TOKEN)
    )
    assert len(discovery.inventory().clusters) == 1
    arm.add_cluster(SUB1, "rg-new", "aks-new", tags={"aksfw": "yes"})
    new_id = cluster_id(SUB1, "rg-new", "aks-new")
    assert discovery.inventory_knowing(new_id).find(new_id) is not None


def test_throttling_is_retried_honouring_retry_after(arm):
    seed_two_subscriptions(arm)
    arm.inject(429, retry_after=1)
    config = settings(arm.url, subscriptions=[SUB2], discovery={"tag": "aksfw"})
    started = time.monotonic()
    inventory = ClusterDiscovery(config, StaticToken(ARM_TOKEN)).inventory()
    assert [c.name for c in inventory.clusters] == ["aks-edge"]
    assert time.monotonic() - started >= 1.0


def test_a_failed_refresh_keeps_the_previous_inventory(arm):
    seed_two_subscriptions(arm)
    now = [0.0]
    config = settings(arm.url, subscriptions=[SUB2], discovery={"tag": "aksfw"})
    discovery = ClusterDiscovery(config, StaticToken(ARM_TOKEN), clock=lambda: now[0])
    before = discovery.inventory()
    arm.inject(403, count=10)
    with pytest.raises(AuthError, match="403"):
        discovery.refresh()
    assert discovery.inventory() == before


def test_wrong_token_is_an_auth_error(arm):
    seed_two_subscriptions(arm)
    config = settings(arm.url, subscriptions=[SUB1], discovery={"tag": "aksfw"})
    with pytest.raises(AuthError):
        ClusterDiscovery(config, StaticToken("stale")).inventory()


def test_explicit_cluster_that_is_gone_is_left_out(arm, caplog):
    config = settings(arm.url, clusters=[{"id": cluster_id(SUB1, "rg", "aks-gone")}])
    assert ClusterDiscovery(config, StaticToken(ARM_TOKEN)).inventory().clusters == ()
    assert "discovery.cluster_missing" in caplog.text


KUBELOGIN = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin",
                      "args": ["get-token", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]}}  # fmt: skip


def listed_names(access, cluster):
    source = access.services(cluster)
    try:
        return sorted(s.name for s in parse_service_items(source.list_items()).services)
    finally:
        source.close()


def test_entra_cluster_gets_a_token_for_the_aks_server_app(arm):
    with FakeKubeApi(token="entra-token-for-aks") as kube:
        kube.services = [service("web", ips=["20.0.0.1"]), service("db", type="ClusterIP")]
        arm.add_cluster(
            SUB1, "rg", "aks-entra", aad=True, kubeconfig=kube.kubeconfig(user=KUBELOGIN)
        )
        credential = ScopedTokens({AKS_SERVER_SCOPE: "entra-token-for-aks"})
        access = ClusterAccess(settings(arm.url), credential)
        cluster = MonitoredCluster(
            cluster_id(SUB1, "rg", "aks-entra"), "aks-entra", "aks-entra", "MC"
        )
        assert listed_names(access, cluster) == ["web"]
        assert (AKS_SERVER_SCOPE,) in credential.asked
        assert all(r.had_valid_token for r in kube.requests)


def test_local_account_cluster_uses_its_kubeconfig_as_given(arm):
    with FakeKubeApi(token="local-account-token") as kube:
        kube.services = [service("api", ips=["20.0.0.2"])]
        arm.add_cluster(
            SUB1,
            "rg",
            "aks-local",
            kubeconfig=kube.kubeconfig(),
        )
        credential = ScopedTokens({})
        access = ClusterAccess(settings(arm.url), credential)
        cluster = MonitoredCluster(
            cluster_id(SUB1, "rg", "aks-local"), "aks-local", "aks-local", "MC"
        )
        assert listed_names(access, cluster) == ["api"]
        assert (AKS_SERVER_SCOPE,) not in credential.asked


def test_a_cluster_without_the_credential_role_says_which_role_and_how_to_grant_it(arm):
    arm.add_cluster(SUB1, "rg", "aks-new", kubeconfig={})
    arm.deny(USER_CREDENTIAL)
    access = ClusterAccess(settings(arm.url), ScopedTokens({}))
    cluster = MonitoredCluster(cluster_id(SUB1, "rg", "aks-new"), "aks-new", "aks-new", "MC")
    with pytest.raises(AuthError, match=r"Cluster User Role.*azd provision") as refused:
        access.services(cluster).list_items()
    assert refused.value.status == 403


def test_token_credential_reads_the_service_account_token_from_key_vault(arm, trust):
    with FakeKeyVault(token=ARM_TOKEN) as vault, FakeKubeApi(token="sa-token-123") as kube:
        trust(arm, vault)
        http_challenge_cache.remove_challenge_for_url(vault.url)
        vault.set_secret("aks-edge-token", "sa-token-123\n")
        kube.services = [service("edge", ips=["20.0.0.3"])]
        edge = cluster_id(SUB2, "rg-edge", "aks-edge")
        config = settings(
            arm.url,
            keyVault=vault.url,
            clusters=[
                {
                    "id": edge,
                    "credential": {
                        "kind": "token",
                        "server": kube.url,
                        "ca": kube.ca_pem.decode(),
                        "secret": "aks-edge-token",
                    },
                }
            ],
        )
        access = ClusterAccess(config, StaticToken(ARM_TOKEN))
        # As discovery builds it: the token credential carried from the configuration.
        cluster = MonitoredCluster(
            edge, "aks-edge", "aks-edge", "MC", credential="token",
            token=config.clusters[0].credential,
        )  # fmt: skip
        assert listed_names(access, cluster) == ["edge"]
        missing = settings(
            arm.url,
            keyVault=vault.url,
            clusters=[
                {"id": edge, "credential": {"kind": "token", "server": kube.url, "secret": "nope"}}
            ],
        )
        gone = replace(cluster, token=missing.clusters[0].credential)
        with pytest.raises(NonRetryable, match="'nope' not found"):
            ClusterAccess(missing, StaticToken(ARM_TOKEN)).services(gone)
        http_challenge_cache.remove_challenge_for_url(vault.url)


def test_entra_token_is_refreshed_before_it_expires():
    now = [1_000_000.0]
    credential = ScopedTokens({AKS_SERVER_SCOPE: "t"}, lifetime_s=3600)
    hook = EntraTokenHook(credential, clock=lambda: now[0])

    class Configuration:
        def __init__(self):
            self.api_key = {}

    configuration = Configuration()
    hook(configuration)
    hook(configuration)
    assert len(credential.asked) == 1 and configuration.api_key["BearerToken"] == "Bearer t"
    now[0] = time.time() + 3600 - Limits().credential_refresh_margin_s + 1
    hook(configuration)
    assert len(credential.asked) == 2


def test_clusters_and_resolve_event_commands(arm, monkeypatch, capsys, caplog):
    arm.add_cluster(SUB1, "rg-prod", "aks-prod1", tags={"aksfw": "enabled"})
    monkeypatch.setenv(
        "AKSFW_CONFIG", json.dumps({"subscriptions": [SUB1], "discovery": {"tag": "aksfw"}})
    )
    monkeypatch.setenv("AKSFW_ARM_ENDPOINT", arm.url)
    monkeypatch.setenv("AKSFW_DEV_TOKEN", ARM_TOKEN)
    assert main(["clusters"]) == 0
    inventory = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in inventory["clusters"]] == ["aks-prod1"]
    assert "identity.dev_token" in caplog.text  # the development credential is announced
    assert main(["resolve-event", str(EVENTS / "lb-write.eventgrid.json")]) == 0
    (change,) = json.loads(capsys.readouterr().out)["clusters"]
    assert change["action"] == "resync" and change["id"].endswith("/aks-prod1")


def test_kubeconfig_is_reused_until_forgotten(arm):
    with FakeKubeApi(token="local-account-token") as kube:
        arm.add_cluster(
            SUB1,
            "rg",
            "aks-local",
            kubeconfig=kube.kubeconfig(),
        )
        access = ClusterAccess(settings(arm.url), ScopedTokens({}))
        cluster = MonitoredCluster(
            cluster_id(SUB1, "rg", "aks-local"), "aks-local", "aks-local", "MC"
        )
        for _ in range(3):
            listed_names(access, cluster)
        assert len(arm.credential_requests) == 1
        access.forget(cluster.id.upper())
        listed_names(access, cluster)
        assert len(arm.credential_requests) == 2
