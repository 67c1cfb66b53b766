"""The watcher's deployment, checked offline: the Kubernetes manifests in deploy/watcher/
(least RBAC, a locked-down pod using workload identity), their kustomization, the image
build, and the Bicep that gives each cluster an identity that may only publish to the
watcher's Event Grid topic (infra/app/watcher*.bicep). No cluster and no Azure needed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from tests.support import REPO_ROOT
from tests.support.ignore_file import IgnoreFile

WATCHER = REPO_ROOT / "deploy" / "watcher"
APP = REPO_ROOT / "infra" / "app"
MAIN = REPO_ROOT / "infra" / "main.bicep"
EVENTGRID_DATA_SENDER = "d5a91429-5739-47e2-a06b-3470a27159e7"
SUBJECT = "system:serviceaccount:kube-system:aksfw-watch"


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((WATCHER / "kustomization.yaml").read_text())


def manifests() -> dict[str, dict[str, Any]]:
    """kind → the one document of that kind among the kustomization's resources."""
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization()["resources"]:
        for document in yaml.safe_load_all((WATCHER / name).read_text()):
            assert document["kind"] not in found, f"{name}: a second {document['kind']}"
            found[document["kind"]] = document
    return found


def bicep(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def resources(path: Path, type_: str) -> list[dict[str, Any]]:
    """The unwrapped bodies of the (non-existing) resources of one type."""
    found = []
    for resource in bicep(path).get("resources", {}).values():
        if resource["type"] == type_ and not resource["existing"]:
            config = resource["config"]
            while "config" in config and ("condition" in config or "loop_type" in config):
                config = config["config"]
            found.append(config)
    return found


# --- the manifests ------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_they_all_parse():
    listed = set(kustomization()["resources"])
    on_disk = {path.name for path in WATCHER.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    kinds = set(manifests())
    assert kinds == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"}
    assert kustomization()["namespace"] == "kube-system"


def test_cluster_role_only_lists_and_watches_services():
    role = manifests()["ClusterRole"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]}
    ]
    assert "aggregationRule" not in role


def test_the_binding_gives_that_role_to_the_watcher_service_account_only():
    binding = manifests()["ClusterRoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": manifests()["ClusterRole"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "aksfw-watch", "namespace": "kube-system"}
    ]


def test_service_account_is_the_one_the_bicep_federates():
    account = manifests()["ServiceAccount"]["metadata"]
    assert (account["namespace"], account["name"]) == ("kube-system", "aksfw-watch")
    assert f"system:serviceaccount:{account['namespace']}:{account['name']}" == SUBJECT
    assert "azure.workload.identity/client-id" in account["annotations"]


