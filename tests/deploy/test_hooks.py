"""The azd hooks (infra/hooks/, declared in azure.yaml), run offline: each sh hook runs under
stand-in `azd` (an environment in a file), `az` (answers by pattern, every call logged) and
`curl` executables on PATH, and the assertions read the calls made (each naming its
subscription), the azd environment values set, the exit code and the message. The PowerShell
twins cannot run here (no pwsh on the machine): they are checked to name the same commands,
settings and values.

What only Azure can confirm (what az prints, what azd deletes) is the checklist in
docs/deploy.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from pycep import BicepParser

from tests.support import REPO_ROOT
from tests.support.az_stub import Rule, az_calls, write_az
from tests.support.azd_stub import azd_env, write_azd

HOOKS = REPO_ROOT / "infra" / "hooks"
INFRA = REPO_ROOT / "infra"

SUB = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"
ENV = "dev"
BASE = {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_ENV_NAME": ENV, "AZURE_LOCATION": "westeurope"}


def cluster(sub: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg-{name}/providers/Microsoft.ContainerService/managedClusters/{name}"


AKS_A = cluster(SUB, "aks-a")
AKS_B = cluster(OTHER, "aks-b")
AKS_C = cluster(SUB, "aks-c")
# Where this environment's event subscriptions deliver (main.bicep: the api in rg-<env>).
OURS = f"/subscriptions/{SUB}/resourceGroups/rg-{ENV}/providers/Microsoft.Web/sites/func-tok/functions/resource_event"
THEIRS = f"/subscriptions/{OTHER}/resourceGroups/rg-prod/providers/Microsoft.Web/sites/func-xyz/functions/resource_event"


def aks_row(
    cluster_id: str,
    *,
    entra: bool = True,
    local_disabled: str = "false",
    oidc: str = "true",
    workload: str = "true",
) -> str:
    """A row of the hook's `az aks list` query: id, Entra ID, local accounts disabled, OIDC
    issuer, workload identity."""
    return f"{cluster_id}\t{str(entra).lower()}\t{local_disabled}\t{oidc}\t{workload}"


@dataclass
class Run:
    done: subprocess.CompletedProcess[str]
    env: dict[str, str]
    calls: list[str]
    curl: str

    @property
    def said(self) -> str:
        return self.done.stdout + self.done.stderr

    def called(self, text: str) -> bool:
        return any(text in call for call in self.calls)


CURL_TARGET = (
    '{"cluster": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/'
    'managedClusters/aks-prod1", "tagName": "aks-prod1", "target": "panorama", "ips": 1, "tags": 2}'
)


def write_curl(bin_dir: Path, *, reachable: bool) -> Path:
    """A stand-in `curl` logging its calls: it answers the uninstall, then a status with one
    target left, then an empty one."""
    log = bin_dir.parent / "curl.log"
    answers = bin_dir.parent / "curl-answers"
    answers.mkdir()
    (answers / "uninstall").write_text(f'{{"dryRun": false, "targets": [{CURL_TARGET}]}}')
    (answers / "status.1").write_text(
        f'{{"clusters": [{{"id": "x", "targets": [{CURL_TARGET}]}}]}}'
    )
    (answers / "status.2").write_text('{"clusters": [{"id": "x", "targets": []}]}')
    (bin_dir / "curl").write_text(
        "#!/bin/sh\n"
        f'log="{log}"; answers="{answers}"\n'
        'echo "$*" >> "$log"; cat >> "$log"\n'
        'out=""; for a in "$@"; do [ "$prev" = "--output" ] && out=$a; prev=$a; url=$a; done\n'
        + ("" if reachable else 'echo "curl: (7) Failed to connect" >&2; printf 000; exit 7\n')
        + 'case "$url" in\n'
        '  */api/uninstall) cp "$answers/uninstall" "$out"; printf 202;;\n'
        '  */api/status) n=$(ls "$answers" | grep -c "^seen"); touch "$answers/seen$n";\n'
        '     if [ "$n" = 0 ]; then cp "$answers/status.1" "$out"; else cp "$answers/status.2" "$out"; fi;\n'
        "     printf 200;;\n"
        "esac\n"
    )
    (bin_dir / "curl").chmod(0o755)
    return log


def run_hook(
    tmp_path: Path,
    hook: str,
    env: dict[str, str],
    rules: Sequence[Rule] = (),
    *,
    reachable: bool = True,
    **process_env: str,
) -> Run:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    store = write_azd(bin_dir, env)
    az_log = write_az(bin_dir, rules)
    curl_log = write_curl(bin_dir, reachable=reachable)
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sleep").chmod(0o755)
    done = subprocess.run(
        ["sh", str(HOOKS / f"{hook}.sh")],
        check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", **process_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    curl = curl_log.read_text() if curl_log.exists() else ""
    return Run(done, azd_env(store), az_calls(az_log), curl)


def every_call_names(run: Run, subscriptions: set[str], *, except_: Sequence[str] = ()) -> None:
    assert run.calls
    for call in run.calls:
        if any(call.startswith(prefix) for prefix in except_):
            continue
        named = re.search(r"--subscription (\S+)", call)
        assert named and named.group(1) in subscriptions, call


# --- azure.yaml -----------------------------------------------------------------------------


def project() -> dict:
    return yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())


def test_azure_yaml_requires_an_azd_that_deletes_only_the_groups_it_created():
    # azd before 1.24.1 deleted every resource group any deployed resource named, the AKS
    # clusters' groups included (azure-dev#2916; #7698 is in 1.24.1's CHANGELOG).
    required = project()["requiredVersions"]["azd"]
    assert required == ">= 1.24.1"
    allowed = SpecifierSet(required.replace(" ", ""))
    assert "1.24.0" not in allowed and "1.23.16" not in allowed
    assert "1.24.1" in allowed and "1.31.2" in allowed


def test_the_deploy_docs_state_the_azd_version_azure_yaml_requires():
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert "1.24.1" in docs and "requiredVersions" in docs


@pytest.mark.parametrize("event", ["preprovision", "postdeploy", "predown", "postdown"])
def test_azure_yaml_runs_each_hook_in_both_shells_and_stops_on_failure(event):
    hook = project()["hooks"][event]
    assert hook["posix"] == {
        "shell": "sh",
        "run": f"infra/hooks/{event}.sh",
        "continueOnError": False,
        "interactive": False,
    }
    assert hook["windows"] == {
        "shell": "pwsh",
        "run": f"infra/hooks/{event}.ps1",
        "continueOnError": False,
        "interactive": False,
    }
    assert (REPO_ROOT / hook["posix"]["run"]).is_file()
    assert (REPO_ROOT / hook["windows"]["run"]).is_file()


@pytest.mark.subprocess
@pytest.mark.parametrize("path", sorted(HOOKS.glob("*.sh")), ids=lambda p: p.name)
def test_every_shell_hook_is_valid_sh(path):
    subprocess.run(["sh", "-n", str(path)], check=True)


# --- what the hooks assume of the Bicep -------------------------------------------------------


def bicep(path: Path) -> dict:
    return BicepParser().parse(file_path=path)


def test_the_hooks_name_the_events_group_and_the_app_group_as_main_bicep_does():
    main = (INFRA / "main.bicep").read_text()
    abbreviation = json.loads((INFRA / "abbreviations.json").read_text())["resourceGroups"]
    assert abbreviation == "rg-"
    assert "resourceGroupName: '${abbrs.resourceGroups}${environmentName}-events'" in main
    assert "name: '${abbrs.resourceGroups}${environmentName}'" in main
    # The event subscriptions deliver to the api's function; the api lives in rg-<env>.
    assert "functionId: '${api.outputs.id}/functions/resource_event'" in main
    assert re.search(r"module api 'app/api\.bicep' = \{\s+name: 'api'\s+scope: rg\b", main)
    for hook in ("predown", "postdown"):
        posix = (HOOKS / f"{hook}.sh").read_text()
        assert 'events_group="rg-$env_name-events"' in posix
        assert "/resourcegroups/rg-%s/providers/microsoft.web/sites/" in posix
        windows = (HOOKS / f"{hook}.ps1").read_text()
        assert '$eventsGroup = "rg-$envName-events"' in windows
        assert "/resourcegroups/rg-$envName/providers/microsoft.web/sites/" in windows
    assert 'events_group="rg-$env_name-events"' in (HOOKS / "preprovision.sh").read_text()
    assert '$eventsGroup = "rg-$envName-events"' in (HOOKS / "preprovision.ps1").read_text()


def test_the_events_group_and_its_alerts_carry_the_tag_the_postdown_hook_looks_for():
    main = bicep(INFRA / "main.bicep")
    assert main["variables"]["eventsTags"]["value"] == {"'aksfw-env-name'": "environmentName"}
    monitored = (INFRA / "app" / "monitored-subscription.bicep").read_text()
    assert re.search(r"resource eventsGroup [^{]+\{[^}]*\n  tags: tags\n", monitored)
    assert "tags: tags" in monitored.split("module events")[1]
    eventgrid = (INFRA / "app" / "eventgrid.bicep").read_text()
    alerts = eventgrid.split("resource deadLetterAlerts")[1]
    assert "  tags: tags\n" in alerts.split("properties:")[0]


def test_the_existing_topic_parameter_takes_the_object_the_preprovision_hook_writes():
    parameters = bicep(INFRA / "main.bicep")["parameters"]
    assert parameters["existingSystemTopicIds"]["type"] == "object"
    main = (INFRA / "main.bicep").read_text()
    # Keyed by the monitored subscription ID, as written in AKSFW_MONITORED_SUBSCRIPTION_IDS.
    assert (
        "contains(existingSystemTopicIds, subscriptionId) ? existingSystemTopicIds[subscriptionId]"
        in main
    )


@pytest.mark.parametrize(
    ("name", "parameter"),
    [
        ("AKSFW_DISCOVERED_CLUSTER_IDS", "discoveredClusterIds"),
        ("AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS", "localAccountClusterIds"),
        ("AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS", "allowLocalAccountClusters"),
        ("AKSFW_NO_OIDC_CLUSTER_IDS", "noOidcClusterIds"),
        ("AKSFW_EXISTING_SYSTEM_TOPIC_IDS", "existingSystemTopicIds"),
        ("DEPLOY_EVENT_SUBSCRIPTIONS", "deployEventSubscriptions"),
    ],
)
def test_what_the_hooks_set_reaches_the_bicep_parameter_of_that_name(name, parameter):
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert re.fullmatch(r"\$\{" + name + r"(=[^}]*)?\}", parameters[parameter]["value"])
    assert parameter in bicep(INFRA / "main.bicep")["parameters"]
    hooks = "".join(path.read_text() for path in HOOKS.glob("*.sh"))
    assert f"azd env set {name} " in hooks or name == "AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS"


# --- preprovision ----------------------------------------------------------------------------

FLEX = Rule("functionapp list-flexconsumption-locations *", "westeurope\nnortheurope\neastus")


def entra_clusters(*ids: str) -> list[Rule]:
    """`az aks list` in each of the clusters' subscriptions: Entra ID, OIDC issuer on."""
    by_sub: dict[str, list[str]] = {}
    for cluster_id in ids:
        by_sub.setdefault(cluster_id.split("/")[2], []).append(aks_row(cluster_id))
    return [
        Rule(f"aks list --subscription {sub} *", "\n".join(rows)) for sub, rows in by_sub.items()
    ]


