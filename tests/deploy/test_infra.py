"""The azd deployment (azure.yaml, infra/), checked offline: the Bicep parses, its modules
exist, the app settings match what the code reads, the Event Grid filter matches what
aksfw_core.azure.events resolves, the configuration document it builds is one the parser takes,
roles are the least the README asks for, and no secret is written in plain text.

Bicep is read with pycep (a Python Bicep parser); `make checkov` runs the security checks.
"""

from __future__ import annotations

import ast
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pycep import BicepParser

from aksfw_core import kube_egress
from aksfw_core.azure import events
from aksfw_core.azure.inventory import Inventory, MonitoredCluster
from aksfw_core.config import load_settings, parse_settings
from aksfw_core.errors import InputError
from aksfw_core.pipeline.storage import StorageNames
from tests.support import REPO_ROOT
from tests.support.infra_settings import (
    FORBIDDEN,
    LOCAL_ONLY,
    READ_BY_OTHERS,
    app_settings,
    code_environment_names,
    environment_names_in,
    settings_problems,
)
from tests.support.telemetry import METRICS, kql_problems

INFRA = REPO_ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
MAIN = INFRA / "main.bicep"
APP = INFRA / "app"

SUB = "11111111-1111-1111-1111-111111111111"
VAULT_URL = "https://kv-test.vault.azure.net"

# Azure built-in role definition IDs (Microsoft Learn, "Azure built-in roles"): the only
# roles the deployment grants.
BUILT_IN_ROLES = {
    "aksClusterUser": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
    "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "eventGridDataSender": "d5a91429-5739-47e2-a06b-3470a27159e7",
}


@functools.cache
def bicep(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def body(resource_or_module: Mapping[str, Any]) -> dict[str, Any]:
    """The declaration's own properties, past `if (…)` and `[for …]` wrappers."""
    config = resource_or_module["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def condition(resource_or_module: Mapping[str, Any]) -> Any:
    return resource_or_module["config"].get("condition")


def resources_of(path: Path, type_: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in bicep(path).get("resources", {}).items()
        if resource["type"] == type_ and not resource["existing"]
    }


def variable(path: Path, name: str) -> Any:
    return bicep(path)["variables"][name]["value"]


def unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text


# --- the files ------------------------------------------------------------------------


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path):
    assert bicep(path)


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_module_is_a_local_file_that_exists(path):
    for name, module in bicep(path).get("modules", {}).items():
        assert module["type"] == "local", f"{path.name}: module {name} is not a local file"
        target = path.parent / module["detail"]["path"]
        assert target.is_file(), f"{path.name}: module {name}: {target} is missing"


def test_every_module_file_is_used():
    used = {
        (path.parent / module["detail"]["path"]).resolve()
        for path in BICEP_FILES
        for module in bicep(path).get("modules", {}).values()
    }
    unused = [p for p in BICEP_FILES if p != MAIN and p.resolve() not in used]
    assert not unused


def test_main_is_deployed_at_subscription_scope_into_the_environments_group():
    document = bicep(MAIN)
    assert document["globals"]["scope"]["value"] == "subscription"
    (group,) = resources_of(MAIN, "Microsoft.Resources/resourceGroups").values()
    assert body(group)["name"] == "${abbrs.resourceGroups}${environmentName}"
    assert json.loads((INFRA / "abbreviations.json").read_text())["resourceGroups"] == "rg-"
    assert body(group)["tags"] == "tags"
    assert variable(MAIN, "tags") == {"'azd-env-name'": "environmentName"}


def test_abbreviations_are_all_used():
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text())
    text = MAIN.read_text()
    assert [key for key in abbreviations if f"abbrs.{key}" not in text] == []


def test_every_parameter_is_described():
    for path in BICEP_FILES:
        for name, parameter in bicep(path).get("parameters", {}).items():
            kinds = {decorator["type"] for decorator in parameter["decorators"]}
            assert "description" in kinds, f"{path.name}: parameter {name}"


def test_main_outputs_what_azd_and_the_readme_use():
    outputs = bicep(MAIN)["outputs"]
    for name in (
        "AZURE_FUNCTION_APP_NAME",
        "RESYNC_URL",
        "STATUS_URL",
        "AZURE_KEY_VAULT_NAME",
        "RESOURCE_GROUP",
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
    ):
        assert name in outputs
    assert outputs["RESYNC_URL"]["value"] == "https://${api.outputs.defaultHostName}/api/resync"
    assert outputs["STATUS_URL"]["value"] == "https://${api.outputs.defaultHostName}/api/status"


def test_azure_yaml_deploys_this_folder_as_a_python_function_app():
    project = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())
    assert project["services"] == {
        "api": {
            "project": ".",
            "language": "python",
            "host": "function",
            "resourceGroup": "rg-${AZURE_ENV_NAME}",
        }
    }
    for event in ("preprovision", "postdeploy"):
        hook = project["hooks"][event]
        assert (REPO_ROOT / hook["posix"]["run"]).is_file()
        assert (REPO_ROOT / hook["windows"]["run"]).is_file()
        assert hook["posix"]["continueOnError"] is False


def test_azd_finds_exactly_one_resource_group_per_environment():
    # azd looks for the service's resourceGroup, then AZURE_RESOURCE_GROUP, then the
    # azd-env-name tag: all three name rg-<env>, and no other group carries the tag.
    abbreviation = json.loads((INFRA / "abbreviations.json").read_text())["resourceGroups"]
    project = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())
    assert project["services"]["api"]["resourceGroup"] == f"{abbreviation}${{AZURE_ENV_NAME}}"
    assert bicep(MAIN)["outputs"]["AZURE_RESOURCE_GROUP"]["value"] == {
        "operator": {
            "type": "property_accessor",
            "operands": {"operand_1": "rg", "operand_2": "name"},
        }
    }
    assert bicep(MAIN)["parameters"]["environmentName"]  # ${AZURE_ENV_NAME}
    params = body(bicep(MAIN)["modules"]["monitoredSubscriptions"])["params"]
    assert params["tags"] == "eventsTags"
    assert "'azd-env-name'" not in variable(MAIN, "eventsTags")
    for path in BICEP_FILES:
        for name, group in resources_of(path, "Microsoft.Resources/resourceGroups").items():
            if path != MAIN:
                assert body(group)["tags"] == "tags", f"{path.name}: {name}"


# --- parameters -----------------------------------------------------------------------


def main_parameters() -> dict[str, Any]:
    return json.loads((INFRA / "main.parameters.json").read_text())["parameters"]


def test_parameters_file_maps_azd_environment_values():
    parameters = main_parameters()
    declared = bicep(MAIN)["parameters"]
    assert set(parameters) <= set(declared)
    assert parameters["environmentName"] == {"value": "${AZURE_ENV_NAME}"}
    assert parameters["location"] == {"value": "${AZURE_LOCATION}"}
    assert parameters["deployEventSubscriptions"] == {
        "value": "${DEPLOY_EVENT_SUBSCRIPTIONS=false}"
    }
    # Every parameter without a default is given (azd prompts for it when unset).
    required = {name for name, p in declared.items() if "default" not in p}
    assert required <= set(parameters)


def test_parameter_file_defaults_are_the_bicep_defaults():
    declared = bicep(MAIN)["parameters"]
    for name, entry in main_parameters().items():
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", entry["value"])
        assert match, f"{name}: expected a single ${{VARIABLE}} or ${{VARIABLE=default}}"
        if match.group(2) is None:
            continue
        default = declared[name]["default"]
        assert match.group(2) == (
            str(default).lower() if isinstance(default, bool) else str(default)
        ), name


def test_panorama_api_key_is_a_secure_parameter_never_given_in_plain_text():
    parameter = bicep(MAIN)["parameters"]["panoramaApiKey"]
    assert {"type": "secure"} in parameter["decorators"]
    assert parameter["default"] == ""
    # Only ever an azd environment value (azd env set-secret keeps it in Key Vault).
    assert main_parameters()["panoramaApiKey"] == {"value": "${AKSFW_PANORAMA_API_KEY=}"}
    for path in BICEP_FILES:
        for name, output in bicep(path).get("outputs", {}).items():
            text = json.dumps(output)
            assert not re.search(r"\bpanoramaApiKey\b", text), f"{path.name}: output {name}"


# --- app settings ---------------------------------------------------------------------


def test_code_scanner_finds_every_way_of_reading_the_environment():
    source = (
        "import os\n"
        "a = os.environ.get('A')\n"
        "b = environ.get('B', 'x')\n"
        "c = os.environ['C']\n"
        "d = os.getenv('D')\n"
        "e = self.environ.get('E')\n"
        "f = other.get('F')\n"
    )
    assert environment_names_in(source) == {"A", "B", "C", "D", "E"}


def test_code_reads_the_names_the_readme_documents():
    names = code_environment_names()
    assert {"AKSFW_CONFIG", "PANORAMA_API_KEY", "AKSFW_ARM_ENDPOINT", "AKSFW_DEV_TOKEN"} <= names


def test_app_settings_match_what_the_code_reads():
    written = app_settings(bicep(APP / "api.bicep"))
    assert settings_problems(written, code_environment_names()) == []


def test_the_settings_check_catches_drift():
    # In step: aksfw reads what is set, others read the rest, local names stay unset.
    written = set(READ_BY_OTHERS) | {"AKSFW_CONFIG", "PANORAMA_API_KEY"}
    read = set(LOCAL_ONLY) | {"AKSFW_CONFIG", "PANORAMA_API_KEY"}
    assert settings_problems(written, read) == []
    renamed = (written - {"AKSFW_CONFIG"}) | {"AKSFW_CONFIGURATION"}
    assert settings_problems(renamed, read) == [
        "the Bicep sets AKSFW_CONFIGURATION, which nobody reads",
        "the code reads AKSFW_CONFIG, which the Bicep does not set",
    ]
    assert settings_problems(written | {"AKSFW_DEV_TOKEN"}, read) == [
        "the Bicep sets AKSFW_DEV_TOKEN"
    ]
    assert settings_problems(written, read | {"AKSFW_NEW_KNOB"}) == [
        "the code reads AKSFW_NEW_KNOB, which the Bicep does not set"
    ]
    assert settings_problems(written - {"AZURE_CLIENT_ID"}, read) == [
        "READ_BY_OTHERS lists AZURE_CLIENT_ID, which the Bicep no longer sets"
    ]
    assert settings_problems(written, read - {"PANORAMA_USER"}) == [
        "LOCAL_ONLY lists PANORAMA_USER, which the code no longer reads"
    ]


def test_allow_lists_are_documented_and_disjoint():
    assert all(READ_BY_OTHERS.values()) and all(LOCAL_ONLY.values())
    assert not set(READ_BY_OTHERS) & set(LOCAL_ONLY)
    assert set(FORBIDDEN) <= set(LOCAL_ONLY)


def test_no_secret_is_written_into_app_settings():
    settings = app_settings(bicep(APP / "api.bicep"))
    assert settings["PANORAMA_API_KEY"] == (
        "@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${panoramaApiKeySecretName})"
    )
    assert "AKSFW_DEV_TOKEN" not in settings
    assert "AzureWebJobsStorage" not in settings  # a connection string would hold a key
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${identityClientId};Authorization=AAD"
    )


