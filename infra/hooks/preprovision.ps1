# azd preprovision hook: what the Bicep cannot find out by itself.
#
# 1. With AKSFW_VNET_ENABLED=true, Flex Consumption's virtual network integration needs the
#    Microsoft.App resource provider registered in the app's subscription (the template uses
#    it only as a subnet delegation, so Resource Manager does not register it on its own).
# 2. The clusters carrying the discovery tag (AKSFW_DISCOVERY_TAG, default aksfw) in the
#    monitored subscriptions (AKSFW_MONITORED_SUBSCRIPTION_IDS, default the app's
#    subscription) go into AKSFW_DISCOVERED_CLUSTER_IDS, so that the Bicep grants the
#    credential roles on each of them instead of on whole subscriptions. A cluster tagged
#    later gets its roles at the next `azd provision` (or `azd up`).
#
# Needs the Azure CLI signed in (az login) with read access to those subscriptions.
$ErrorActionPreference = 'Stop'

# An azd environment value, or $Default when it is not set at all (an empty value stays empty).
function Get-EnvValue([string]$Name, [string]$Default = '') {
    $value = (& azd env get-value $Name 2>$null)
    if ($LASTEXITCODE -ne 0) { return $Default }
    return "$value".Trim()
}

$subscription = Get-EnvValue 'AZURE_SUBSCRIPTION_ID'
if (-not $subscription) {
    $subscription = (& az account show --query id --output tsv).Trim()
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

if ((Get-EnvValue 'AKSFW_VNET_ENABLED' 'false').ToLowerInvariant() -eq 'true') {
    Write-Host "aksfw: registering the Microsoft.App resource provider in $subscription (VNet integration)."
    & az provider register --namespace Microsoft.App --subscription $subscription --wait
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

$tag = Get-EnvValue 'AKSFW_DISCOVERY_TAG' 'aksfw'
if (-not $tag) {
    Write-Host 'aksfw: no discovery tag; only the explicit clusters get cluster roles.'
    & azd env set AKSFW_DISCOVERED_CLUSTER_IDS ''
    exit $LASTEXITCODE
}

$subscriptions = (Get-EnvValue 'AKSFW_MONITORED_SUBSCRIPTION_IDS' $subscription) -split ',' |
    ForEach-Object { $_.Trim() } | Where-Object { $_ }
$found = @()
foreach ($sub in $subscriptions) {
    # The tag filter runs in Resource Manager (key=value, or a key alone); --tag cannot be
    # combined with --resource-type, hence the query.
    $ids = & az resource list --subscription $sub --tag $tag `
        --query "[?type=='Microsoft.ContainerService/managedClusters'].id" --output tsv
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    foreach ($id in @($ids | ForEach-Object { "$_".Trim() } | Where-Object { $_ })) {
        Write-Host "aksfw: found $id"
        $found += $id
    }
}

Write-Host "aksfw: $($found.Count) cluster(s) carry the tag '$tag'; each gets its cluster roles (AKSFW_DISCOVERED_CLUSTER_IDS)."
& azd env set AKSFW_DISCOVERED_CLUSTER_IDS ($found -join ',')
exit $LASTEXITCODE