@pytest.mark.subprocess
def test_preprovision_lists_tagged_clusters_in_each_monitored_subscription(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_MONITORED_SUBSCRIPTION_IDS": f"{SUB},{OTHER}"},
        [
            FLEX,
            Rule(f"resource list --subscription {SUB} *", AKS_A),
            Rule(f"resource list --subscription {OTHER} *", AKS_B),
            *entra_clusters(AKS_A, AKS_B),
        ],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == f"{AKS_A},{AKS_B}"
    assert run.env["AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS"] == ""
    assert run.env["AKSFW_NO_OIDC_CLUSTER_IDS"] == ""
    assert run.env["AKSFW_EXISTING_SYSTEM_TOPIC_IDS"] == "{}"
    assert run.called(f"resource list --subscription {SUB} --tag aksfw")
    assert run.called(f"resource list --subscription {OTHER} --tag aksfw")
    assert not run.called("provider register")
    every_call_names(run, {SUB, OTHER})


@pytest.mark.subprocess
def test_preprovision_defaults_to_this_subscription_and_registers_microsoft_app(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_VNET_ENABLED": "True", "AKSFW_DISCOVERY_TAG": "team=net"},
        [FLEX],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == ""
    assert run.called(f"provider register --namespace Microsoft.App --subscription {SUB} --wait")
    assert run.called(f"resource list --subscription {SUB} --tag team=net")


@pytest.mark.subprocess
def test_preprovision_asks_az_for_the_subscription_only_when_azd_has_none(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        {"AZURE_ENV_NAME": ENV},
        [Rule("account show *", OTHER)],
    )
    assert run.done.returncode == 0, run.said
    assert run.called(f"resource list --subscription {OTHER} --tag aksfw")
    every_call_names(run, {OTHER}, except_=["account show"])


@pytest.mark.subprocess
def test_preprovision_without_a_discovery_tag_finds_nothing(tmp_path):
    run = run_hook(tmp_path, "preprovision", {**BASE, "AKSFW_DISCOVERY_TAG": ""}, [FLEX])
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == ""
    assert not run.called("resource list")


@pytest.mark.subprocess
def test_preprovision_counts_a_subscription_listed_twice_once(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_MONITORED_SUBSCRIPTION_IDS": f"{SUB}, {SUB}"},
        [FLEX, Rule("resource list *", AKS_A), *entra_clusters(AKS_A)],
    )
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == AKS_A
    assert sum("resource list" in call for call in run.calls) == 1


# The region.


@pytest.mark.subprocess
def test_preprovision_stops_in_a_region_without_flex_consumption_naming_those_with_it(tmp_path):
    run = run_hook(tmp_path, "preprovision", {**BASE, "AZURE_LOCATION": "brazilsoutheast"}, [FLEX])
    assert run.done.returncode == 1
    assert "the region brazilsoutheast does not offer Flex Consumption" in run.done.stderr
    assert "eastus northeurope westeurope" in run.done.stderr
    assert "azd env set AZURE_LOCATION <region>" in run.done.stderr
    assert run.called(f"functionapp list-flexconsumption-locations --subscription {SUB}")
    assert "AKSFW_DISCOVERED_CLUSTER_IDS" not in run.env  # stopped before anything else


@pytest.mark.subprocess
def test_preprovision_compares_regions_by_name_whatever_their_spelling(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AZURE_LOCATION": "West Europe"},
        [Rule("functionapp list-flexconsumption-locations *", "North Europe\nWest Europe")],
    )
    assert run.done.returncode == 0, run.said
    assert "westeurope offers Flex Consumption" in run.done.stdout


# A soft-deleted Key Vault.


def deleted_vault(env: str = ENV, location: str = "westeurope", protected: str = "false") -> Rule:
    row = f"kv-tok123\t{location}\t{env}\t{protected}\t2027-03-01T10:00:00+00:00"
    return Rule("keyvault list-deleted *", f"kv-other\twesteurope\tprod\tfalse\tnull\n{row}")


@pytest.mark.subprocess
def test_preprovision_stops_on_a_deleted_vault_of_this_environment_with_the_purge_command(tmp_path):
    run = run_hook(tmp_path, "preprovision", BASE, [FLEX, deleted_vault()])
    assert run.done.returncode == 1
    assert "a deleted Key Vault of this environment, kv-tok123 (westeurope)" in run.done.stderr
    assert (
        f"az keyvault purge --subscription {SUB} --name kv-tok123 --location westeurope"
        in run.done.stderr
    )
    assert run.called(f"keyvault list-deleted --subscription {SUB} --resource-type vault")
    assert 'properties.tags."azd-env-name"' in next(c for c in run.calls if "list-deleted" in c)


@pytest.mark.subprocess
def test_preprovision_says_why_a_purge_protected_vault_cannot_be_purged(tmp_path):
    run = run_hook(tmp_path, "preprovision", BASE, [FLEX, deleted_vault(protected="true")])
    assert run.done.returncode == 1
    assert "purge protection keeps it until 2027-03-01T10:00:00+00:00" in run.done.stderr
    assert "another environment name (azd env new)" in run.done.stderr
    assert f"az keyvault recover --subscription {SUB} --name kv-tok123" in run.done.stderr
    assert "keyvault purge" not in run.done.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("vault", [deleted_vault(env="prod"), deleted_vault(location="eastus")])
def test_preprovision_ignores_deleted_vaults_of_other_environments_and_regions(tmp_path, vault):
    run = run_hook(tmp_path, "preprovision", BASE, [FLEX, vault])
    assert run.done.returncode == 0, run.said


# DEPLOY_EVENT_SUBSCRIPTIONS.


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("env", "rules"),
    [
        ({}, []),
        ({"AZURE_FUNCTION_APP_NAME": "func-tok"}, [Rule("group exists *", "false")]),
        (
            {"AZURE_FUNCTION_APP_NAME": "func-tok"},
            [Rule("group exists *", "true"), Rule("functionapp show *", status=3)],
        ),
    ],
    ids=["no-app-named", "group-gone", "app-gone"],
)
def test_preprovision_turns_event_subscriptions_off_when_their_app_is_gone(tmp_path, env, rules):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "DEPLOY_EVENT_SUBSCRIPTIONS": "true", **env},
        [FLEX, *rules],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["DEPLOY_EVENT_SUBSCRIPTIONS"] == "false"
    assert "come back after the deploy" in run.done.stdout
    every_call_names(run, {SUB})