def test_function_app_runs_as_its_identity_on_flex_consumption():
    (plan,) = resources_of(APP / "api.bicep", "Microsoft.Web/serverfarms").values()
    assert body(plan)["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert body(plan)["properties"]["reserved"] is True
    (site,) = resources_of(APP / "api.bicep", "Microsoft.Web/sites").values()
    config = body(site)
    assert config["kind"] == "functionapp,linux"
    properties = config["properties"]
    assert properties["httpsOnly"] is True
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    assert config["identity"]["type"] == "UserAssigned"
    function_config = properties["functionAppConfig"]
    assert function_config["runtime"] == {"name": "python", "version": "pythonVersion"}
    storage = function_config["deployment"]["storage"]
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    assert "'azd-service-name': 'api'" in (APP / "api.bicep").read_text()


# The Python versions Flex Consumption offers that aksfw is tested on, the default first: the
# suite runs on 3.11, the real-runtime tests on 3.13 (tests/test_runtime*.py). Microsoft Learn:
# "Supported languages in Azure Functions" lists 3.10 to 3.13 as GA, with 3.12 the last on
# Linux Consumption; Get-AzFunctionAppFlexConsumptionRuntime lists python 3.13 for the FC1 SKU.
PYTHON_VERSIONS = ["3.11", "3.13"]


def allowed(parameter: Mapping[str, Any]) -> list[Any]:
    return next(d["argument"] for d in parameter["decorators"] if d["type"] == "allowed")


def test_python_version_is_a_parameter_from_the_azd_environment():
    in_main = bicep(MAIN)["parameters"]["pythonVersion"]
    in_app = bicep(APP / "api.bicep")["parameters"]["pythonVersion"]
    assert allowed(in_main) == allowed(in_app) == PYTHON_VERSIONS
    assert in_main["default"] == in_app["default"] == PYTHON_VERSIONS[0]
    assert body(bicep(MAIN)["modules"]["api"])["params"]["pythonVersion"] == "pythonVersion"
    assert main_parameters()["pythonVersion"] == {"value": "${AKSFW_PYTHON_VERSION=3.11}"}
    description = next(d for d in in_main["decorators"] if d["type"] == "description")
    assert "AKSFW_PYTHON_VERSION" in description["argument"]
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text()
    row = next(line for line in deploy.splitlines() if line.startswith("| `AKSFW_PYTHON_VERSION`"))
    assert all(f"`{version}`" in row for version in PYTHON_VERSIONS), row


def bounds(parameter: Mapping[str, Any]) -> tuple[Any, Any]:
    found = {d["type"]: d.get("argument") for d in parameter["decorators"]}
    return found.get("min_value"), found.get("max_value")


def test_maximum_instance_count_accepts_one_and_defaults_to_a_few_instances():
    # Microsoft Learn, "Event-driven scaling in Azure Functions" (Flex Consumption, *Limit
    # scale-out*): the lowest maximum instance count is 1, the highest 1000, and the count
    # applies to each per-function scale group's on-demand instances, not to the app's sum.
    in_main = bicep(MAIN)["parameters"]["maximumInstanceCount"]
    in_app = bicep(APP / "api.bicep")["parameters"]["maximumInstanceCount"]
    assert bounds(in_main) == bounds(in_app) == (1, 1000)
    assert in_main["default"] == in_app["default"] == 10
    assert main_parameters()["maximumInstanceCount"] == {
        "value": "${AKSFW_MAXIMUM_INSTANCE_COUNT=10}"
    }
    assert body(bicep(MAIN)["modules"]["api"])["params"]["maximumInstanceCount"] == (
        "maximumInstanceCount"
    )
    (site,) = resources_of(APP / "api.bicep", "Microsoft.Web/sites").values()
    scale = body(site)["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == "maximumInstanceCount"
    description = next(d for d in in_main["decorators"] if d["type"] == "description")
    assert "AKSFW_MAXIMUM_INSTANCE_COUNT" in description["argument"]
    # The docs say which function scales in which group.
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert "| `AKSFW_MAXIMUM_INSTANCE_COUNT` |" in deploy
    tree = ast.parse((REPO_ROOT / "function_app.py").read_text())
    for function in (node.name for node in tree.body if isinstance(node, ast.FunctionDef)):
        assert f"`{function}`" in deploy, f"docs/deploy.md does not place {function} in a group"


def azure_functions_requirement(python_version: str) -> SpecifierSet:
    """The azure-functions versions requirements.txt admits on one Python version."""
    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0"}
    found = []
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        requirement = Requirement(text)
        if requirement.name == "azure-functions" and (
            requirement.marker is None or requirement.marker.evaluate(environment)
        ):
            found.append(requirement.specifier)
    assert len(found) == 1, f"Python {python_version}: {len(found)} azure-functions lines apply"
    return found[0]


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_every_supported_python_version_gets_its_azure_functions_library(python_version):
    # azure-functions 2.x requires Python 3.13 (pip passes it over on 3.11 and 3.12); 1.25 is
    # the first 1.x with func.CloudEvent. So 3.13 must admit 2.x, 3.11 and 3.12 a 1.x >= 1.25.
    specifier = azure_functions_requirement(python_version)
    assert "1.24.0" not in specifier and "3.0.0" not in specifier
    assert ("2.0.0" if Version(python_version) >= Version("3.13") else "1.25.0") in specifier


# --- storage and vault ----------------------------------------------------------------


def test_storage_account_is_identity_only():
    (account,) = resources_of(APP / "storage.bicep", "Microsoft.Storage/storageAccounts").values()
    properties = body(account)["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True


def test_storage_declares_the_queues_and_containers_the_code_uses():
    queues = variable(APP / "storage.bicep", "queueNames")
    assert sorted(queues) == sorted(StorageNames().queues)
    containers = {
        body(c)["name"]
        for c in resources_of(
            APP / "storage.bicep", "Microsoft.Storage/storageAccounts/blobServices/containers"
        ).values()
    }
    assert containers == {
        StorageNames().state_container,
        "deploymentContainerName",
        "deadLetterContainerName",
    }
    assert variable(APP / "storage.bicep", "deadLetterContainerName") == "eventgrid-deadletter"
    triggers = re.findall(r'queue_name="([^"]+)"', (REPO_ROOT / "function_app.py").read_text())
    assert set(triggers) <= set(queues)


def test_key_vault_uses_rbac_and_keeps_deleted_secrets():
    (vault,) = resources_of(APP / "keyvault.bicep", "Microsoft.KeyVault/vaults").values()
    properties = body(vault)["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    # Purge protection is opt-in: the vault name is fixed per environment, and only an
    # unprotected vault can be purged by `azd down --purge` before the next `azd up`.
    assert properties["enablePurgeProtection"] == {
        "operator": {
            "type": "conditional",
            "operands": {"condition": "purgeProtection", "true_value": True, "false_value": None},
        }
    }
    assert bicep(APP / "keyvault.bicep")["parameters"]["purgeProtection"]["default"] is False
    assert bicep(MAIN)["parameters"]["keyVaultPurgeProtection"]["default"] is False
    assert main_parameters()["keyVaultPurgeProtection"] == {
        "value": "${AKSFW_KEY_VAULT_PURGE_PROTECTION=false}"
    }
    params = body(bicep(MAIN)["modules"]["keyVault"])["params"]
    assert params["purgeProtection"] == "keyVaultPurgeProtection"
    text = (APP / "keyvault.bicep").read_text()
    assert "checkov:skip=CKV_AZURE_110:" in text and "checkov:skip=CKV_AZURE_42:" in text
    module = bicep(APP / "keyvault.bicep")["modules"]["panoramaKey"]
    assert condition(module) is not None  # only when the key is given
    assert variable(APP / "keyvault.bicep", "panoramaApiKeySecretName") == "panorama-api-key"


def test_panorama_secrets_are_written_only_while_the_environment_holds_them_and_say_so():
    # The azd environment is the source of truth while it holds a value: every provision
    # writes it (a new version, tagged with where it came from); cleared, no provision
    # touches the secret, and a rotation made in Key Vault stands.
    path = APP / "keyvault.bicep"
    modules = bicep(path)["modules"]
    expected = {
        "panoramaKey": ("panoramaApiKey", "AKSFW_PANORAMA_API_KEY", "panoramaApiKey"),
        "panoramaCas": (
            "panoramaCaCertificates",
            "AKSFW_PANORAMA_CA_CERTIFICATES_BASE64",
            "panoramaCaCertificatesBase64",
        ),
    }
    for name, (value, source, parameter) in expected.items():
        module = modules[name]
        assert module["detail"]["path"] == "panorama-secret.bicep"
        assert condition(module) == {
            "operator": {
                "type": "not",
                "operands": {
                    "bool_value": {
                        "function": {"type": "empty", "parameters": {"item_to_test": value}}
                    }
                },
            }
        }
        assert body(module)["params"]["value"] == value
        assert body(module)["params"]["source"] == source
        assert main_parameters()[parameter] == {"value": f"${{{source}=}}"}
    (secret,) = resources_of(
        APP / "panorama-secret.bicep", "Microsoft.KeyVault/vaults/secrets"
    ).values()
    tag = body(secret)["tags"]["'aksfw-written-from'"]
    assert "${source}" in tag and "each azd provision writes it again" in tag
    # The docs say how to rotate either way, and how the app takes the new value.
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text()
    section = deploy[deploy.index("**Rotate the Panorama key**") :]
    for step in (
        "azd env set-secret AKSFW_PANORAMA_API_KEY",
        "azd env set AKSFW_PANORAMA_API_KEY ''",
        "az keyvault secret set",
        "config/configreferences/appsettings/refresh",
    ):
        assert step in section, step


def test_application_insights_takes_entra_id_authentication_only():
    (component,) = resources_of(APP / "monitoring.bicep", "Microsoft.Insights/components").values()
    assert body(component)["properties"]["DisableLocalAuth"] is True


# --- roles ----------------------------------------------------------------------------


def role_assignments() -> list[tuple[Path, str, dict[str, Any], Any]]:
    found = []
    for path in BICEP_FILES:
        for name, resource in resources_of(path, "Microsoft.Authorization/roleAssignments").items():
            found.append((path, name, body(resource), condition(resource)))
    return found


def test_role_ids_are_the_built_in_ones():
    assert json.loads((APP / "roles.json").read_text()) == BUILT_IN_ROLES


CUSTOM_ROLES = APP / "custom-roles.bicep"

# What each custom role allows (custom-roles.bicep), by the seed of its name: reads only.
# Microsoft Learn, "Azure built-in roles for Containers": Azure Kubernetes Service RBAC
# Reader holds `Microsoft.ContainerService/managedClusters/services/read` ("Reads services")
# among the data actions for most objects of a cluster; aksfw lists Services only.
CUSTOM_ROLE_PERMISSIONS = {
    "aksfw-cluster-reader": {
        "actions": ["Microsoft.ContainerService/managedClusters/read"],
        "dataActions": [],
    },
    "aksfw-service-reader": {
        "actions": [],
        "dataActions": ["Microsoft.ContainerService/managedClusters/services/read"],
    },
    "aksfw-subnet-reader": {
        "actions": [
            "Microsoft.Network/virtualNetworks/read",
            "Microsoft.Network/virtualNetworks/subnets/read",
        ],
        "dataActions": [],
    },
    # docs/egress.md, *Roles*: what the outbound addresses are read from.
    "aksfw-egress-reader": {
        "actions": [
            "Microsoft.Network/publicIPAddresses/read",
            "Microsoft.Network/publicIPPrefixes/read",
            "Microsoft.Network/natGateways/read",
            "Microsoft.Network/virtualNetworks/subnets/read",
        ],
        "dataActions": [],
    },
    # Microsoft Learn, "Use Microsoft Entra ID authorization for the Kubernetes API": custom
    # resources take this one data action, narrowed by an ABAC condition on the assignment.
    "aksfw-gateway-reader": {
        "actions": [],
        "dataActions": ["Microsoft.ContainerService/managedClusters/customresources/read"],
    },
}


def custom_roles() -> dict[str, dict[str, Any]]:
    """Seed of its name (`guid(subscription().id, roleNameSuffix, '<seed>')`) → the
    (unwrapped) declaration of each custom role definition of custom-roles.bicep."""
    found = {}
    for resource in resources_of(CUSTOM_ROLES, "Microsoft.Authorization/roleDefinitions").values():
        config = body(resource)
        found[custom_role_seed(config["name"])] = config
    return found


def custom_role_seed(name: Any) -> str:
    """The seed of a custom role definition's deterministic name, which must be computed
    from the subscription and the environment's role name suffix, nothing else."""
    guid = name["function"]
    assert guid["type"] == "guid"
    base, suffix, seed = guid["parameters"].values()
    assert base == accessor(
        {"function": {"type": "subscription", "parameters": {"subscription_id": None}}}, "id"
    )
    assert suffix == "roleNameSuffix"
    return str(seed)


def role_key(path: Path, role_definition_id: Any) -> str:
    """A built-in role's key in roles.json, or the name seed of a custom role of
    custom-roles.bicep (a variable of the file holding its deterministic ID)."""
    if isinstance(role_definition_id, str) and role_definition_id in bicep(path).get(
        "variables", {}
    ):
        function = variable(path, role_definition_id)["function"]
        assert function["type"] == "subscription_resource_id", f"{path.name}: {role_definition_id}"
        assert function["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        return custom_role_seed(function["parameters"]["resource_name_1"])
    keys = re.findall(r'"operand_2": "(\w+)"', json.dumps(role_definition_id))
    assert keys and keys[-1] in BUILT_IN_ROLES, f"{path.name}: unknown role {role_definition_id}"
    return keys[-1]


def test_role_assignments_use_known_roles_deterministic_names_and_principal_types():
    assert role_assignments()
    for path, name, config, _ in role_assignments():
        where = f"{path.name}: {name}"
        key = role_key(path, config["properties"]["roleDefinitionId"])
        assert config["name"]["function"]["type"] == "guid", where
        # The role (a built-in key, or a custom role's seed) is part of the name.
        assert key in json.dumps(config["name"]), f"{where}: the role is not in the name"
        principal_type = config["properties"]["principalType"]
        assert principal_type in ("ServicePrincipal", "principalType"), where


def test_custom_roles_only_read_and_are_unique_in_the_tenant():
    roles = custom_roles()
    permissions = {}
    for seed, config in roles.items():
        (permission,) = config["properties"]["permissions"]
        permissions[seed] = {
            kind: resolve_name(CUSTOM_ROLES, permission[kind])
            for kind in ("actions", "dataActions")
        }
        assert permission["notActions"] == permission["notDataActions"] == []
    assert permissions == CUSTOM_ROLE_PERMISSIONS
    for allowed in permissions.values():
        assert all(action.endswith("/read") for kind in allowed.values() for action in kind)
    for config in roles.values():
        properties = config["properties"]
        assert properties["type"] == "CustomRole"
        # Assignable in this subscription only.
        (assignable,) = properties["assignableScopes"]
        assert assignable["operator"]["operands"]["operand_1"]["function"]["type"] == "subscription"
        assert assignable["operator"]["operands"]["operand_2"] == "id"
        # Role names are unique per tenant: environment, token and subscription in each.
        assert "${roleNameSuffix}" in properties["roleName"]
        assert "${subscription().subscriptionId}" in properties["roleName"]
    params = body(bicep(MAIN)["modules"]["monitoredSubscriptions"])["params"]
    assert params["roleNameSuffix"] == "roleNameSuffix"
    assert variable(MAIN, "roleNameSuffix") == "${environmentName}-${resourceToken}"


def test_the_built_in_readers_are_gone():
    # Reader reads every property of a cluster; Azure Kubernetes Service RBAC Reader reads
    # most Kubernetes objects (pods, config maps, events...). Neither is granted any more.
    assert "reader" not in BUILT_IN_ROLES and "aksRbacReader" not in BUILT_IN_ROLES
    for path in BICEP_FILES:
        text = path.read_text()
        for role_id in (
            "acdd72a7-3385-48ef-bd42-f606fba81ae7",
            "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
        ):
            assert role_id not in text, path.name


def granted(path: Path) -> dict[tuple[str, str], Any]:
    """(role key, principal) → condition of the role assignments of one file."""
    result = {}
    for file, _, config, when in role_assignments():
        if file == path:
            key = role_key(path, config["properties"]["roleDefinitionId"])
            result[key, config["properties"]["principalId"]] = when
    return result


def conjuncts(node: Any) -> set[Any]:
    """The terms of `a && b && c` (pycep nests them), as names or JSON text."""
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "and":
        operands = node["operator"]["operands"]
        return conjuncts(operands["operand_1"]) | conjuncts(operands["operand_2"])
    return {node if isinstance(node, str) else json.dumps(node, sort_keys=True)}


def test_app_identity_gets_data_roles_on_its_own_resources_only():
    roles = granted(APP / "rbac.bicep")
    app = {
        key: when for (key, principal), when in roles.items() if principal == "identityPrincipalId"
    }
    assert app == dict.fromkeys(
        [
            "storageBlobDataOwner",
            "storageQueueDataContributor",
            "keyVaultSecretsUser",
            "monitoringMetricsPublisher",
        ]
    )
    user = {key: when for (key, principal), when in roles.items() if principal == "principalId"}
    assert set(user) == {
        "storageBlobDataContributor",
        "storageQueueDataContributor",
        "keyVaultSecretsOfficer",
    }
    assert all("principalId" in json.dumps(when) for when in user.values())


def test_cluster_roles_go_to_the_app_identity_only():
    roles = granted(APP / "cluster-access.bicep")
    assert {key for key, _ in roles} == {
        "aksfw-cluster-reader",
        "aksClusterUser",
        "aksfw-service-reader",
        "aksfw-gateway-reader",
    }
    assert {principal for _, principal in roles} == {"principalId"}  # the module's parameter
    assert conjuncts(roles["aksfw-service-reader", "principalId"]) == {
        "grant",
        "usesAzureCredential",
        "clustersUseAzureRbac",
    }
    subscription_roles = granted(APP / "monitored-subscription.bicep")
    assert subscription_roles == {
        ("aksfw-cluster-reader", "principalId"): "grantSubscriptionRoles",
        ("aksfw-subnet-reader", "principalId"): "grantSubnetRead",
        ("aksfw-egress-reader", "principalId"): "grantEgressRead",
    }
    # The modules are given the identity, nothing else.
    for name in ("monitoredSubscriptions", "clusterAccess", "discoveredClusterAccess"):
        params = body(bicep(MAIN)["modules"][name])["params"]
        assert dotted(params["principalId"]) == "identity.outputs.principalId"


def test_no_credential_or_kubernetes_role_is_granted_on_a_subscription_or_group():
    # Cluster User Role hands out a local-account cluster's admin credential, and the service
    # reader reads Kubernetes objects: only ever on one cluster (cluster-access.bicep scopes
    # every assignment to the cluster).
    for path, name, config, _ in role_assignments():
        key = role_key(path, config["properties"]["roleDefinitionId"])
        if key in ("aksClusterUser", "aksfw-service-reader", "aksfw-gateway-reader"):
            assert path == APP / "cluster-access.bicep", f"{path.name}: {name}"
            assert config["scope"] == "managedCluster", f"{path.name}: {name}"


def test_custom_roles_are_assigned_by_the_names_custom_roles_bicep_gives_them():
    defined = set(custom_roles())
    for path in (APP / "cluster-access.bicep", APP / "monitored-subscription.bicep"):
        for key, _ in granted(path):
            if key not in BUILT_IN_ROLES:
                assert key in defined, f"{path.name}: {key} is not defined in custom-roles.bicep"
        assert "Microsoft.Authorization/roleDefinitions" not in {
            r["type"] for r in bicep(path).get("resources", {}).values() if not r["existing"]
        }
    # Defined before anything assigns them.
    for name in ("monitoredSubscriptions", "clusterAccess", "discoveredClusterAccess"):
        assert body(bicep(MAIN)["modules"][name])["dependsOn"] == ["customRoles"], name
        assert body(bicep(MAIN)["modules"][name])["params"]["roleNameSuffix"] == "roleNameSuffix"


def custom_role_modules(**parameters: Any) -> dict[str, dict[str, Any]]:
    """Subscription → the custom-roles.bicep parameters main.bicep deploys there."""
    document = bicep(MAIN)
    values = {name: p["default"] for name, p in document["parameters"].items() if "default" in p}
    values |= {"monitoredSubscriptionIds": [SUB]} | parameters
    lookup = scope(MAIN, values)
    module = document["modules"]["customRoles"]
    assert module["config"]["loop_type"]["detail"]["array_name"] == "roleSubscriptionIds"
    assert body(module)["scope"]["function"]["type"] == "subscription"
    found = {}
    for subscription_id in lookup("roleSubscriptionIds"):
        item = scope(MAIN, values | {"subscriptionId": subscription_id})
        found[subscription_id] = {
            name: evaluate(value, item)
            for name, value in body(module)["params"].items()
            if name != "roleNameSuffix"
        }
    return found


SUB2 = "22222222-2222-2222-2222-222222222222"
SUB3 = "33333333-3333-3333-3333-333333333333"


def cluster_id(subscription_id: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/rg-{name}/providers/"
        f"Microsoft.ContainerService/managedClusters/{name}"
    )


def defines(
    cluster: bool, service: bool, subnet: bool, egress: bool = False, gateway: bool = False
) -> dict[str, bool]:
    """custom-roles.bicep's switches."""
    return {
        "defineClusterReader": cluster,
        "defineServiceReader": service,
        "defineSubnetReader": subnet,
        "defineEgressReader": egress,
        "defineGatewayReader": gateway,
    }


def test_custom_roles_are_defined_in_every_subscription_that_assigns_them():
    # An explicit cluster may sit in a subscription that is not scanned (SUB2): its roles
    # are defined there too. Subscription IDs compare in lower case, each once.
    modules = custom_role_modules(
        clusters=[{"id": cluster_id(SUB2.upper(), "aks-b")}],
        discoveredClusterIds=cluster_id(SUB3, "aks-c") + "," + cluster_id(SUB, "aks-a"),
        registerNodeSubnets=True,
    )
    assert modules == {
        SUB: defines(cluster=True, service=True, subnet=True),
        SUB2: defines(cluster=True, service=True, subnet=False),
        SUB3: defines(cluster=True, service=True, subnet=False),
    }
    # Without discovery by tag, a monitored subscription without clusters defines nothing;
    # without Azure RBAC for Kubernetes, no service reader.
    modules = custom_role_modules(
        discoveryTag="", clusters=[{"id": cluster_id(SUB2, "aks-b")}], clustersUseAzureRbac=False
    )
    assert modules == {
        SUB: defines(cluster=False, service=False, subnet=False),
        SUB2: defines(cluster=True, service=False, subnet=False),
    }
    # registerEgress: the egress reader where it is assigned (the monitored subscriptions),
    # the gateway reader where clusters are, and only with Azure RBAC for Kubernetes.
    modules = custom_role_modules(
        clusters=[{"id": cluster_id(SUB2, "aks-b")}],
        discoveredClusterIds=cluster_id(SUB, "aks-a"),
        registerEgress=True,
    )
    assert modules == {
        SUB: defines(cluster=True, service=True, subnet=False, egress=True, gateway=True),
        SUB2: defines(cluster=True, service=True, subnet=False, egress=False, gateway=True),
    }
    modules = custom_role_modules(
        clusters=[{"id": cluster_id(SUB2, "aks-b")}],
        registerEgress=True,
        clustersUseAzureRbac=False,
    )
    assert modules == {
        SUB: defines(cluster=True, service=False, subnet=False, egress=True, gateway=False),
        SUB2: defines(cluster=True, service=False, subnet=False, egress=False, gateway=False),
    }
    # Each definition has its own switch.
    definitions = resources_of(CUSTOM_ROLES, "Microsoft.Authorization/roleDefinitions").values()
    assert {custom_role_seed(body(r)["name"]): condition(r) for r in definitions} == {
        "aksfw-cluster-reader": "defineClusterReader",
        "aksfw-service-reader": "defineServiceReader",
        "aksfw-subnet-reader": "defineSubnetReader",
        "aksfw-egress-reader": "defineEgressReader",
        "aksfw-gateway-reader": "defineGatewayReader",
    }


@pytest.mark.parametrize(
    ("credential", "azure"),
    [
        (None, True),
        ("azure", True),
        ({"kind": "azure"}, True),
        ({"kind": "token", "server": "https://azure.example", "secret": "azure-token"}, False),
    ],
)
def test_explicit_clusters_get_cluster_user_only_for_the_azure_credential(credential, azure):
    roles = granted(APP / "cluster-access.bicep")
    assert roles["aksfw-cluster-reader", "principalId"] == "grant"
    when = roles["aksClusterUser", "principalId"]
    assert conjuncts(when) == {"grant", "usesAzureCredential", "grantClusterUser"}
    cluster = (
        {"id": CLUSTER_ID} if credential is None else {"id": CLUSTER_ID, "credential": credential}
    )
    lookup = scope(APP / "cluster-access.bicep", {"cluster": cluster})
    assert lookup("usesAzureCredential") is azure


LOCAL = cluster_id(SUB, "aks-local")
ENTRA = cluster_id(SUB, "aks-entra")


@pytest.mark.parametrize(
    ("listed", "allowed", "cluster_user"),
    [
        ("", False, {LOCAL: True, ENTRA: True}),
        (LOCAL.lower(), False, {LOCAL: False, ENTRA: True}),
        (f" {LOCAL.upper()} ", False, {LOCAL: False, ENTRA: True}),  # IDs compare in lower case
        (LOCAL.lower(), True, {LOCAL: True, ENTRA: True}),
    ],
    ids=["none-listed", "listed", "listed-in-another-case", "allowed"],
)
def test_local_account_clusters_get_no_cluster_user_role_unless_allowed(
    listed, allowed, cluster_user
):
    parameters = main_parameters()
    assert parameters["localAccountClusterIds"] == {"value": "${AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS=}"}
    assert parameters["allowLocalAccountClusters"] == {
        "value": "${AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS=false}"
    }
    assert bicep(MAIN)["parameters"]["allowLocalAccountClusters"]["default"] is False
    values = {"localAccountClusterIds": listed, "allowLocalAccountClusters": allowed}
    for name, loop_variable, item in (
        ("clusterAccess", "cluster", lambda cluster: {"id": cluster}),
        ("discoveredClusterAccess", "clusterId", lambda cluster: cluster),
    ):
        params = body(bicep(MAIN)["modules"][name])["params"]
        found = {
            cluster: evaluate(
                params["grantClusterUser"], scope(MAIN, values | {loop_variable: item(cluster)})
            )
            for cluster in (LOCAL, ENTRA)
        }
        assert found == cluster_user, name
    # Only the credential role waits for the permission: the cluster is still read.
    roles = granted(APP / "cluster-access.bicep")
    for key in ("aksfw-cluster-reader", "aksfw-service-reader"):
        assert "grantClusterUser" not in conjuncts(roles[key, "principalId"]), key


def test_monitored_subscription_module_is_deployed_per_subscription():
    module = bicep(MAIN)["modules"]["monitoredSubscriptions"]
    assert module["config"]["loop_type"]["detail"]["array_name"] == "monitoredSubscriptionList"
    scope = body(module)["scope"]["function"]
    assert scope["type"] == "subscription"
    text = MAIN.read_text()
    assert "resourceGroupName: '${abbrs.resourceGroups}${environmentName}-events'" in text
    assert "functionId: '${api.outputs.id}/functions/resource_event'" in text
    assert "deployEventSubscription: deployEventSubscriptions" in text
    # Environments sharing one topic need their own event subscription (and alert) names.
    assert "eventSubscriptionName: 'aksfw-${resourceToken}'" in text


@pytest.mark.parametrize(
    ("csv", "subscriptions"),
    [
        ("", [SUB]),  # the monitoredSubscriptionIds array (its default: this subscription)
        ("  ", [SUB]),
        ("aaa,bbb", ["aaa", "bbb"]),
        (" aaa, bbb ", ["aaa", "bbb"]),
    ],
)
def test_monitored_subscriptions_come_from_the_azd_environment_or_the_array(csv, subscriptions):
    assert main_parameters()["monitoredSubscriptionIdsCsv"] == {
        "value": "${AKSFW_MONITORED_SUBSCRIPTION_IDS=}"
    }
    lookup = scope(MAIN, {"monitoredSubscriptionIdsCsv": csv, "monitoredSubscriptionIds": [SUB]})
    assert lookup("monitoredSubscriptionList") == subscriptions
    document = config_document(panoramaHost="p", monitoredSubscriptionIdsCsv=csv)
    assert document["subscriptions"] == subscriptions


TAGGED = f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.ContainerService/managedClusters/aks-a"


@pytest.mark.parametrize(
    ("found", "ids"),
    [("", []), (f"{TAGGED},{TAGGED}2", [TAGGED, f"{TAGGED}2"]), (f" {TAGGED} ", [TAGGED])],
)
def test_discovered_clusters_get_their_roles_one_by_one(found, ids):
    assert main_parameters()["discoveredClusterIds"] == {
        "value": "${AKSFW_DISCOVERED_CLUSTER_IDS=}"
    }
    assert scope(MAIN, {"discoveredClusterIds": found})("discoveredClusterIdList") == ids
    module = bicep(MAIN)["modules"]["discoveredClusterAccess"]
    assert module["config"]["loop_type"]["detail"]["array_name"] == "discoveredClusterIdList"
    assert module["detail"]["path"] == "app/cluster-access.bicep"
    params = body(module)["params"]
    assert params["cluster"] == {"id": "clusterId"}  # the `azure` credential by default
    # A cluster that is also explicit gets its roles (and credential) from that entry.
    grant = params["grant"]["operator"]["operands"]["bool_value"]["function"]
    assert grant["type"] == "contains"
    assert grant["parameters"]["container"] == "explicitClusterIds"


def test_explicit_clusters_come_from_the_azd_environment_as_json():
    # No default: an azd older than 1.23.4 (which reads JSON for array parameters) leaves
    # the parameter out while AKSFW_CLUSTERS is unset, and the Bicep default [] holds.
    assert main_parameters()["clusters"] == {"value": "${AKSFW_CLUSTERS}"}
    assert bicep(MAIN)["parameters"]["clusters"]["type"] == "array"
    entry = {
        "id": TAGGED,
        "alias": "a",
        "selectors": [{"name": "public", "match": "exposure=internet", "namespace": "shop"}],
    }
    document = config_document(panoramaHost="p", clusters=[entry])
    assert document["clusters"] == [entry] and document["discovery"] == {"tag": "aksfw"}
    (cluster,) = parse_settings(document).clusters
    assert cluster.alias == "a" and [s.name for s in cluster.selectors] == ["public"]
    # Each entry gets its roles (the tagged cluster's own grant then stands aside).
    module = bicep(MAIN)["modules"]["clusterAccess"]
    assert module["config"]["loop_type"]["detail"]["array_name"] == "clusters"


UNTAGGED = cluster_id(SUB2, "aks-b")


@pytest.mark.parametrize(
    ("watcher", "no_oidc", "watched"),
    [
        (True, "", [TAGGED.lower(), UNTAGGED.lower()]),
        (True, UNTAGGED.lower(), [TAGGED.lower()]),
        (True, f"{TAGGED.upper()}, {UNTAGGED.lower()}", []),  # any case, spaces dropped
        (False, "", []),
    ],
    ids=["all", "one-without-oidc", "none-with-oidc", "watcher-off"],
)
def test_clusters_without_an_oidc_issuer_get_no_watcher_identity(watcher, no_oidc, watched):
    assert main_parameters()["noOidcClusterIds"] == {"value": "${AKSFW_NO_OIDC_CLUSTER_IDS=}"}
    lookup = scope(
        MAIN,
        {
            "watcherEnabled": watcher,
            "noOidcClusterIds": no_oidc,
            "clusters": [{"id": TAGGED}],
            "discoveredClusterIds": f"{UNTAGGED},{TAGGED}",  # TAGGED is also explicit
        },
    )
    assert lookup("watchedClusterIds") == watched
    # The identities and the output that names them follow that list.
    module = bicep(MAIN)["modules"]["watcherIdentities"]
    assert module["config"]["loop_type"]["detail"]["array_name"] == "watchedClusterIds"
    assert "watchedClusterIds" in json.dumps(bicep(MAIN)["outputs"]["AKSFW_WATCHER_IDENTITIES"])


@pytest.mark.parametrize(
    "topics",
    [
        {},
        {
            SUB: f"/subscriptions/{SUB}/resourceGroups/rg-shared/providers/Microsoft.EventGrid/systemTopics/arm"
        },
    ],
    ids=["none", "one"],
)
def test_existing_system_topics_come_from_the_azd_environment_as_json(topics):
    # As AKSFW_CLUSTERS: no default, so that an unset value leaves the parameter out (the
    # Bicep default {} holds) instead of reaching an older azd as the string "{}".
    assert main_parameters()["existingSystemTopicIds"] == {
        "value": "${AKSFW_EXISTING_SYSTEM_TOPIC_IDS}"
    }
    assert bicep(MAIN)["parameters"]["existingSystemTopicIds"]["type"] == "object"
    params = body(bicep(MAIN)["modules"]["monitoredSubscriptions"])["params"]
    for subscription_id in (SUB, SUB2):
        lookup = scope(MAIN, {"existingSystemTopicIds": topics, "subscriptionId": subscription_id})
        assert evaluate(params["existingSystemTopicId"], lookup) == topics.get(subscription_id, "")


def test_every_monitored_subscription_topic_may_dead_letter_into_the_container_only():
    module = bicep(MAIN)["modules"]["deadLetterAccess"]
    assert module["config"]["loop_type"]["detail"]["array_name"] == "monitoredSubscriptionList"
    assert "topicPrincipalId: monitoredSubscriptions[i].outputs.systemTopicPrincipalId" in (
        MAIN.read_text()
    )
    roles = granted(APP / "deadletter-access.bicep")
    assert roles == {("storageBlobDataContributor", "topicPrincipalId"): None}
    (assignment,) = resources_of(
        APP / "deadletter-access.bicep", "Microsoft.Authorization/roleAssignments"
    ).values()
    assert body(assignment)["scope"] == "deadLetterContainer"
    # The app's own identity is no longer used by Event Grid anywhere.
    for name in ("eventgrid.bicep", "monitored-subscription.bicep"):
        assert "identityId" not in (APP / name).read_text(), name


# --- Event Grid -----------------------------------------------------------------------


def event_subscription() -> tuple[dict[str, Any], Any]:
    (resource,) = resources_of(
        APP / "eventgrid.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    ).values()
    return body(resource), condition(resource)


def resolve_name(path: Path, value: Any) -> Any:
    return variable(path, value) if isinstance(value, str) else value


def operation_filter() -> list[str]:
    config, _ = event_subscription()
    (advanced,) = config["properties"]["filter"]["advancedFilters"]
    assert advanced["operatorType"] == "StringIn"
    assert advanced["key"] == "data.operationName"
    return resolve_name(APP / "eventgrid.bicep", advanced["values"])


def test_system_topic_watches_the_subscription():
    (topic,) = resources_of(APP / "eventgrid.bicep", "Microsoft.EventGrid/systemTopics").values()
    config = body(topic)
    assert config["location"] == "global"
    assert config["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    # Its own identity: the only kind the storage firewall's trusted-services exception
    # lets dead-letter, and not the app's (which owns queues, state and vault reads).
    assert config["identity"] == {"type": "SystemAssigned"}
    assert condition(topic) == "createSystemTopic"


@pytest.mark.parametrize(
    ("existing", "group", "name", "create"),
    [
        ("", "rg-test-events", "egst-aksfw-x", True),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg-shared/providers/Microsoft.EventGrid/systemTopics/arm-events",
            "rg-shared",
            "arm-events",
            False,
        ),
    ],
)
def test_an_existing_system_topic_is_used_instead_of_a_new_one(existing, group, name, create):
    path = APP / "monitored-subscription.bicep"
    lookup = scope(
        path,
        {
            "existingSystemTopicId": existing,
            "resourceGroupName": "rg-test-events",
            "systemTopicName": "egst-aksfw-x",
        },
    )
    assert lookup("createSystemTopic") is create
    assert lookup("topicGroupName") == group
    assert lookup("topicName") == name
    (events_group,) = resources_of(path, "Microsoft.Resources/resourceGroups").values()
    assert condition(events_group) == "createSystemTopic"
    params = body(bicep(path)["modules"]["events"])["params"]
    assert params["createSystemTopic"] == "createSystemTopic"
    assert params["systemTopicName"] == "topicName"
    main_params = body(bicep(MAIN)["modules"]["monitoredSubscriptions"])["params"]
    chosen = main_params["existingSystemTopicId"]["operator"]["operands"]
    assert chosen["condition"]["function"]["type"] == "contains"
    assert bicep(MAIN)["parameters"]["existingSystemTopicIds"]["default"] == {}


def test_event_subscription_delivers_to_the_resource_event_function_once_it_exists():
    config, when = event_subscription()
    assert when == "deployEventSubscription"
    properties = config["properties"]
    destination = properties["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["maxEventsPerBatch"] == 1
    assert properties["retryPolicy"] == {
        "maxDeliveryAttempts": 30,
        "eventTimeToLiveInMinutes": 1440,
    }
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    tree = ast.parse((REPO_ROOT / "function_app.py").read_text())
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "resource_event" in functions


def test_event_types_are_the_resource_events_the_code_resolves():
    config, _ = event_subscription()
    types = resolve_name(
        APP / "eventgrid.bicep", config["properties"]["filter"]["includedEventTypes"]
    )
    assert set(types) == {events.WRITE, events.DELETE, events.ACTION}


def test_operation_filter_leaves_out_credential_and_list_actions():
    for operation in operation_filter():
        lowered = operation.lower()
        assert "credential" not in lowered and "/list" not in lowered, operation


def test_operation_filter_names_exactly_the_cluster_changing_actions():
    actions = {
        op.lower().split("/")[-2] for op in operation_filter() if op.lower().endswith("/action")
    }
    assert actions == set(events.CLUSTER_CHANGING_ACTIONS)
    for op in operation_filter():
        if op.endswith("/action"):
            assert op.lower().startswith("microsoft.containerservice/managedclusters/"), op


def test_operation_filter_covers_cluster_and_network_writes_and_deletes():
    operations = {op.lower() for op in operation_filter()}
    for resource in (
        "microsoft.containerservice/managedclusters",
        "microsoft.containerservice/managedclusters/agentpools",
        "microsoft.network/loadbalancers",
        "microsoft.network/publicipaddresses",
        # Egress tags (docs/egress.md, *Kept in step*): outbound prefixes and NAT gateways.
        "microsoft.network/publicipprefixes",
        "microsoft.network/natgateways",
    ):
        assert {f"{resource}/write", f"{resource}/delete"} <= operations, resource
    # Node subnets (docs/node-subnets.md, *Kept in step*): the managed VNet's writes.
    assert "microsoft.network/virtualnetworks/write" in operations


def test_operation_filter_stays_within_event_grids_advanced_filter_limits():
    # Microsoft Learn, "Understand event filtering for Event Grid subscriptions",
    # *Limitations*: 25 advanced filters and 25 filter values across all the filters per
    # event subscription, 512 characters per string value.
    config, _ = event_subscription()
    filters = config["properties"]["filter"]["advancedFilters"]
    values = [
        value
        for advanced in filters
        for value in resolve_name(APP / "eventgrid.bicep", advanced["values"])
    ]
    assert len(filters) <= 25 and len(values) <= 25, len(values)
    assert all(len(value) <= 512 for value in values)
    # Each once (Event Grid compares them without regard to case).
    assert len({value.lower() for value in values}) == len(values)


CLUSTER_ID = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
NODE_GROUP = f"/subscriptions/{SUB}/resourceGroups/MC_rg-prod_aks-prod1_westeurope"
INVENTORY = Inventory(
    (MonitoredCluster(CLUSTER_ID, "aks-prod1", "aks-prod1", "MC_rg-prod_aks-prod1_westeurope"),)
)


def sample_event(operation: str) -> dict[str, Any]:
    """A Resource Manager event for `operation` on a resource of the monitored cluster."""
    parts = operation.split("/")
    provider, verb = parts[0], parts[-1]
    if verb == "action":
        kinds, verb = parts[1:-2], "action"
    else:
        kinds = parts[1:-1]
    if provider.lower() == "microsoft.containerservice":
        subject = CLUSTER_ID + "".join(f"/{kind}/x" for kind in kinds[1:])
    else:
        subject = f"{NODE_GROUP}/providers/{provider}/{kinds[0]}/x"
    event_type = {"write": events.WRITE, "delete": events.DELETE, "action": events.ACTION}[verb]
    return {
        "id": "1",
        "eventType": event_type,
        "subject": subject,
        "topic": f"/subscriptions/{SUB}",
        "data": {"operationName": operation},
    }


def test_every_filtered_operation_affects_the_cluster_it_concerns():
    for operation in operation_filter():
        resolution = events.resolve(events.read_event(sample_event(operation)), INVENTORY)
        assert [change.id for change in resolution.clusters] == [CLUSTER_ID], operation


def test_credential_reads_would_be_ignored_anyway():
    event = sample_event(
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
    )
    assert events.resolve(events.read_event(event), INVENTORY).clusters == ()


# --- the configuration document -------------------------------------------------------


def evaluate(node: Any, lookup: Callable[[str], Any]) -> Any:
    """Evaluate the few Bicep expressions the configuration document, the role and network
    lists are built with."""
    if isinstance(node, str):
        return lookup(node)
    if isinstance(node, list):
        return [evaluate(item, lookup) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("loop_type"), dict):  # [for item in array: value]
        detail = node["loop_type"]["detail"]
        return [
            evaluate(node["config"], bind(lookup, {detail["item_name"]: item}))
            for item in lookup(detail["array_name"])
        ]
    if isinstance(node.get("operator"), dict):  # not a property called operator
        kind, operands = node["operator"]["type"], node["operator"]["operands"]
        if kind == "conditional":
            branch = "true_value" if evaluate(operands["condition"], lookup) else "false_value"
            return evaluate(operands[branch], lookup)
        if kind in ("and", "or"):
            first = evaluate(operands["operand_1"], lookup)
            if bool(first) == (kind == "or"):
                return first
            return evaluate(operands["operand_2"], lookup)
        if kind == "equals":
            return evaluate(operands["operand_1"], lookup) == evaluate(
                operands["operand_2"], lookup
            )
        if kind == "not":
            return not evaluate(operands["bool_value"], lookup)
        if kind == "index_accessor":
            return evaluate(operands["operand_1"], lookup)[evaluate(operands["operand_2"], lookup)]
        if kind == "substract":  # sic
            return evaluate(operands["operand_1"], lookup) - evaluate(operands["operand_2"], lookup)
        if kind == "property_accessor":
            owner = evaluate(operands["operand_1"], lookup)
            if isinstance(owner, dict):  # a property of an object value
                return functools.reduce(
                    dict.__getitem__, dotted(operands["operand_2"]).split("."), owner
                )
            return lookup(dotted(node))  # a module output, given as a name
        raise AssertionError(f"operator {kind} not handled")
    if isinstance(node.get("function"), dict):
        kind = node["function"]["type"]
        parameters = node["function"].get("parameters", {})
        if kind == "filter":  # filter(array, item => condition)
            function = parameters["expression"]["detail"]
            return [
                item
                for item in evaluate(parameters["input_array"], lookup)
                if evaluate(function["expression"], bind(lookup, {function["var_1"]: item}))
            ]
        args = [evaluate(arg, lookup) for arg in parameters.values()]
        functions: dict[str, Callable[..., Any]] = {
            "empty": lambda value: not value,
            "contains": lambda container, item: item in container,
            "ends_with": str.endswith,
            "length": len,
            "substring": lambda text, start, length: text[start : start + length],
            "environment": lambda: lookup("environment()"),
            "to_lower": str.lower,
            "trim": str.strip,
            "split": str.split,
            "replace": str.replace,
            "last": lambda items: items[-1],
            "json": json.loads,
            "string": lambda value: value if isinstance(value, str) else json.dumps(value),
            "union": union,
            "index_of": lambda items, item: items.index(item) if item in items else -1,
        }
        assert kind in functions, f"function {kind} not handled"
        return functions[kind](*args)
    return {unquote(key): evaluate(value, lookup) for key, value in node.items()}


def union(*values: Any) -> Any:
    """Bicep's union: objects merged, later keys winning; arrays joined, each value once."""
    if all(isinstance(value, list) for value in values):
        return list(dict.fromkeys(item for value in values for item in value))
    return functools.reduce(lambda a, b: {**a, **b}, values, {})


def bind(lookup: Callable[[str], Any], names: Mapping[str, Any]) -> Callable[[str], Any]:
    """lookup with a loop's or a lambda's variables bound."""
    return lambda name: names[name] if name in names else lookup(name)


def dotted(node: Any) -> str:
    if isinstance(node, str):
        return node
    operands = node["operator"]["operands"]
    return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"


def scope(path: Path, values: Mapping[str, Any]) -> Callable[[str], Any]:
    """Name lookup in one Bicep file: given values (parameters, module outputs), then its
    variables; anything else is a string literal (pycep renders both alike)."""
    document = bicep(path)

    def lookup(name: str) -> Any:
        if name in values:
            return values[name]
        if name in document.get("variables", {}):
            return evaluate(document["variables"][name]["value"], lookup)
        return name

    return lookup


def config_document(**parameters: Any) -> dict[str, Any]:
    """AKSFW_CONFIG as main.bicep builds it from these parameters (and its defaults)."""
    document = bicep(MAIN)
    values = {name: p["default"] for name, p in document["parameters"].items() if "default" in p}
    values |= {"monitoredSubscriptionIds": [SUB], "keyVault.outputs.url": VAULT_URL}
    values |= parameters
    text = evaluate(body(document["modules"]["api"])["params"]["aksfwConfig"], scope(MAIN, values))
    return json.loads(text)


CLOUDS = {
    "AzureCloud": ("https://management.azure.com/", "https://login.microsoftonline.com/"),
    "AzureUSGovernment": (
        "https://management.usgovcloudapi.net/",
        "https://login.microsoftonline.us/",
    ),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn/", "https://login.chinacloudapi.cn/"),
}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_endpoints_come_from_the_cloud_deployed_to(cloud):
    resource_manager, login = CLOUDS[cloud]
    environment = {"resourceManager": resource_manager, "authentication": {"loginEndpoint": login}}
    lookup = scope(APP / "api.bicep", {"environment()": environment})
    settings = app_settings(bicep(APP / "api.bicep"))
    arm = evaluate(settings["AKSFW_ARM_ENDPOINT"], lookup)
    assert arm == resource_manager.rstrip("/")
    assert evaluate(settings["AZURE_AUTHORITY_HOST"], lookup) == login
    document = json.dumps(config_document(panoramaHost="p"))
    assert load_settings({"AKSFW_CONFIG": document, "AKSFW_ARM_ENDPOINT": arm}).arm_endpoint == arm


def test_built_configuration_with_the_defaults_is_valid():
    document = config_document(panoramaHost="panorama.example.com")
    assert document == {
        "subscriptions": [SUB],
        "discovery": {"tag": "aksfw"},
        "clusters": [],
        "keyVault": VAULT_URL,
        "panorama": {
            "host": "panorama.example.com",
            "targets": "panorama",
            "vsys": None,
            "certificateSha256": None,
            "tagTimeoutSeconds": 0,
        },
    }
    settings = parse_settings(document)
    assert settings.discovery.tag_key == "aksfw"
    assert settings.key_vault_url == VAULT_URL
    assert settings.panorama is not None and settings.panorama.targets.panorama


def test_built_configuration_with_every_parameter_set_is_valid():
    clusters = [
        {
            "id": CLUSTER_ID,
            "alias": "prod1",
            "selectors": [{"name": "public", "match": "exposure=internet"}],
        },
        {
            "id": CLUSTER_ID.replace("aks-prod1", "aks-edge"),
            "credential": {
                "kind": "token",
                "server": "https://aks-edge.example:443",
                "secret": "aks-edge-token",
            },
        },
    ]
    document = config_document(
        panoramaHost="10.0.0.5:8443",
        discoveryTag="",
        clusters=clusters,
        panoramaTargets='{"deviceGroups": ["dg-aks"], "serials": ["0123456789"]}',
        panoramaVsys="vsys2",
        panoramaCertificateSha256=":".join(["AB"] * 32),
        tagTimeoutSeconds=3600,
    )
    assert "discovery" not in document or document["discovery"] is None
    settings = parse_settings(document)
    assert settings.discovery.tag_key is None
    assert len(settings.clusters) == 2
    assert settings.panorama is not None
    assert settings.panorama.targets.device_groups == ("dg-aks",)
    assert settings.panorama.vsys == "vsys2"
    assert settings.panorama.tag_timeout_s == 3600
    assert settings.panorama.certificate_sha256 == "ab" * 32


def test_a_whole_configuration_is_used_as_given_with_the_vault_filled_in():
    given = {"subscriptions": [SUB], "panorama": {"host": "pano", "batchSize": 200}}
    document = config_document(aksfwConfig=given, panoramaHost="ignored")
    assert document == {**given, "keyVault": VAULT_URL}
    parse_settings(document)
    own_vault = {**given, "keyVault": "https://other.vault.azure.net"}
    assert (
        config_document(aksfwConfig=own_vault, panoramaHost="x")["keyVault"]
        == own_vault["keyVault"]
    )


def test_the_evaluator_would_notice_an_unknown_key():
    document = config_document(panoramaHost="p")
    document["panorama"]["timeout"] = 5
    with pytest.raises(InputError, match="unknown field"):
        parse_settings(document)


# --- node subnets ---------------------------------------------------------------------


def test_node_subnets_are_opt_in_and_come_with_the_subnet_reads():
    assert bicep(MAIN)["parameters"]["registerNodeSubnets"]["default"] is False
    assert main_parameters()["registerNodeSubnets"] == {
        "value": "${AKSFW_REGISTER_NODE_SUBNETS=false}"
    }
    assert "nodeSubnets" not in config_document(panoramaHost="p")
    document = config_document(panoramaHost="p", registerNodeSubnets=True)
    assert document["nodeSubnets"] is True
    assert parse_settings(document).node_subnets is True
    params = body(bicep(MAIN)["modules"]["monitoredSubscriptions"])["params"]
    assert params["grantSubnetRead"] == "registerNodeSubnets"


# --- egress, namespace and annotation tags, capacity (issue 23) -----------------------


def test_egress_is_opt_in_and_comes_with_the_network_and_gateway_reads():
    assert bicep(MAIN)["parameters"]["registerEgress"]["default"] is False
    assert main_parameters()["registerEgress"] == {"value": "${AKSFW_REGISTER_EGRESS=false}"}
    assert "egressTags" not in config_document(panoramaHost="p")
    document = config_document(panoramaHost="p", registerEgress=True)
    assert document["egressTags"] is True
    assert parse_settings(document).egress_tags is True
    # The flag reaches every module that grants a role for it.
    params = body(bicep(MAIN)["modules"]["monitoredSubscriptions"])["params"]
    assert params["grantEgressRead"] == "registerEgress"
    for name in ("clusterAccess", "discoveredClusterAccess"):
        params = body(bicep(MAIN)["modules"][name])["params"]
        assert params["grantGatewayRead"] == "registerEgress", name
    # Both switches stay off unless main.bicep sets them.
    for path, name in (
        (APP / "monitored-subscription.bicep", "grantEgressRead"),
        (APP / "cluster-access.bicep", "grantGatewayRead"),
    ):
        assert bicep(path)["parameters"][name]["default"] is False, name


def test_the_egress_reader_is_granted_on_each_monitored_subscription():
    # Not the node resource groups: your own outbound IPs, prefixes and NAT gateways (and the
    # subnets naming a user-assigned one) can sit in any group of the subscription, and a
    # node resource group's name is read from the cluster at run time, which a module's
    # scope cannot use (docs/permissions.md).
    (assignment,) = [
        resource
        for name, resource in resources_of(
            APP / "monitored-subscription.bicep", "Microsoft.Authorization/roleAssignments"
        ).items()
        if name == "egressReader"
    ]
    assert "scope" not in body(assignment)  # the module's own: subscription(subscriptionId)
    assert condition(assignment) == "grantEgressRead"
    assert "condition" not in body(assignment)["properties"]


def permissions_condition() -> str:
    """The ABAC condition docs/permissions.md gives for the gateway reader."""
    text = (REPO_ROOT / "docs" / "permissions.md").read_text()
    found = re.search(r"```text\n(\(\n.*?\n\))\n```", text, re.DOTALL)
    assert found, "docs/permissions.md has no condition block"
    return found[1]


def test_the_gateway_reader_is_assigned_per_cluster_with_its_condition_only():
    path = APP / "cluster-access.bicep"
    (assignment,) = [
        resource
        for resource in resources_of(path, "Microsoft.Authorization/roleAssignments").values()
        if role_key(path, body(resource)["properties"]["roleDefinitionId"])
        == "aksfw-gateway-reader"
    ]
    config = body(assignment)
    assert config["scope"] == "managedCluster"
    assert conjuncts(condition(assignment)) == {
        "grant",
        "usesAzureCredential",
        "clustersUseAzureRbac",
        "grantGatewayRead",
    }
    properties = config["properties"]
    # Microsoft Learn, "Use Microsoft Entra ID authorization for the Kubernetes API",
    # *Restrict custom resource access using ABAC conditions (preview)*: condition version
    # 2.0, the customResources:group and :kind request attributes (kind: the plural resource).
    assert properties["conditionVersion"] == "2.0"
    text = resolve_name(path, properties["condition"])
    assert text == permissions_condition()
    action = "!(ActionMatches{'Microsoft.ContainerService/managedClusters/customresources/read'})"
    assert action in text
    prefix = "@Request[Microsoft.ContainerService/managedClusters/customResources"
    assert f"{prefix}:group] StringEqualsIgnoreCase '{kube_egress.GROUP}'" in text
    assert f"{prefix}:kind] StringEqualsIgnoreCase '{kube_egress.PLURAL}'" in text
    # The role's data action is the one the condition names, and nothing assigns it bare.
    data_actions = CUSTOM_ROLE_PERMISSIONS["aksfw-gateway-reader"]["dataActions"]
    assert data_actions == ["Microsoft.ContainerService/managedClusters/customresources/read"]
    for file, name, other, _ in role_assignments():
        if role_key(file, other["properties"]["roleDefinitionId"]) == "aksfw-gateway-reader":
            assert other["properties"].get("condition") == "gatewayCondition", name


def test_namespace_and_annotation_tags_come_from_the_azd_environment():
    assert bicep(MAIN)["parameters"]["namespaceTags"]["default"] is False
    assert main_parameters()["namespaceTags"] == {"value": "${AKSFW_NAMESPACE_TAGS=false}"}
    # JSON, as AKSFW_CLUSTERS: no default, so that an unset value leaves the Bicep's [].
    assert bicep(MAIN)["parameters"]["annotationTagNamespaces"]["type"] == "array"
    assert bicep(MAIN)["parameters"]["annotationTagNamespaces"]["default"] == []
    assert main_parameters()["annotationTagNamespaces"] == {
        "value": "${AKSFW_ANNOTATION_TAG_NAMESPACES}"
    }
    document = config_document(panoramaHost="p")
    assert "namespaceTags" not in document and "annotationTags" not in document
    document = config_document(
        panoramaHost="p", namespaceTags=True, annotationTagNamespaces=["shop", "payments"]
    )
    assert document["namespaceTags"] is True
    assert document["annotationTags"] == {"namespaces": ["shop", "payments"]}
    settings = parse_settings(document)
    assert settings.namespace_tags is True
    assert settings.annotation_namespaces == frozenset({"shop", "payments"})
    every = parse_settings(config_document(panoramaHost="p", annotationTagNamespaces=["*"]))
    assert every.tag_options_for(None).allows_annotation_tags("anywhere")


def test_capacity_warning_reaches_the_panorama_settings_only_when_set():
    parameter = bicep(MAIN)["parameters"]["capacityWarningIps"]
    assert parameter["default"] == 0
    assert main_parameters()["capacityWarningIps"] == {"value": "${AKSFW_CAPACITY_WARNING_IPS=0}"}
    low, high = bounds(parameter)
    assert low == 0
    # The Bicep's highest value is one the configuration takes, and the next is not.
    highest = config_document(panoramaHost="p", capacityWarningIps=high)
    assert parse_settings(highest).panorama.capacity_warning_ips == high
    with pytest.raises(InputError, match="capacityWarningIps"):
        parse_settings({**highest, "panorama": {"host": "p", "capacityWarningIps": high + 1}})
    assert "capacityWarningIps" not in config_document(panoramaHost="p")["panorama"]
    document = config_document(panoramaHost="p", capacityWarningIps=80000)
    assert document["panorama"]["capacityWarningIps"] == 80000
    assert parse_settings(document).panorama.capacity_warning_ips == 80000


def test_built_configuration_with_every_opt_in_is_valid():
    document = config_document(
        panoramaHost="p",
        registerNodeSubnets=True,
        registerEgress=True,
        namespaceTags=True,
        annotationTagNamespaces=["*"],
        capacityWarningIps=1,
    )
    settings = parse_settings(document)
    assert (settings.node_subnets, settings.egress_tags, settings.namespace_tags) == (
        True,
        True,
        True,
    )
    assert settings.panorama is not None and settings.panorama.capacity_warning_ips == 1


# --- the VNet option: outbound address and address space ------------------------------

VNET = APP / "vnet.bicep"

# Ranges AKS networks commonly use: the default service CIDR, the default pod CIDR (kubenet,
# Azure CNI overlay) and the 10.224.0.0/12 of many Azure CNI and hub-spoke designs.
AKS_RANGES = [ipaddress.ip_network(n) for n in ("10.0.0.0/16", "10.244.0.0/16", "10.224.0.0/12")]


def accessor(*names: str) -> Any:
    """pycep's form of `a.b.c`."""
    if len(names) == 1:
        return names[0]
    return {
        "operator": {
            "type": "property_accessor",
            "operands": {"operand_1": names[0], "operand_2": accessor(*names[1:])},
        }
    }


def test_nat_gateway_and_its_address_exist_only_with_the_vnet_option():
    for path in BICEP_FILES:
        for type_ in ("Microsoft.Network/natGateways", "Microsoft.Network/publicIPAddresses"):
            if resources_of(path, type_):
                assert path == VNET, f"{path.name} declares {type_}"
    assert condition(bicep(MAIN)["modules"]["vnet"]) == "vnetEnabled"
    assert bicep(MAIN)["parameters"]["vnetEnabled"]["default"] is False


def test_nat_gateway_has_a_static_standard_public_ip_and_serves_the_app_subnet():
    (address,) = resources_of(VNET, "Microsoft.Network/publicIPAddresses").values()
    (gateway,) = resources_of(VNET, "Microsoft.Network/natGateways").values()
    assert body(address)["sku"]["name"] == "Standard"
    assert body(address)["properties"]["publicIPAllocationMethod"] == "Static"
    assert body(address)["zones"] == "natPublicIpZones"
    assert body(gateway)["sku"]["name"] == "Standard"
    assert body(gateway)["properties"]["publicIpAddresses"] == [
        {"id": accessor("natPublicIp", "id")}
    ]
    (network,) = resources_of(VNET, "Microsoft.Network/virtualNetworks").values()
    subnets = {s["name"]: s["properties"] for s in body(network)["properties"]["subnets"]}
    assert subnets["appSubnetName"]["natGateway"] == {"id": accessor("natGateway", "id")}
    assert "natGateway" not in subnets["endpointSubnetName"]
    # The app is integrated with that subnet, the one delegated to Flex Consumption.
    assert subnets["appSubnetName"]["delegations"][0]["properties"]["serviceName"] == (
        "Microsoft.App/environments"
    )
    assert bicep(VNET)["outputs"]["appSubnetId"]["value"] == "${vnet.id}/subnets/${appSubnetName}"
    api_params = body(bicep(MAIN)["modules"]["api"])["params"]
    assert api_params["virtualNetworkSubnetId"]["operator"]["operands"]["true_value"] == (
        accessor("vnet", "outputs", "appSubnetId")
    )


def test_nat_ip_zones_are_zone_redundant_by_default_and_can_be_emptied():
    assert bicep(MAIN)["parameters"]["vnetNatIpZones"]["default"] == "1,2,3"
    assert main_parameters()["vnetNatIpZones"] == {"value": "${AKSFW_VNET_NAT_IP_ZONES=1,2,3}"}
    zones = body(bicep(MAIN)["modules"]["vnet"])["params"]["natPublicIpZones"]
    assert zones["operator"]["operands"]["true_value"] == []


def test_nat_gateway_is_described_as_the_zonal_resource_it_is():
    # Microsoft Learn, "NAT gateway and availability zones": a (Standard) NAT gateway is a
    # zonal resource; with no zone, Azure places it in one zone it does not show; a zone
    # outage there stops its outbound traffic whatever its addresses' zones. StandardV2 is the
    # zone-redundant SKU (with StandardV2 public IPs).
    (gateway,) = resources_of(VNET, "Microsoft.Network/natGateways").values()
    assert "zones" not in body(gateway)
    assert body(gateway)["sku"]["name"] == "Standard"
    description = next(
        d["argument"]
        for d in bicep(MAIN)["parameters"]["vnetNatIpZones"]["decorators"]
        if d["type"] == "description"
    )
    assert "zonal resource" in description and "whatever the address" in description
    assert "zone-redundant NAT gateway" not in description
    network = (REPO_ROOT / "docs" / "network.md").read_text()
    for fact in ("zonal resource", "does not make the NAT gateway zone-redundant", "StandardV2"):
        assert fact in network, fact
    assert "zone-redundant where the region has availability zones" not in network


STORAGE_SUFFIX = "core.windows.net"
KEYVAULT_DNS = ".vault.azure.net"


def private_links(existing: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """vnet.bicep's private links and the zones it creates, given existing zone IDs."""
    values = {
        "existingPrivateDnsZoneIds": existing,
        "environment()": {"suffixes": {"storage": STORAGE_SUFFIX, "keyvaultDns": KEYVAULT_DNS}},
        "storageAccountId": "st",
        "keyVaultId": "kv",
    }
    plain = scope(VNET, values)

    def interpolated(name: str) -> Any:  # pycep keeps '${…}' as written
        storage = "${environment().suffixes.storage}"
        return name.replace(storage, STORAGE_SUFFIX) if storage in name else plain(name)

    targets = evaluate(variable(VNET, "privateLinkTargets"), interpolated)
    lookup = scope(VNET, values | {"privateLinkTargets": targets})
    return lookup("privateLinks"), lookup("createdZones")


HUB = "/subscriptions/99999999-9999-9999-9999-999999999999/resourceGroups/rg-hub-dns/providers/Microsoft.Network/privateDnsZones"


def test_private_dns_zones_are_created_unless_existing_ones_are_given():
    links, created = private_links([])
    assert [link["zone"] for link in links] == [
        f"privatelink.blob.{STORAGE_SUFFIX}",
        f"privatelink.queue.{STORAGE_SUFFIX}",
        "privatelink.vaultcore.azure.net",
    ]
    assert created == links and all(link["existingZoneId"] == "" for link in links)
    # A hub's zones are matched by name, in any letter case; the others are still created.
    blob, vault = (
        f"{HUB}/privatelink.blob.{STORAGE_SUFFIX}",
        f"{HUB}/PrivateLink.VaultCore.Azure.Net",
    )
    links, created = private_links([vault, blob, f"{HUB}/privatelink.eventgrid.azure.net"])
    assert {link["name"]: link["existingZoneId"] for link in links} == {
        "blob": blob,
        "queue": "",
        "vault": vault,
    }
    assert [link["name"] for link in created] == ["queue"]
    # Created zones (and only they) are linked to the network; each endpoint registers in its
    # zone, existing or created.
    for name in ("zones", "zoneLinks"):
        loop = bicep(VNET)["resources"][name]["config"]["loop_type"]
        assert loop["detail"]["array_name"] == "createdZones", name
    (groups,) = resources_of(
        VNET, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups"
    ).values()
    assert body(groups)["dependsOn"] == ["zones"]
    (config,) = body(groups)["properties"]["privateDnsZoneConfigs"]
    zone_id = config["properties"]["privateDnsZoneId"]["operator"]["operands"]
    assert zone_id["false_value"] == accessor("link", "existingZoneId")
    created = zone_id["true_value"]["function"]  # the zone of that name in this group
    assert created["type"] == "resource_id"
    assert created["parameters"]["resource_type"] == "Microsoft.Network/privateDnsZones"
    assert created["parameters"]["resource_name_1"] == accessor("link", "zone")
    assert created["parameters"]["resource_group_name"] is None


@pytest.mark.parametrize(
    ("given", "existing"),
    [
        ("", False),
        (f"{HUB}/privatelink.eventgrid.azure.net", True),
        (f"{HUB}/PRIVATELINK.EVENTGRID.AZURE.NET", True),
    ],
    ids=["created", "existing", "existing-in-another-case"],
)
def test_the_watcher_topic_uses_an_existing_event_grid_zone_too(given, existing):
    path = APP / "watcher.bicep"
    ids = [given] if given else []
    # The zone name of the public cloud (privateZoneName: the same in upper case for
    # Government and China).
    lookup = scope(
        path,
        {"existingPrivateDnsZoneIds": ids, "privateZoneName": "privatelink.eventgrid.azure.net"},
    )
    assert lookup("useExistingZone") is existing
    assert lookup("existingZoneId") == (given if existing else "")
    resources = bicep(path)["resources"]
    for name in ("zone", "zoneLink"):
        assert conjuncts(condition(resources[name])) == {
            "isPrivate",
            json.dumps(
                {"operator": {"type": "not", "operands": {"bool_value": "useExistingZone"}}},
                sort_keys=True,
            ),
        }, name
    params = body(bicep(MAIN)["modules"]["watcher"])["params"]
    assert params["existingPrivateDnsZoneIds"]["operator"]["operands"]["true_value"] == (
        "privateDnsZoneIdList"
    )


@pytest.mark.parametrize(
    ("zones", "servers", "zone_ids", "server_list"),
    [
        ("", "", [], []),
        (
            f" {HUB}/a , {HUB}/b ",
            "10.0.0.4, 10.0.0.5",
            [f"{HUB}/a", f"{HUB}/b"],
            ["10.0.0.4", "10.0.0.5"],
        ),
    ],
    ids=["defaults", "given"],
)
def test_hub_dns_zones_and_servers_come_from_the_azd_environment(
    zones, servers, zone_ids, server_list
):
    assert main_parameters()["vnetPrivateDnsZoneIds"] == {
        "value": "${AKSFW_VNET_PRIVATE_DNS_ZONE_IDS=}"
    }
    assert main_parameters()["vnetDnsServers"] == {"value": "${AKSFW_VNET_DNS_SERVERS=}"}
    lookup = scope(MAIN, {"vnetPrivateDnsZoneIds": zones, "vnetDnsServers": servers})
    assert lookup("privateDnsZoneIdList") == zone_ids
    assert lookup("dnsServerList") == server_list
    params = body(bicep(MAIN)["modules"]["vnet"])["params"]
    assert params["existingPrivateDnsZoneIds"] == "privateDnsZoneIdList"
    assert params["dnsServers"] == "dnsServerList"
    (network,) = resources_of(VNET, "Microsoft.Network/virtualNetworks").values()
    assert body(network)["properties"]["dhcpOptions"] == {"dnsServers": "dnsServers"}


def test_outbound_ip_is_an_output_for_panoramas_permitted_ip_list():
    assert bicep(VNET)["outputs"]["outboundIp"]["value"] == accessor(
        "natPublicIp", "properties", "ipAddress"
    )
    output = bicep(MAIN)["outputs"]["AKSFW_OUTBOUND_IP"]["value"]["operator"]
    assert output["type"] == "conditional"
    assert output["operands"]["condition"] == "vnetEnabled"
    assert output["operands"]["true_value"] == accessor("vnet", "outputs", "outboundIp")


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [
        ("vnetAddressPrefix", "AKSFW_VNET_ADDRESS_PREFIX"),
        ("vnetAppSubnetPrefix", "AKSFW_VNET_APP_SUBNET_PREFIX"),
        ("vnetPrivateEndpointSubnetPrefix", "AKSFW_VNET_PRIVATE_ENDPOINT_SUBNET_PREFIX"),
    ],
)
def test_vnet_prefixes_are_parameters_from_the_azd_environment(parameter, variable):
    default = bicep(MAIN)["parameters"][parameter]["default"]
    assert main_parameters()[parameter] == {"value": f"${{{variable}={default}}}"}
    assert variable in bicep(MAIN)["parameters"][parameter]["decorators"][0]["argument"]
    network = ipaddress.ip_network(default)
    for aks in AKS_RANGES:
        assert not network.overlaps(aks), f"{parameter} {default} overlaps {aks}"


def test_vnet_subnet_defaults_fit_the_address_space_without_overlapping():
    declared = bicep(MAIN)["parameters"]
    space = ipaddress.ip_network(declared["vnetAddressPrefix"]["default"])
    app = ipaddress.ip_network(declared["vnetAppSubnetPrefix"]["default"])
    endpoints = ipaddress.ip_network(declared["vnetPrivateEndpointSubnetPrefix"]["default"])
    assert app.subnet_of(space) and endpoints.subnet_of(space)
    assert not app.overlaps(endpoints)
    assert app.prefixlen <= 27  # Flex Consumption's delegated subnet
    params = body(bicep(MAIN)["modules"]["vnet"])["params"]
    assert params["addressPrefix"] == "vnetAddressPrefix"
    assert params["appSubnetPrefix"] == "vnetAppSubnetPrefix"
    assert params["privateEndpointSubnetPrefix"] == "vnetPrivateEndpointSubnetPrefix"


# --- telemetry, alerts and the workbook -----------------------------------------------

# The app's OpenTelemetry contract (METRICS) and the query check against it (kql_problems)
# are in tests/support/telemetry.py: the docs' queries are checked against them too.


def test_opentelemetry_settings_for_the_python_worker():
    settings = app_settings(bicep(APP / "api.bicep"))
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "appInsightsConnectionString"
    # The worker's own configure_azure_monitor() would send without an Entra credential.
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in settings
    assert "APPINSIGHTS_INSTRUMENTATIONKEY" not in settings


def alert_rules() -> dict[str, dict[str, Any]]:
    """The log alert rules of alerts.bicep, their queries as deployed (minutes = 30)."""
    lookup = scope(APP / "alerts.bicep", {"applyFailingMinutes": 30, "functionFailureThreshold": 5})

    def interpolate(text: str) -> str:  # pycep keeps '${name}' and '\n' as written
        text = re.sub(r"\$\{(\w+)\}", lambda m: str(lookup(m.group(1))), text)
        return text.replace("\\n", "\n")

    return {rule["name"]: {**rule, "query": interpolate(rule["query"])} for rule in lookup("rules")}


def test_alert_rules_cover_poison_queues_failing_applies_and_function_failures():
    rules = alert_rules()
    assert set(rules) == {
        "poison-queue",
        "apply-failing",
        "function-failures",
        "target-capacity",
        "target-forgot",
    }
    for name, rule in rules.items():
        query = rule["query"]
        assert kql_problems(query) == [], name
        columns = {d["name"] for d in rule["dimensions"]}
        for column in columns | {rule["measure"]}:
            assert re.search(rf"\b{column}\b", query), f"{name}: {column} is not a column"
    assert "'aksfw.queue.depth'" in rules["poison-queue"]["query"]
    assert "-poison" in rules["poison-queue"]["query"]
    apply = rules["apply-failing"]["query"]
    assert apply.startswith("let failingFor = 30m;\n")
    assert "'aksfw.apply.duration'" in apply and "outcome == 'failed'" in apply
    assert {d["name"] for d in rules["apply-failing"]["dimensions"]} == {"cluster", "target"}
    assert "AppRequests" in rules["function-failures"]["query"]
    # Every rule notifies the action group, queries the workspace, and resolves itself.
    (resource,) = resources_of(
        APP / "alerts.bicep", "Microsoft.Insights/scheduledQueryRules"
    ).values()
    properties = body(resource)["properties"]
    assert properties["scopes"] == ["workspaceId"]
    assert dotted(properties["actions"]["actionGroups"][0]) == "actionGroup.id"
    assert properties["autoMitigate"] is True


def summarized(query: str) -> tuple[str, str, list[str]]:
    """`| summarize <column> = <aggregate> by <columns>` of a query: column, aggregate, by."""
    found = re.search(r"\| summarize (\w+) = ([^\n]+?) by ([^\n]+)", query)
    assert found, query
    return found[1], found[2], [name.strip() for name in found[3].split(",")]


def test_a_target_near_its_capacity_pages_from_the_gauge_over_two_hours():
    # docs/operations.md, *Capacity*: the count is read at least once an hour (the audit),
    # so a 2-hour window, every 15 minutes, severity 2, on max(Sum) > 0 by target.
    rule = alert_rules()["target-capacity"]
    assert "'aksfw.panorama.capacity_warning'" in rule["query"]
    assert summarized(rule["query"]) == ("Over", "max(Sum)", ["target"])
    assert (rule["aggregation"], rule["measure"], rule["threshold"]) == ("Maximum", "Over", 0)
    assert [d["name"] for d in rule["dimensions"]] == ["target"]
    assert (rule["frequency"], rule["window"], rule["severity"]) == ("PT15M", "PT2H", 2)
    assert "capacityWarningIps" in rule["description"]


def test_a_target_that_forgot_pages_once_repaired_from_the_counter():
    # docs/operations.md, *A target that forgets*: sum(Sum) > 0 by target over 15 minutes,
    # severity 3 (aksfw repairs it by itself; the question is why the device restarted).
    rule = alert_rules()["target-forgot"]
    assert "'aksfw.panorama.target_forgot'" in rule["query"]
    assert summarized(rule["query"]) == ("Forgot", "sum(Sum)", ["target"])
    assert (rule["aggregation"], rule["measure"], rule["threshold"]) == ("Total", "Forgot", 0)
    assert [d["name"] for d in rule["dimensions"]] == ["target"]
    assert (rule["frequency"], rule["window"], rule["severity"]) == ("PT15M", "PT15M", 3)


def alert_table() -> list[list[str]]:
    """The cells of docs/operations.md's table of alerts, row by row."""
    lines = (REPO_ROOT / "docs" / "operations.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| alert | severity |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_every_alert_rule_has_a_row_in_the_operations_page():
    # The log rules in their order, each with its severity and the metric it reads, then
    # Event Grid's metric alerts (one row).
    rows, rules = alert_table(), list(alert_rules().values())
    assert len(rows) == len(rules) + 1
    for (_, severity, fires, *_), rule in zip(rows, rules, strict=False):
        assert int(severity) == rule["severity"], rule["name"]
        for metric in re.findall(r"'(aksfw\.[a-z._]+)'", rule["query"]):
            assert metric in fires, (rule["name"], metric)


def test_alert_email_and_failing_time_come_from_the_azd_environment():
    assert main_parameters()["alertEmail"] == {"value": "${AKSFW_ALERT_EMAIL=}"}
    assert main_parameters()["alertApplyFailingMinutes"] == {
        "value": "${AKSFW_ALERT_APPLY_FAILING_MINUTES=30}"
    }
    (group,) = resources_of(APP / "alerts.bicep", "Microsoft.Insights/actionGroups").values()
    receivers = body(group)["properties"]["emailReceivers"]["operator"]["operands"]
    # No email: the group (and so every alert) still exists, without a receiver.
    assert receivers["condition"] == {
        "function": {"type": "empty", "parameters": {"item_to_test": "alertEmail"}}
    }
    assert receivers["true_value"] == []
    assert receivers["false_value"][0]["emailAddress"] == "alertEmail"
    params = body(bicep(MAIN)["modules"]["alerts"])["params"]
    assert params["alertEmail"] == "alertEmail"
    assert params["applyFailingMinutes"] == "alertApplyFailingMinutes"


def test_dead_letters_alert_on_every_system_topic():
    path = APP / "eventgrid.bicep"
    (alerts,) = resources_of(path, "Microsoft.Insights/metricAlerts").values()
    assert {m["metric"] for m in variable(path, "deadLetterMetrics")} == {
        "DeadLetteredCount",
        "DroppedEventCount",
    }
    properties = body(alerts)["properties"]
    assert properties["scopes"] == [
        {
            "operator": {
                "type": "property_accessor",
                "operands": {"operand_1": "subscriptionTopic", "operand_2": "id"},
            }
        }
    ]
    (criterion,) = properties["criteria"]["allOf"]
    assert criterion["metricNamespace"] == "Microsoft.EventGrid/systemTopics"
    # Only this environment's event subscription (a topic may be shared).
    assert criterion["dimensions"][0]["values"] == ["eventSubscriptionName"]
    assert properties["actions"] == [{"actionGroupId": "actionGroupId"}]
    params = body(bicep(MAIN)["modules"]["monitoredSubscriptions"])["params"]
    assert dotted(params["actionGroupId"]) == "alerts.outputs.actionGroupId"


def workbook() -> dict[str, Any]:
    return json.loads((APP / "workbook.json").read_text())


def test_workbook_is_deployed_from_its_own_file_with_the_workspace_filled_in():
    (resource,) = resources_of(APP / "workbook.bicep", "Microsoft.Insights/workbooks").values()
    config = body(resource)
    assert config["kind"] == "shared"
    assert config["name"]["function"]["type"] == "guid"  # a workbook's name is a GUID
    data = config["properties"]["serializedData"]["function"]
    assert data["type"] == "replace"
    assert data["parameters"]["original_string"]["function"] == {
        "type": "load_text_content",
        "parameters": {"file_path": "workbook.json", "encoding": None},
    }
    placeholder = data["parameters"]["old_string"]
    assert workbook()["fallbackResourceIds"] == [placeholder]
    assert workbook()["version"] == "Notebook/1.0"
    assert "workbook" in bicep(MAIN)["modules"]


def test_workbook_shows_lag_counts_failures_and_queues_per_cluster_and_target():
    items = workbook()["items"]
    queries = {item["name"]: item["content"]["query"] for item in items if item["type"] == 3}
    (parameters,) = [item for item in items if item["type"] == 9]
    names = {p["name"] for p in parameters["content"]["parameters"]}
    assert names == {"TimeRange", "Cluster", "Target"}
    used = set().union(*(re.findall(r"'(aksfw\.[a-z._]+)'", q) for q in queries.values()))
    assert {
        "aksfw.event.lag",
        "aksfw.pairs.held",
        "aksfw.pairs.registered",
        "aksfw.failures",
        "aksfw.queue.depth",
        "aksfw.panorama.registered_ips",
        "aksfw.panorama.canary_checks",
    } <= used
    for name, query in queries.items():
        assert kql_problems(query) == [], name
        for reference in re.findall(r"\{(\w+)(?::\w+)?\}", query):
            assert reference in names, f"{name}: {{{reference}}}"
        assert query.count("(") == query.count(")"), name
    for item in items:
        if item["type"] == 3:
            assert item["content"]["timeContextFromParameter"] == "TimeRange"
            assert item["content"]["resourceType"] == "microsoft.operationalinsights/workspaces"


def test_workbook_shows_each_targets_registered_ips_and_canary_by_target():
    queries = {item["name"]: item["content"] for item in workbook()["items"] if item["type"] == 3}
    registered, canary = queries["registered-ips"], queries["canary"]
    assert "'aksfw.panorama.registered_ips'" in registered["query"]
    assert registered["visualization"] == "timechart"
    assert "'aksfw.panorama.canary_checks'" in canary["query"]
    # Every outcome the code counts that needs an eye has a column.
    for outcome in ("forgot", "lapsed", "failed"):
        assert f"outcome == '{outcome}'" in canary["query"], outcome
    for content in (registered, canary):  # per target, and the Target picker applies
        assert "{Target}" in content["query"]
        assert re.search(r"\| summarize .* by (bin\([^)]*\), )?target\n", content["query"])


def test_alerts_and_workbook_use_names_the_code_emits():
    sources = "\n".join(
        path.read_text(encoding="utf-8") for path in (REPO_ROOT / "aksfw_core").rglob("*.py")
    )
    missing = [name for name in METRICS if name not in sources]
    assert missing == []