def test_deployment_is_one_replica_replaced_not_rolled():
    spec = manifests()["Deployment"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_pod_uses_the_service_account_with_workload_identity():
    template = manifests()["Deployment"]["spec"]["template"]
    assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    pod = template["spec"]
    assert pod["serviceAccountName"] == "aksfw-watch"
    assert pod["automountServiceAccountToken"] is True


def test_pod_runs_non_root_on_a_read_only_root_without_capabilities():
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "ports" not in container
    assert not context.get("privileged", False)


def test_container_has_requests_and_limits():
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind


def test_container_runs_aksfw_watch_with_the_cluster_and_topic_from_watcher_env():
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "aksfw:latest"
    assert container["args"] == ["watch"]
    generator = {g["name"]: g for g in kustomization()["configMapGenerator"]}["aksfw-watch"]
    (env_file,) = generator["envs"]
    keys = {
        line.split("=", 1)[0]
        for line in (WATCHER / env_file).read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert keys == {
        "AKSFW_WATCH_CLUSTER_ID",
        "AKSFW_EVENTGRID_TOPIC_ENDPOINT",
        "AKSFW_WATCH_CLIENT_ID",
    }
    env = {item["name"]: item for item in container["env"]}
    for name in ("AKSFW_WATCH_CLUSTER_ID", "AKSFW_EVENTGRID_TOPIC_ENDPOINT"):
        assert env[name]["valueFrom"]["configMapKeyRef"] == {"name": "aksfw-watch", "key": name}
    # The client ID reaches the service account annotation, where the webhook reads it.
    (replacement,) = kustomization()["replacements"]
    assert replacement["source"]["fieldPath"] == "data.AKSFW_WATCH_CLIENT_ID"
    (target,) = replacement["targets"]
    assert target["select"] == {"kind": "ServiceAccount", "name": "aksfw-watch"}
    assert target["fieldPaths"] == ["metadata.annotations.[azure.workload.identity/client-id]"]


@pytest.mark.subprocess
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_renders_the_kustomization_with_the_values_of_watcher_env():
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(WATCHER)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(rendered)}
    config_map = documents["ConfigMap"]
    annotations = documents["ServiceAccount"]["metadata"]["annotations"]
    assert (
        annotations["azure.workload.identity/client-id"]
        == config_map["data"]["AKSFW_WATCH_CLIENT_ID"]
    )
    (container,) = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    references = {
        item["valueFrom"]["configMapKeyRef"]["name"]
        for item in container["env"]
        if "valueFrom" in item
    }
    assert references == {config_map["metadata"]["name"]}  # the generated (hashed) name
    assert {
        d["metadata"].get("namespace") for k, d in documents.items() if k.startswith("Cluster")
    } == {None}


# --- the image ------------------------------------------------------------------------------


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (WATCHER / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_image_is_a_slim_official_python_running_aksfw_as_a_non_root_user():
    lines = dockerfile()
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases and all(re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", b) for b in bases)
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] == "10001"
    assert lines[-2:] == ['ENTRYPOINT ["aksfw"]', 'CMD ["watch"]']


def test_image_carries_no_secret_and_only_the_package():
    text = (WATCHER / "Dockerfile").read_text()
    assert not re.search(r"(?i)\b(key|secret|token|password)\s*=", text)
    copied = [
        source
        for line in dockerfile()
        if line.upper().startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    assert sorted(copied) == ["README.md", "aksfw_core", "pyproject.toml"]
    ignore = (WATCHER / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[1] == "*"  # everything else stays out of the build context


def test_function_app_package_leaves_deploy_out():
    funcignore = IgnoreFile.parse((REPO_ROOT / ".funcignore").read_text())
    assert funcignore.ignores("deploy/watcher/Dockerfile", is_dir=False)


# --- the Bicep -----------------------------------------------------------------------------


def test_topic_takes_cloud_events_and_entra_id_only():
    (topic,) = resources(APP / "watcher.bicep", "Microsoft.EventGrid/topics")
    properties = topic["properties"]
    assert properties["disableLocalAuth"] is True
    assert properties["inputSchema"] == "CloudEventSchemaV1_0"
    assert "isPrivate" in json.dumps(properties["publicNetworkAccess"])


def test_topic_subscription_delivers_the_watcher_events_to_resource_event():
    document = bicep(APP / "watcher.bicep")
    (subscription,) = resources(
        APP / "watcher.bicep", "Microsoft.EventGrid/topics/eventSubscriptions"
    )
    properties = subscription["properties"]
    assert properties["eventDeliverySchema"] == "CloudEventSchemaV1_0"
    assert properties["destination"]["endpointType"] == "AzureFunction"
    assert properties["retryPolicy"] == {
        "maxDeliveryAttempts": 30,
        "eventTimeToLiveInMinutes": 1440,
    }
    assert properties["deadLetterWithResourceIdentity"]["identity"] == {"type": "SystemAssigned"}
    assert document["variables"]["includedEventTypes"]["value"] == [
        "Aksfw.Kubernetes.ServicesChanged"
    ]
    wrapped = document["resources"]["watcherEvents"]["config"]
    assert wrapped["condition"] == "deployEventSubscription"
    params = bicep(MAIN)["modules"]["watcher"]["config"]["config"]["params"]
    assert params["deployEventSubscription"] == "deployEventSubscriptions"
    assert params["functionId"] == "${api.outputs.id}/functions/resource_event"


def test_each_cluster_identity_may_only_send_to_the_watcher_topic():
    path = APP / "watcher-identity.bicep"
    (assignment,) = resources(path, "Microsoft.Authorization/roleAssignments")
    assert assignment["scope"] == "topic"
    role = json.dumps(assignment["properties"]["roleDefinitionId"])
    assert "eventGridDataSender" in role
    roles = json.loads((APP / "roles.json").read_text())
    assert roles["eventGridDataSender"] == EVENTGRID_DATA_SENDER
    (topic,) = [
        r for r in bicep(path)["resources"].values() if r["type"] == "Microsoft.EventGrid/topics"
    ]
    assert topic["existing"] is True
    # The identity gets no other role anywhere.
    for other in APP.glob("*.bicep"):
        if other != path:
            assert "eventGridDataSender" not in other.read_text(), other.name


def test_federated_credential_trusts_the_cluster_issuer_for_the_watcher_account_only():
    path = APP / "watcher-identity.bicep"
    (credential,) = resources(
        path, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    )
    properties = credential["properties"]
    assert properties["subject"] == "serviceAccountSubject"
    assert bicep(path)["variables"]["serviceAccountSubject"]["value"] == SUBJECT
    assert properties["audiences"] == ["api://AzureADTokenExchange"]
    assert "oidcIssuerProfile" in json.dumps(properties["issuer"])
    assert "issuerURL" in json.dumps(properties["issuer"])


def test_every_explicit_and_discovered_cluster_gets_a_watcher_identity_when_enabled():
    document = bicep(MAIN)
    assert document["parameters"]["watcherEnabled"]["default"] is False
    watched = json.dumps(document["variables"]["watchedClusterIds"]["value"])
    for name in ("watcherEnabled", "explicitClusterIds", "discoveredClusterIdsLower"):
        assert name in watched
    module = document["modules"]["watcherIdentities"]
    assert "watchedClusterIds" in json.dumps(module["config"])
    parameters = json.loads((REPO_ROOT / "infra" / "main.parameters.json").read_text())[
        "parameters"
    ]
    assert parameters["watcherEnabled"] == {"value": "${AKSFW_WATCHER_ENABLED=false}"}


def test_outputs_name_the_endpoint_and_client_ids_never_a_key():
    outputs = bicep(MAIN)["outputs"]
    assert "AKSFW_WATCHER_TOPIC_ENDPOINT" in outputs
    assert "AKSFW_WATCHER_IDENTITIES" in outputs
    for path in sorted((REPO_ROOT / "infra").rglob("*.bicep")):
        text = path.read_text()
        assert not re.search(r"listKeys|\.key1|\.key2|accessKey", text), path.name