@pytest.mark.subprocess
@pytest.mark.parametrize("show_status", [0, 1], ids=["app-exists", "az-failed"])
def test_preprovision_keeps_event_subscriptions_on_while_the_app_may_exist(tmp_path, show_status):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "DEPLOY_EVENT_SUBSCRIPTIONS": "true", "AZURE_FUNCTION_APP_NAME": "func-tok"},
        [FLEX, Rule("group exists *", "true"), Rule("functionapp show *", status=show_status)],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["DEPLOY_EVENT_SUBSCRIPTIONS"] == "true"
    assert run.called(
        f"functionapp show --subscription {SUB} --resource-group rg-{ENV} --name func-tok"
    )


# Clusters with local accounts.


@pytest.mark.subprocess
def test_preprovision_leaves_out_tagged_clusters_whose_user_credential_is_an_admin_one(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        BASE,
        [
            FLEX,
            Rule("resource list *", f"{AKS_A}\n{AKS_C}"),
            Rule(
                f"aks list --subscription {SUB} *",
                # aks-a: no Entra ID, local accounts on. aks-c: Entra ID with local accounts
                # still on: its user credential is an Entra ID one, it keeps its roles.
                f"{aks_row(AKS_A, entra=False)}\n{aks_row(AKS_C, local_disabled='false')}",
            ),
        ],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == AKS_C
    assert run.env["AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS"] == AKS_A.lower()
    assert f"{AKS_A.lower()} signs in with local accounts" in run.done.stderr
    assert "left out of AKSFW_DISCOVERED_CLUSTER_IDS" in run.done.stderr
    assert "AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS true" in run.done.stderr
    assert "aks-c signs in" not in run.done.stderr
    query = next(call for call in run.calls if call.startswith("aks list"))
    assert "aadProfile != `null`" in query and "disableLocalAccounts" in query


@pytest.mark.subprocess
def test_preprovision_lists_explicit_clusters_with_local_accounts_read_from_the_json(tmp_path):
    # JSON may escape "/" as "\/"; the ID's case is the user's.
    explicit = json.dumps([{"id": AKS_B, "alias": "b"}, {"id": AKS_A.upper()}])
    explicit = explicit.replace(AKS_B, AKS_B.replace("/", "\\/"))
    assert "\\/resourceGroups\\/rg-aks-b" in explicit
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_CLUSTERS": explicit, "AKSFW_DISCOVERY_TAG": ""},
        [
            FLEX,
            Rule(f"aks list --subscription {OTHER} *", aks_row(AKS_B, entra=False)),
            Rule(f"aks list --subscription {SUB.upper()} *", aks_row(AKS_A)),
        ],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS"] == AKS_B.lower()
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == ""
    assert "not granted the Cluster User Role" in run.done.stderr
    assert run.called(f"aks list --subscription {OTHER}")


@pytest.mark.subprocess
def test_preprovision_grants_local_account_clusters_only_when_allowed(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS": "true"},
        [
            FLEX,
            Rule("resource list *", AKS_A),
            Rule("aks list *", aks_row(AKS_A, entra=False)),
        ],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == AKS_A
    assert run.env["AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS"] == AKS_A.lower()
    assert (
        "AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS=true: the app's identity gets it anyway"
        in run.done.stderr
    )


@pytest.mark.subprocess
def test_preprovision_warns_of_a_cluster_that_no_one_can_sign_in_to_with_its_credential(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        BASE,
        [
            FLEX,
            Rule("resource list *", AKS_A),
            Rule("aks list *", aks_row(AKS_A, entra=False, local_disabled="true")),
        ],
    )
    assert run.env["AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS"] == ""
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == AKS_A
    assert "neither Microsoft Entra ID authentication nor local accounts" in run.done.stderr


@pytest.mark.subprocess
def test_preprovision_takes_a_cluster_it_cannot_read_as_unsafe(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_CLUSTERS": json.dumps([{"id": AKS_B}]), "AKSFW_WATCHER_ENABLED": "true"},
        [FLEX],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS"] == AKS_B.lower()
    assert run.env["AKSFW_NO_OIDC_CLUSTER_IDS"] == AKS_B.lower()
    assert f"could not read {AKS_B.lower()}" in run.done.stderr


# Watched clusters without an OIDC issuer.


@pytest.mark.subprocess
def test_preprovision_leaves_watched_clusters_without_oidc_out_of_the_watcher_naming_the_fix(
    tmp_path,
):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_WATCHER_ENABLED": "true", "AKSFW_CLUSTERS": json.dumps([{"id": AKS_B}])},
        [
            FLEX,
            Rule("resource list *", f"{AKS_A}\n{AKS_C}"),
            Rule(
                f"aks list --subscription {SUB} *",
                # aks-a: OIDC on. aks-c: no OIDC, but left out for its local accounts: not watched.
                f"{aks_row(AKS_A)}\n{aks_row(AKS_C, entra=False, oidc='null')}",
            ),
            Rule(f"aks list --subscription {OTHER} *", aks_row(AKS_B, oidc="false")),
        ],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_NO_OIDC_CLUSTER_IDS"] == AKS_B.lower()
    assert f"{AKS_B.lower()} has no OIDC issuer or no workload identity" in run.done.stderr
    assert (
        f"az aks update --subscription {OTHER} --resource-group rg-aks-b --name aks-b "
        "--enable-oidc-issuer --enable-workload-identity"
    ) in run.done.stderr


@pytest.mark.subprocess
def test_preprovision_leaves_watched_clusters_without_workload_identity_out_of_the_watcher(
    tmp_path,
):
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_WATCHER_ENABLED": "true"},
        [FLEX, Rule("resource list *", AKS_A), Rule("aks list *", aks_row(AKS_A, workload="null"))],
    )
    assert run.done.returncode == 0, run.said
    assert run.env["AKSFW_NO_OIDC_CLUSTER_IDS"] == AKS_A.lower()
    assert run.env["AKSFW_DISCOVERED_CLUSTER_IDS"] == AKS_A  # its roles: it is only not watched
    assert "has no OIDC issuer or no workload identity" in run.done.stderr
    assert "securityProfile.workloadIdentity.enabled" in next(
        call for call in run.calls if call.startswith("aks list")
    )


@pytest.mark.subprocess
def test_preprovision_lists_no_oidc_clusters_without_the_watcher(tmp_path):
    run = run_hook(
        tmp_path,
        "preprovision",
        BASE,
        [FLEX, Rule("resource list *", AKS_A), Rule("aks list *", aks_row(AKS_A, oidc="false"))],
    )
    assert run.env["AKSFW_NO_OIDC_CLUSTER_IDS"] == ""
    assert "OIDC" not in run.done.stderr


# Existing Event Grid system topics.


def topic(sub: str, group: str, name: str = "egst-any") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.EventGrid/systemTopics/{name}"


@pytest.mark.subprocess
def test_preprovision_passes_in_the_existing_topics_this_environment_did_not_create(tmp_path):
    own = topic(SUB, f"rg-{ENV}-events", "egst-aksfw-tok")
    shared = topic(OTHER, "rg-prod-events", "egst-aksfw-xyz")
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_MONITORED_SUBSCRIPTION_IDS": f"{SUB},{OTHER}"},
        [
            FLEX,
            Rule(
                f"eventgrid system-topic list --subscription {SUB} *",
                f"{topic(SUB, 'rg-st', 'st-topic')}\tMicrosoft.Storage.StorageAccounts\tnull\n"
                f"{own}\tMicrosoft.Resources.Subscriptions\tSystemAssigned",
            ),
            Rule(
                f"eventgrid system-topic list --subscription {OTHER} *",
                f"{shared}\tmicrosoft.resources.subscriptions\tSystemAssigned, UserAssigned",
            ),
        ],
    )
    assert run.done.returncode == 0, run.said
    assert json.loads(run.env["AKSFW_EXISTING_SYSTEM_TOPIC_IDS"]) == {OTHER: shared}
    assert "this environment's own" in run.done.stdout
    every_call_names(run, {SUB, OTHER})


@pytest.mark.subprocess
def test_preprovision_stops_on_an_existing_topic_without_an_identity_naming_the_command(tmp_path):
    shared = topic(OTHER, "rg-tools", "subscription-events")
    run = run_hook(
        tmp_path,
        "preprovision",
        {**BASE, "AKSFW_MONITORED_SUBSCRIPTION_IDS": OTHER},
        [
            FLEX,
            Rule(
                "eventgrid system-topic list *",
                f"{shared}\tMicrosoft.Resources.Subscriptions\tnull",
            ),
        ],
    )
    assert run.done.returncode == 1
    assert json.loads(run.env["AKSFW_EXISTING_SYSTEM_TOPIC_IDS"]) == {OTHER: shared}
    assert "has no system-assigned identity" in run.done.stderr
    assert (
        f"az eventgrid system-topic update --subscription {OTHER} --resource-group rg-tools "
        "--name subscription-events --identity systemassigned"
    ) in run.done.stderr


# --- predown ---------------------------------------------------------------------------------

APP_ENV = {**BASE, "AZURE_FUNCTION_APP_NAME": "func-tok", "RESOURCE_GROUP": f"rg-{ENV}"}
DEPLOYED = [
    Rule("group exists *", "false"),
    Rule("functionapp show *", "func-tok.azurewebsites.net"),
    Rule("functionapp function list *", "func-tok/resource_event\nfunc-tok/resync"),
    Rule("functionapp keys list *", "secret-key-1"),
]


@pytest.mark.subprocess
def test_predown_uninstalls_and_waits_until_nothing_remains(tmp_path):
    run = run_hook(tmp_path, "predown", APP_ENV, DEPLOYED)
    assert run.done.returncode == 0, run.said
    assert "aksfw:   " + CURL_TARGET in run.done.stdout
    assert "1 target(s) still hold tags; waiting." in run.done.stdout
    assert "no cluster holds a target" in run.done.stdout
    assert run.called(
        f"functionapp keys list --subscription {SUB} --resource-group rg-{ENV} --name func-tok"
    )
    assert "--request POST" in run.curl and '--data {"dryRun": false}' in run.curl
    assert "https://func-tok.azurewebsites.net/api/uninstall" in run.curl
    assert run.curl.count("https://func-tok.azurewebsites.net/api/status") == 2
    # The key reaches curl on stdin as a header, never on its command line or in a URL.
    assert 'header = "x-functions-key: secret-key-1"' in run.curl
    assert all("secret-key-1" not in line for line in run.curl.splitlines() if "--request" in line)
    assert "secret-key-1" not in run.said
    every_call_names(run, {SUB})


@pytest.mark.subprocess
def test_predown_dry_run_only_shows_and_stops_azd_down(tmp_path):
    run = run_hook(tmp_path, "predown", APP_ENV, DEPLOYED, AKSFW_UNINSTALL_DRY_RUN="true")
    assert run.done.returncode == 1
    assert '--data {"dryRun": true}' in run.curl
    assert "/api/status" not in run.curl
    assert "aksfw:   " + CURL_TARGET in run.done.stdout
    assert "nothing removed; azd down stops here" in run.done.stderr


@pytest.mark.subprocess
def test_predown_fails_loudly_when_the_app_is_unreachable(tmp_path):
    run = run_hook(tmp_path, "predown", APP_ENV, DEPLOYED, reachable=False)
    assert run.done.returncode == 1
    assert "/api/uninstall could not be reached" in run.done.stderr
    assert "still on Panorama" in run.done.stderr
    assert "AKSFW_SKIP_UNINSTALL=true azd down" in run.done.stderr


@pytest.mark.subprocess
def test_predown_skips_only_when_told(tmp_path):
    run = run_hook(tmp_path, "predown", APP_ENV, DEPLOYED, AKSFW_SKIP_UNINSTALL="true")
    assert run.done.returncode == 0
    assert "stay on Panorama" in run.done.stderr
    assert run.curl == ""
    assert run.calls == [f"group exists --subscription {SUB} --name rg-{ENV}-events"]


@pytest.mark.subprocess
@pytest.mark.parametrize("env", [{}, BASE], ids=["nothing", "no-app"])
def test_predown_without_an_app_has_nothing_to_do(tmp_path, env):
    run = run_hook(tmp_path, "predown", env, DEPLOYED)
    assert run.done.returncode == 0 and "nothing to uninstall" in run.done.stdout
    assert run.curl == ""
    assert not run.called("functionapp")


@pytest.mark.subprocess
def test_predown_lets_azd_down_go_on_for_an_app_provisioned_but_never_deployed(tmp_path):
    never_deployed = [rule for rule in DEPLOYED if "function list" not in rule.pattern]
    run = run_hook(tmp_path, "predown", APP_ENV, never_deployed)
    assert run.done.returncode == 0, run.said
    assert "never deployed, it registered nothing; nothing to uninstall" in run.done.stdout
    assert run.called(
        f"functionapp function list --subscription {SUB} --resource-group rg-{ENV} --name func-tok"
    )
    assert run.curl == "" and not run.called("keys list")


@pytest.mark.subprocess
def test_predown_stops_when_a_deployed_app_lists_no_functions(tmp_path):
    never_deployed = [rule for rule in DEPLOYED if "function list" not in rule.pattern]
    run = run_hook(
        tmp_path, "predown", {**APP_ENV, "DEPLOY_EVENT_SUBSCRIPTIONS": "true"}, never_deployed
    )
    assert run.done.returncode == 1
    assert "lists no functions, yet it was deployed" in run.done.stderr
    assert "still on Panorama" in run.done.stderr


@pytest.mark.subprocess
def test_predown_lets_azd_down_go_on_when_the_app_is_gone(tmp_path):
    gone = [Rule("functionapp show *", status=3), *DEPLOYED]
    run = run_hook(tmp_path, "predown", APP_ENV, gone)
    assert run.done.returncode == 0, run.said
    assert "is not in rg-dev (never created, or deleted)" in run.done.stdout
    assert run.curl == ""


@pytest.mark.subprocess
def test_predown_stops_when_the_app_cannot_be_read(tmp_path):
    run = run_hook(tmp_path, "predown", APP_ENV, [Rule("functionapp show *", status=1), *DEPLOYED])
    assert run.done.returncode == 1
    assert "could not read the Function App func-tok in rg-dev" in run.done.stderr


def events_topic(*destinations: str) -> list[Rule]:
    """rg-<env>-events exists in the app's subscription; its topic delivers to each destination."""
    rows = "\n".join(f"aksfw-{index}\t{where}" for index, where in enumerate(destinations))
    return [
        Rule(f"group exists --subscription {SUB} --name rg-{ENV}-events", "true"),
        Rule(
            f"eventgrid system-topic list --subscription {SUB} --resource-group rg-{ENV}-events *",
            "egst-aksfw-tok",
        ),
        Rule("eventgrid system-topic event-subscription list *", rows),
    ]


@pytest.mark.subprocess
def test_predown_stops_before_azd_deletes_a_topic_another_environment_uses(tmp_path):
    run = run_hook(tmp_path, "predown", APP_ENV, [*events_topic(OURS, THEIRS, "null"), *DEPLOYED])
    assert run.done.returncode == 1
    assert f"egst-aksfw-tok: aksfw-1 -> {THEIRS}" in run.done.stderr
    assert "egst-aksfw-tok: aksfw-2 -> an endpoint outside Resource Manager" in run.done.stderr
    assert "aksfw-0" not in run.done.stderr  # its own
    assert "AKSFW_DELETE_SHARED_TOPIC=true azd down" in run.done.stderr
    assert "no tag removed" in run.done.stderr
    assert run.curl == "" and not run.called("functionapp")
    every_call_names(run, {SUB})


@pytest.mark.subprocess
def test_predown_deletes_a_shared_topic_only_when_told(tmp_path):
    run = run_hook(
        tmp_path,
        "predown",
        APP_ENV,
        [*events_topic(OURS, THEIRS), *DEPLOYED],
        AKSFW_DELETE_SHARED_TOPIC="true",
    )
    assert run.done.returncode == 0, run.said
    assert "deleting it anyway" in run.done.stderr
    assert "/api/uninstall" in run.curl


@pytest.mark.subprocess
def test_predown_lets_azd_delete_a_topic_only_this_environment_uses(tmp_path):
    run = run_hook(tmp_path, "predown", APP_ENV, [*events_topic(OURS.upper()), *DEPLOYED])
    assert run.done.returncode == 0, run.said
    assert "/api/uninstall" in run.curl


@pytest.mark.subprocess
def test_predown_gives_azd_an_events_group_to_find_when_all_of_them_are_elsewhere(tmp_path):
    run = run_hook(
        tmp_path, "predown", {**APP_ENV, "AKSFW_MONITORED_SUBSCRIPTION_IDS": OTHER}, DEPLOYED
    )
    assert run.done.returncode == 0, run.said
    assert run.calls[-1] == (
        f"group create --subscription {SUB} --name rg-{ENV}-events --location westeurope "
        f"--tags aksfw-env-name={ENV} --output none"
    )
    assert "the postdown hook deletes them" in run.done.stdout


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "env",
    [
        {"AKSFW_MONITORED_SUBSCRIPTION_IDS": f"{OTHER},{SUB}"},
        {
            "AKSFW_MONITORED_SUBSCRIPTION_IDS": OTHER,
            "AKSFW_EXISTING_SYSTEM_TOPIC_IDS": json.dumps({OTHER: topic(OTHER, "rg-tools")}),
        },
        {},
    ],
    ids=["app-subscription-monitored", "existing-topic-only", "default"],
)
def test_predown_creates_no_events_group_where_azd_has_one_or_needs_none(tmp_path, env):
    run = run_hook(tmp_path, "predown", {**APP_ENV, **env}, DEPLOYED)
    assert run.done.returncode == 0, run.said
    assert not run.called("group create")


