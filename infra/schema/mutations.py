"""The mutation pass: single, realistic mistakes made by hand in a copy of infra/, one at a
time, each of the kinds `make check-infra` claims to catch, and whether check.py catches it.
It measures the check; it is not part of it (self_test.py is). Run it by hand after changing
the check or the Bicep:

    .venv-infra/bin/python infra/schema/mutations.py [INFRA_DIR] [-v]

Each mutation replaces the first occurrence of a piece of text in one file. One whose text
is gone (the Bicep changed) is reported as skipped, not as caught. A mutation is caught when
the check reports a problem it does not report for the unchanged files. The exit status is 1
when fewer than 90 % of the mutations that apply are caught.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from check import INFRA, check


@dataclass(frozen=True)
class Mutation:
    kind: str
    file: str  # relative to infra/
    old: str
    new: str


def _m(kind: str, file: str, old: str, new: str) -> Mutation:
    return Mutation(kind, file, old, new)


ENUM, SCALAR, REQUIRED = "wrong enum value", "scalar of the wrong type", "missing required property"
KEY = "misspelt key in a variable or conditional object"
PARAM, MISSING = "module parameter undeclared or of the wrong type", "required module parameter"
MEMBER, SYMBOL = "output or property that does not exist", "undefined symbol or function"
SCOPE, BOUNDS = "role assignment or module at a scope it cannot use", "default outside its bounds"

# What follows functionId in main.bicep's watcher module only.
_WATCHER_DEAD_LETTERS = (
    "    deadLetterStorageAccountId: storage.outputs.id\n"
    "    deadLetterContainerName: storage.outputs.deadLetterContainerName\n"
    "    privateEndpointSubnetId"
)

MUTATIONS = (
    _m(ENUM, "app/storage.bicep", "kind: 'StorageV2'", "kind: 'StorageV3'"),
    _m(ENUM, "app/storage.bicep", "minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS12'"),
    _m(ENUM, "app/storage.bicep", "bypass: 'AzureServices'", "bypass: 'AzureService'"),
    _m(ENUM, "app/api.bicep", "ftpsState: 'Disabled'", "ftpsState: 'Disable'"),
    _m(ENUM, "app/api.bicep", "type: 'UserAssignedIdentity'", "type: 'UserAssigned'"),
    _m(
        ENUM,
        "app/eventgrid.bicep",
        "eventDeliverySchema: 'EventGridSchema'",
        "eventDeliverySchema: 'EventGridSchemas'",
    ),
    _m(ENUM, "app/eventgrid.bicep", "operatorType: 'StringIn'", "operatorType: 'StringsIn'"),
    _m(
        ENUM,
        "app/watcher.bicep",
        "inputSchema: 'CloudEventSchemaV1_0'",
        "inputSchema: 'CloudEventSchema'",
    ),
    _m(ENUM, "app/alerts.bicep", "aggregation: 'Maximum'", "aggregation: 'Max'"),
    _m(ENUM, "app/alerts.bicep", "operator: 'GreaterThan'", "operator: 'Greater'"),
    _m(ENUM, "app/keyvault.bicep", "name: 'standard'", "name: 'standart'"),
    _m(
        ENUM,
        "app/vnet.bicep",
        "publicIPAllocationMethod: 'Static'",
        "publicIPAllocationMethod: 'Statik'",
    ),
    _m(
        ENUM,
        "app/rbac.bicep",
        "principalType: 'ServicePrincipal'",
        "principalType: 'ServicePrinciple'",
    ),
    _m(
        SCALAR,
        "app/storage.bicep",
        "allowBlobPublicAccess: false",
        "allowBlobPublicAccess: 'false'",
    ),
    _m(SCALAR, "app/storage.bicep", "days: 7", "days: '7'"),
    _m(SCALAR, "app/api.bicep", "httpsOnly: true", "httpsOnly: 'true'"),
    _m(SCALAR, "app/eventgrid.bicep", "maxEventsPerBatch: 1", "maxEventsPerBatch: '1'"),
    _m(
        SCALAR,
        "app/monitoring.bicep",
        "param retentionInDays int = 30",
        "param retentionInDays string = '30'",
    ),
    _m(SCALAR, "app/alerts.bicep", "severity: 2", "severity: '2'"),
    _m(
        SCALAR,
        "app/keyvault.bicep",
        "softDeleteRetentionInDays: 90",
        "softDeleteRetentionInDays: '90'",
    ),
    _m(SCALAR, "app/watcher.bicep", "disableLocalAuth: true", "disableLocalAuth: 1"),
    _m(
        SCALAR,
        "app/keyvault.bicep",
        "purgeProtection ? true : null",
        "purgeProtection ? 'true' : null",
    ),
    _m(ENUM, "app/watcher.bicep", "timeAggregation: 'Total'", "timeAggregation: 'Totals'"),
    _m(REQUIRED, "app/rbac.bicep", "    principalId: identityPrincipalId\n", ""),
    _m(REQUIRED, "app/storage.bicep", "  kind: 'StorageV2'\n", ""),
    _m(REQUIRED, "app/monitoring.bicep", "  location: location\n", ""),
    _m(REQUIRED, "app/keyvault.bicep", "    tenantId: subscription().tenantId\n", ""),
    _m(REQUIRED, "app/keyvault.bicep", "      family: 'A'\n", ""),
    _m(
        REQUIRED,
        "app/watcher-identity.bicep",
        "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        "roles.eventGridDataSender)\n",
        "",
    ),
    _m(REQUIRED, "app/eventgrid.bicep", "    windowSize: 'PT15M'\n", ""),
    _m(KEY, "app/alerts.bicep", "        operator: 'Include'", "        operater: 'Include'"),
    _m(KEY, "app/vnet.bicep", "    zone: 'privatelink.blob", "    zones: 'privatelink.blob"),
    _m(
        KEY,
        "app/eventgrid.bicep",
        "    metric: 'DeadLetteredCount'",
        "    metrik: 'DeadLetteredCount'",
    ),
    _m(KEY, "app/alerts.bicep", "useCommonAlertSchema: true", "useCommonAlertSchemas: true"),
    _m(
        KEY,
        "app/watcher.bicep",
        "    displayName: 'events dropped'",
        "    displayname: 'events dropped'",
    ),
    _m(
        KEY,
        "main.bicep",
        "    tagTimeoutSeconds: tagTimeoutSeconds",
        "    tagTimeoutSecond: tagTimeoutSeconds",
    ),
    _m(
        KEY,
        "main.bicep",
        "    cluster: {\n      id: clusterId\n",
        "    cluster: {\n      ids: clusterId\n",
    ),
    _m(
        PARAM,
        "main.bicep",
        "    networkRestricted: vnetEnabled\n    allowedIpRanges: allowedIpRanges\n"
        "    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId\n  }\n}\n\nmodule keyVault",
        "    networkRestrictd: vnetEnabled\n    allowedIpRanges: allowedIpRanges\n"
        "    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId\n  }\n}\n\nmodule keyVault",
    ),
    _m(
        PARAM,
        "main.bicep",
        "applyFailingMinutes: alertApplyFailingMinutes",
        "applyFailingMinutes: '${alertApplyFailingMinutes}'",
    ),
    _m(PARAM, "main.bicep", "aksfwConfig: string(configDocument)", "aksfwConfig: configDocument"),
    _m(
        PARAM,
        "app/monitored-subscription.bicep",
        "createSystemTopic: createSystemTopic",
        "createSystemTopic: 'true'",
    ),
    _m(PARAM, "app/keyvault.bicep", "    value: panoramaApiKey", "    values: panoramaApiKey"),
    _m(
        PARAM,
        "main.bicep",
        "  'ServicePrincipal'\n])\n@description('Kind of principalId.')",
        "  'ServicePrincipal'\n  'Device'\n])\n@description('Kind of principalId.')",
    ),
    _m(PARAM, "main.bicep", "    cluster: cluster\n", "    cluster: cluster.id\n"),
    _m(PARAM, "main.bicep", "    tags: eventsTags", "    tags: [eventsTags]"),
    _m(PARAM, "main.bicep", "    principalType: principalType\n", "    principalType: 'Robot'\n"),
    _m(MISSING, "main.bicep", "    appInsightsName: '${abbrs.appInsights}${resourceToken}'\n", ""),
    _m(
        MISSING,
        "main.bicep",
        "    functionId: '${api.outputs.id}/functions/resource_event'\n" + _WATCHER_DEAD_LETTERS,
        _WATCHER_DEAD_LETTERS,
    ),
    _m(MISSING, "main.bicep", "    name: '${abbrs.managedIdentities}${resourceToken}'\n", ""),
    _m(
        MISSING,
        "app/monitored-subscription.bicep",
        "    eventSubscriptionName: eventSubscriptionName\n",
        "",
    ),
    _m(MEMBER, "main.bicep", "monitoring.outputs.workspaceId", "monitoring.outputs.workspaceID"),
    _m(
        MEMBER,
        "main.bicep",
        "storage.outputs.deadLetterContainerName",
        "storage.outputs.deadletterContainerName",
    ),
    _m(MEMBER, "main.bicep", "api.outputs.defaultHostName", "api.outputs.hostName"),
    _m(
        MEMBER,
        "app/identity.bicep",
        "identity.properties.principalId",
        "identity.properties.principal",
    ),
    _m(MEMBER, "app/storage.bicep", "primaryEndpoints.blob", "primaryEndpoints.blobs"),
    _m(
        MEMBER,
        "app/vnet.bicep",
        "natPublicIp.properties.ipAddress",
        "natPublicIp.properties.ipAddresses",
    ),
    _m(MEMBER, "app/api.bicep", "authentication.loginEndpoint", "authentication.loginEndpoints"),
    _m(MEMBER, "main.bicep", "abbrs.resourceGroups", "abbrs.resourceGroup"),
    _m(MEMBER, "app/rbac.bicep", "roles.storageBlobDataOwner", "roles.storageBlobDataOwners"),
    _m(
        MEMBER,
        "app/watcher-identity.bicep",
        "properties.oidcIssuerProfile.issuerURL",
        "properties.oidcIssuer.issuerURL",
    ),
    _m(MEMBER, "app/eventgrid.bicep", "topic.identity.principalId", "topic.identity.principal"),
    _m(
        SYMBOL,
        "main.bicep",
        "    location: location\n    tags: tags\n  }\n}\n\nmodule monitoring",
        "    location: locaton\n    tags: tags\n  }\n}\n\nmodule monitoring",
    ),
    _m(SYMBOL, "app/storage.bicep", "for queueName in queueNames", "for queueName in queueNamez"),
    _m(SYMBOL, "app/vnet.bicep", "id: nsg.id", "id: nsgs.id"),
    _m(
        SYMBOL,
        "app/alerts.bicep",
        "threshold: functionFailureThreshold",
        "threshold: functionFailureThresold",
    ),
    _m(
        SYMBOL,
        "app/cluster-access.bicep",
        "if (grant && usesAzureCredential &&",
        "if (grant && usesAzureCredentials &&",
    ),
    _m(SYMBOL, "app/keyvault.bicep", "endsWith(", "endWith("),
    _m(SCOPE, "app/watcher-identity.bicep", "  scope: topic\n", "  scope: managedCluster\n"),
    _m(SCOPE, "app/rbac.bicep", "  scope: storage\n", "  scope: subscription()\n"),
    _m(
        SCOPE,
        "app/monitored-subscription.bicep",
        "resource clusterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = "
        "if (grantSubscriptionRoles) {\n",
        "resource clusterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = "
        "if (grantSubscriptionRoles) {\n  scope: eventsGroup\n",
    ),
    _m(
        SCOPE,
        "app/deadletter-access.bicep",
        "  name: storageAccountName\n",
        "  name: storageAccountName\n  scope: resourceGroup('elsewhere')\n",
    ),
    _m(
        SCOPE,
        "app/cluster-access.bicep",
        "  name: split(cluster.id, '/')[8]\n",
        "  name: split(cluster.id, '/')[8]\n  scope: resourceGroup(split(cluster.id, '/')[4])\n",
    ),
    _m(SCOPE, "main.bicep", "  name: 'rbac'\n  scope: rg\n", "  name: 'rbac'\n"),
    _m(SCOPE, "main.bicep", "  scope: subscription(subscriptionId)\n", "  scope: rg\n"),
    _m(
        SCOPE,
        "app/vnet.bicep",
        "  name: natPublicIpName\n",
        "  name: natPublicIpName\n  scope: nsg\n",
    ),
    _m(
        BOUNDS,
        "app/monitoring.bicep",
        "param retentionInDays int = 30",
        "param retentionInDays int = 7",
    ),
    _m(
        BOUNDS,
        "app/api.bicep",
        "param maximumInstanceCount int = 10",
        "param maximumInstanceCount int = 2000",
    ),
    _m(
        BOUNDS,
        "app/api.bicep",
        "param instanceMemoryMB int = 2048",
        "param instanceMemoryMB int = 1024",
    ),
    _m(
        BOUNDS,
        "main.bicep",
        "param principalType string = 'User'",
        "param principalType string = 'user'",
    ),
    _m(
        BOUNDS,
        "main.bicep",
        "param pythonVersion string = '3.11'",
        "param pythonVersion string = '3.12'",
    ),
    _m(
        BOUNDS,
        "main.bicep",
        "param alertApplyFailingMinutes int = 30",
        "param alertApplyFailingMinutes int = 301",
    ),
    _m(
        BOUNDS,
        "main.bicep",
        "param discoveryTag string = 'aksfw'",
        "param discoveryTag string = true",
    ),
    _m(
        BOUNDS,
        "main.parameters.json",
        "${AKSFW_ALERT_APPLY_FAILING_MINUTES=30}",
        "${AKSFW_ALERT_APPLY_FAILING_MINUTES=5}",
    ),
    _m(
        BOUNDS,
        "main.parameters.json",
        "${AKSFW_PYTHON_VERSION=3.11}",
        "${AKSFW_PYTHON_VERSION=3.12}",
    ),
    # Issue 23's opt-ins: egress roles, the gateway reader's condition, the capacity warning.
    _m(SCALAR, "app/cluster-access.bicep", "conditionVersion: '2.0'", "conditionVersion: 2"),
    _m(
        SYMBOL,
        "app/cluster-access.bicep",
        "condition: gatewayCondition",
        "condition: gatewayConditon",
    ),
    _m(
        PARAM,
        "main.bicep",
        "    grantEgressRead: registerEgress\n",
        "    grantEgresRead: registerEgress\n",
    ),
    _m(
        PARAM,
        "main.bicep",
        "    grantGatewayRead: registerEgress\n",
        "    grantGatewayRead: 'true'\n",
    ),
    _m(
        MISSING,
        "main.bicep",
        "    defineEgressReader: registerEgress && contains(monitoredSubscriptionIdsLower, "
        "subscriptionId)\n",
        "",
    ),
    _m(
        SCOPE,
        "app/monitored-subscription.bicep",
        "resource egressReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = "
        "if (grantEgressRead) {\n",
        "resource egressReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = "
        "if (grantEgressRead) {\n  scope: eventsGroup\n",
    ),
    _m(
        BOUNDS,
        "main.bicep",
        "param capacityWarningIps int = 0",
        "param capacityWarningIps int = -1",
    ),
    _m(
        BOUNDS,
        "main.parameters.json",
        "${AKSFW_CAPACITY_WARNING_IPS=0}",
        "${AKSFW_CAPACITY_WARNING_IPS=-1}",
    ),
)


def run(infra: Path, verbose: bool) -> int:
    baseline = {(p.file, p.message) for p in check(infra)}
    caught, missed, skipped = 0, [], []
    with tempfile.TemporaryDirectory() as temporary:
        copy = Path(temporary) / infra.name
        for mutation in MUTATIONS:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(infra, copy, ignore=shutil.ignore_patterns("schema", "hooks"))
            target = copy / mutation.file
            text = target.read_text()
            if mutation.old not in text:
                skipped.append(mutation)
                continue
            target.write_text(text.replace(mutation.old, mutation.new, 1))
            new = [p for p in check(copy) if (p.file, p.message) not in baseline]
            label = f"{mutation.kind}: {mutation.file}: {mutation.old.strip()[:60]!r}"
            if new:
                caught += 1
                if verbose:
                    print(f"caught  {label}\n        {new[0]}")
            else:
                missed.append(mutation)
                print(f"MISSED  {label} -> {mutation.new.strip()[:60]!r}")
    for mutation in skipped:
        print(f"skipped (its text is gone) {mutation.kind}: {mutation.file}: {mutation.old[:60]!r}")
    applied = caught + len(missed)
    print(f"mutation pass: {caught} of {applied} caught, {len(skipped)} skipped")
    return 0 if applied and caught >= 0.9 * applied else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("infra", nargs="?", type=Path, default=INFRA)
    parser.add_argument("-v", "--verbose", action="store_true", help="show what caught each")
    args = parser.parse_args(argv)
    return run(args.infra.resolve(), args.verbose)


if __name__ == "__main__":
    sys.exit(main())