# --- postdown --------------------------------------------------------------------------------

POSTDOWN_ENV = {**BASE, "DEPLOY_EVENT_SUBSCRIPTIONS": "true"}


@pytest.mark.subprocess
def test_postdown_turns_event_subscriptions_off_for_the_next_provision(tmp_path):
    run = run_hook(tmp_path, "postdown", POSTDOWN_ENV)
    assert run.done.returncode == 0, run.said
    assert run.env["DEPLOY_EVENT_SUBSCRIPTIONS"] == "false"
    assert (
        f"group list --subscription {SUB} --tag aksfw-env-name={ENV} --query [].name --output tsv"
        in run.calls
    )
    assert not run.called("delete")


@pytest.mark.subprocess
def test_postdown_of_an_environment_never_provisioned_only_turns_the_flag_off(tmp_path):
    run = run_hook(tmp_path, "postdown", {"DEPLOY_EVENT_SUBSCRIPTIONS": "true"})
    assert run.done.returncode == 0, run.said
    assert run.env["DEPLOY_EVENT_SUBSCRIPTIONS"] == "false"
    assert run.calls == []


def own_events_group(sub: str, *destinations: str) -> list[Rule]:
    rows = "\n".join(f"aksfw-{index}\t{where}" for index, where in enumerate(destinations))
    return [
        Rule(f"group list --subscription {sub} --tag aksfw-env-name={ENV} *", f"rg-{ENV}-events"),
        Rule(
            f"eventgrid system-topic list --subscription {sub} --resource-group rg-{ENV}-events *",
            "egst-aksfw-tok",
        ),
        Rule(f"eventgrid system-topic event-subscription list --subscription {sub} *", rows),
    ]


@pytest.mark.subprocess
def test_postdown_deletes_the_events_groups_azd_leaves_in_other_subscriptions(tmp_path):
    run = run_hook(
        tmp_path,
        "postdown",
        {**POSTDOWN_ENV, "AKSFW_MONITORED_SUBSCRIPTION_IDS": f"{SUB},{OTHER}"},
        own_events_group(OTHER, OURS),
    )
    assert run.done.returncode == 0, run.said
    assert f"group delete --subscription {OTHER} --name rg-{ENV}-events --yes" in run.calls
    assert not run.called(f"group delete --subscription {SUB}")
    assert "nothing of this environment is left" in run.done.stdout
    every_call_names(run, {SUB, OTHER})


@pytest.mark.subprocess
def test_postdown_keeps_a_topic_another_environment_uses_and_removes_only_its_own_part(tmp_path):
    run = run_hook(
        tmp_path,
        "postdown",
        {**POSTDOWN_ENV, "AKSFW_MONITORED_SUBSCRIPTION_IDS": OTHER},
        [
            *own_events_group(OTHER, OURS, THEIRS),
            Rule(
                f"monitor metrics alert list --subscription {OTHER} *",
                "aksfw-tok-dead-lettered\naksfw-tok-dropped",
            ),
        ],
    )
    assert run.done.returncode == 0, run.said
    assert not run.called("group delete")
    assert f"keeping rg-{ENV}-events in subscription {OTHER}" in run.done.stderr
    assert "egst-aksfw-tok: aksfw-1" in run.done.stderr
    assert f"az group delete --subscription {OTHER} --name rg-{ENV}-events" in run.done.stderr
    deleted = [call for call in run.calls if " delete " in call]
    assert deleted == [
        f"eventgrid system-topic event-subscription delete --subscription {OTHER} --resource-group rg-{ENV}-events "
        "--system-topic-name egst-aksfw-tok --name aksfw-0 --yes",
        f"monitor metrics alert delete --subscription {OTHER} --resource-group rg-{ENV}-events --name aksfw-tok-dead-lettered",
        f"monitor metrics alert delete --subscription {OTHER} --resource-group rg-{ENV}-events --name aksfw-tok-dropped",
    ]
    alerts = next(call for call in run.calls if "alert list" in call)
    assert f"""[?tags."aksfw-env-name"=='{ENV}'].name""" in alerts


@pytest.mark.subprocess
def test_postdown_removes_its_event_subscription_and_alerts_from_an_existing_topic(tmp_path):
    shared = topic(OTHER, "rg-tools", "subscription-events")
    run = run_hook(
        tmp_path,
        "postdown",
        {
            **POSTDOWN_ENV,
            "AKSFW_MONITORED_SUBSCRIPTION_IDS": f"{SUB},{OTHER}",
            "AKSFW_EXISTING_SYSTEM_TOPIC_IDS": json.dumps({OTHER: shared}),
        },
        [
            Rule(
                f"eventgrid system-topic event-subscription list --subscription {OTHER} --resource-group rg-tools "
                "--system-topic-name subscription-events *",
                f"aksfw-xyz\t{THEIRS}\naksfw-tok\t{OURS}\nother-tool\tnull",
            ),
            Rule(
                f"monitor metrics alert list --subscription {OTHER} --resource-group rg-tools *",
                "aksfw-tok-dropped",
            ),
        ],
    )
    assert run.done.returncode == 0, run.said
    deleted = [call for call in run.calls if " delete " in call]
    assert deleted == [
        f"eventgrid system-topic event-subscription delete --subscription {OTHER} --resource-group rg-tools "
        "--system-topic-name subscription-events --name aksfw-tok --yes",
        f"monitor metrics alert delete --subscription {OTHER} --resource-group rg-tools --name aksfw-tok-dropped",
    ]
    every_call_names(run, {SUB, OTHER})


@pytest.mark.subprocess
def test_postdown_deletes_the_empty_events_group_predown_made_for_azd(tmp_path):
    run = run_hook(
        tmp_path,
        "postdown",
        {**POSTDOWN_ENV, "AKSFW_MONITORED_SUBSCRIPTION_IDS": OTHER},
        [Rule(f"group list --subscription {SUB} *", f"rg-{ENV}-events")],
    )
    assert run.done.returncode == 0, run.said
    assert f"group delete --subscription {SUB} --name rg-{ENV}-events --yes" in run.calls


@pytest.mark.subprocess
def test_postdown_names_what_it_could_not_delete_and_fails_so_azd_down_can_retry(tmp_path):
    run = run_hook(
        tmp_path,
        "postdown",
        {**POSTDOWN_ENV, "AKSFW_MONITORED_SUBSCRIPTION_IDS": OTHER},
        [Rule("group delete *", status=1), *own_events_group(OTHER, OURS)],
    )
    assert run.done.returncode == 1
    assert run.env["DEPLOY_EVENT_SUBSCRIPTIONS"] == "false"
    assert f"could not delete rg-{ENV}-events in subscription {OTHER}" in run.done.stderr
    assert "run 'azd down' again to retry" in run.done.stderr


# --- the PowerShell twins --------------------------------------------------------------------

# What each hook's sh and ps1 versions both name: az commands, settings, values and messages.
SAME_IN_BOTH = {
    "preprovision": [
        "functionapp list-flexconsumption-locations",
        "keyvault list-deleted --subscription",
        "--resource-type vault",
        "azd-env-name",
        "purgeProtectionEnabled",
        "scheduledPurgeDate",
        "az keyvault purge --subscription",
        "az keyvault recover --subscription",
        "DEPLOY_EVENT_SUBSCRIPTIONS",
        "group exists --subscription",
        "functionapp show --subscription",
        "-eq 3|= 3",
        "az provider register --namespace Microsoft.App",
        "resource list --subscription",
        "[?type=='Microsoft.ContainerService/managedClusters'].id",
        "aks list --subscription",
        "to_string(aadProfile != `null`), to_string(disableLocalAccounts), "
        "to_string(oidcIssuerProfile.enabled), to_string(securityProfile.workloadIdentity.enabled)",
        'microsoft\\.containerservice/managedclusters/[^/" ]+',
        "AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS",
        "AKSFW_WATCHER_ENABLED",
        "AKSFW_DISCOVERY_TAG",
        "AKSFW_MONITORED_SUBSCRIPTION_IDS",
        "AKSFW_VNET_ENABLED",
        "AKSFW_CLUSTERS",
        "azd env set AKSFW_DISCOVERED_CLUSTER_IDS",
        "azd env set AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS",
        "azd env set AKSFW_NO_OIDC_CLUSTER_IDS",
        "azd env set AKSFW_EXISTING_SYSTEM_TOPIC_IDS",
        "--enable-oidc-issuer --enable-workload-identity",
        "eventgrid system-topic list --subscription",
        "microsoft.resources.subscriptions",
        "systemassigned",
        "az eventgrid system-topic update --subscription",
        "--identity systemassigned",
        "does not offer Flex Consumption",
        "signs in with local accounts",
        "has no OIDC issuer",
        "could not read",
    ],
    "predown": [
        "AKSFW_SKIP_UNINSTALL",
        "AKSFW_UNINSTALL_DRY_RUN",
        "AKSFW_UNINSTALL_WAIT_SECONDS",
        "AKSFW_DELETE_SHARED_TOPIC",
        "AKSFW_EXISTING_SYSTEM_TOPIC_IDS",
        "AKSFW_MONITORED_SUBSCRIPTION_IDS",
        "DEPLOY_EVENT_SUBSCRIPTIONS",
        "AZURE_FUNCTION_APP_NAME",
        "group exists --subscription",
        "eventgrid system-topic list --subscription",
        "eventgrid system-topic event-subscription list --subscription",
        "to_string(destination.resourceId)",
        "functionapp show --subscription",
        "functionapp function list --subscription",
        "functionapp keys list --subscription",
        "functionKeys.default",
        "group create --subscription",
        "aksfw-env-name=",
        "x-functions-key",
        "/api/uninstall",
        "/api/status",
        "-eq 3|= 3",
        "never deployed",
        "also delivers to others",
    ],
    "postdown": [
        "azd env set DEPLOY_EVENT_SUBSCRIPTIONS false",
        "AKSFW_EXISTING_SYSTEM_TOPIC_IDS",
        "AKSFW_MONITORED_SUBSCRIPTION_IDS",
        "group list --subscription",
        '--tag "aksfw-env-name=',
        "eventgrid system-topic list --subscription",
        "eventgrid system-topic event-subscription list --subscription",
        "to_string(destination.resourceId)",
        "eventgrid system-topic event-subscription delete --subscription",
        "monitor metrics alert list --subscription",
        "monitor metrics alert delete --subscription",
        "aksfw-env-name",
        "group delete --subscription",
        "--yes",
        "also delivers to others",
        "run 'azd down' again to retry",
    ],
}


@pytest.mark.parametrize("hook", sorted(SAME_IN_BOTH))
def test_the_powershell_twin_does_what_the_sh_hook_does(hook):
    posix = (HOOKS / f"{hook}.sh").read_text()
    windows = (HOOKS / f"{hook}.ps1").read_text()
    for needed in SAME_IN_BOTH[hook]:
        for text, name in ((posix, "sh"), (windows, "ps1")):
            assert any(option.lower() in text.lower() for option in needed.split("|")), (
                name,
                needed,
            )


def az_calls_in(text: str, call: str) -> list[str]:
    """The az invocations in a hook's code (comments and messages aside), continuation lines
    joined: `call` is the regular expression of what starts one."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    code = re.sub(r"(?:\\|`)\n\s*", " ", code)
    return re.findall(call + r" ([a-z][^\n]*)", code, re.M)


@pytest.mark.parametrize("hook", ["preprovision", "predown", "postdown"])
def test_every_az_call_of_the_powershell_twin_names_its_subscription(hook):
    calls = az_calls_in((HOOKS / f"{hook}.ps1").read_text(), r"(?:& az|Invoke-AzTsv(?:OrStop)?)")
    assert len(calls) >= 5
    for call in calls:
        assert "--subscription" in call or call.startswith("account show"), call


@pytest.mark.parametrize("hook", ["preprovision", "predown", "postdown"])
def test_every_az_call_of_the_sh_hook_names_its_subscription(hook):
    calls = az_calls_in((HOOKS / f"{hook}.sh").read_text(), r"(?:^\s*|\$\()(?:az|az_tsv)")
    assert len(calls) >= 5
    for call in calls:
        assert "--subscription" in call or call.startswith("account show"), call


def az_verbs(call: str) -> str:
    """An az call's command words, e.g. `eventgrid system-topic list`."""
    return call.split(" --", maxsplit=1)[0].strip()


@pytest.mark.parametrize("hook", ["preprovision", "predown", "postdown"])
def test_the_powershell_twin_makes_the_same_az_calls(hook):
    posix = az_calls_in((HOOKS / f"{hook}.sh").read_text(), r"(?:^\s*|\$\()(?:az|az_tsv)")
    windows = az_calls_in((HOOKS / f"{hook}.ps1").read_text(), r"(?:& az|Invoke-AzTsv(?:OrStop)?)")
    assert sorted(map(az_verbs, posix)) == sorted(map(az_verbs, windows))


# --- postdeploy --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["postdeploy.sh", "postdeploy.ps1"])
def test_postdeploy_hook_provisions_the_event_subscriptions_once(name):
    text = (HOOKS / name).read_text()
    assert "azd env get-value DEPLOY_EVENT_SUBSCRIPTIONS" in text
    assert "azd env set DEPLOY_EVENT_SUBSCRIPTIONS true" in text
    assert "azd provision --no-prompt" in text
    # The early exit when the flag is already on comes before any provisioning.
    assert text.index("'true'" if name.endswith("ps1") else '= "true"') < text.index(
        "azd provision"
    )
