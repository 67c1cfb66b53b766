# azd preprovision hook: what the Bicep cannot find out by itself, and what would fail the
# provisioning half-way, checked before anything is created. Every az call names its
# subscription. The same steps as preprovision.sh, which explains each:
#
# 1. Region: AZURE_LOCATION must offer Flex Consumption (az functionapp
#    list-flexconsumption-locations); else stop with the regions that do.
# 2. Key Vault: a soft-deleted vault of this environment (azd-env-name tag, same region): stop
#    with the purge command, or with why it cannot be purged.
# 3. DEPLOY_EVENT_SUBSCRIPTIONS=true while the Function App it was set for is gone: false.
# 4. With AKSFW_VNET_ENABLED=true, the Microsoft.App resource provider registered.
# 5. Clusters: the tagged ones into AKSFW_DISCOVERED_CLUSTER_IDS; of those and the explicit
#    ones (AKSFW_CLUSTERS), the ones whose Cluster User Role lists an admin-equivalent
#    credential (no aadProfile, local accounts not disabled) into
#    AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS and, when tagged, out of the discovered ones unless
#    AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS=true; with AKSFW_WATCHER_ENABLED=true, the watched ones
#    without an OIDC issuer or workload identity into AKSFW_NO_OIDC_CLUSTER_IDS. Each with a
#    warning.
# 6. Event Grid: a monitored subscription's Resource Manager system topic that this
#    environment did not create (outside rg-<env>-events) into AKSFW_EXISTING_SYSTEM_TOPIC_IDS;
#    without a system-assigned identity, stop with the command that adds one.
#
# Needs the Azure CLI signed in (az login) with read access to those subscriptions.
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot 'common.ps1')  # Get-EnvValue, Invoke-AzTsvOrStop

# az ARGS --output tsv: the lines (CR and blanks removed); stops the hook when az fails.
function Invoke-AzTsvOrStop {
    $out = & az @args --output tsv
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    return @($out | ForEach-Object { "$_".TrimEnd("`r") } | Where-Object { $_ })
}

function Write-Warn([string]$Text) { [Console]::Error.WriteLine("aksfw: warning: $Text") }

function Stop-Hook([string[]]$Lines) {
    foreach ($line in $Lines) { [Console]::Error.WriteLine("aksfw: $line") }
    exit 1
}

# /subscriptions/<sub>/resourceGroups/<group>/providers/<namespace>/<type>/<name>: part $Index.
function Get-IdPart([string]$Id, [int]$Index) { return ($Id -split '/')[$Index] }

$subscription = Get-EnvValue 'AZURE_SUBSCRIPTION_ID'
if (-not $subscription) {
    $subscription = @(Invoke-AzTsvOrStop account show --query id)[0]
}
$envName = Get-EnvValue 'AZURE_ENV_NAME'
$location = (Get-EnvValue 'AZURE_LOCATION').ToLowerInvariant() -replace ' ', ''
$eventsGroup = "rg-$envName-events"

# --- 1. the region ------------------------------------------------------------------------
if ($location) {
    $regions = @(Invoke-AzTsvOrStop functionapp list-flexconsumption-locations --subscription $subscription --query '[].name' |
        ForEach-Object { $_.ToLowerInvariant() -replace ' ', '' } | Sort-Object -Unique)
    if ($regions.Count -eq 0) {
        Write-Warn 'az functionapp list-flexconsumption-locations listed no region: the region check is skipped.'
    } elseif ($regions -notcontains $location) {
        Stop-Hook @(
            "the region $location does not offer Flex Consumption, the plan aksfw runs on.",
            "Regions that do (az functionapp list-flexconsumption-locations): $($regions -join ' ')",
            'Choose one of them: azd env set AZURE_LOCATION <region>')
    } else {
        Write-Host "aksfw: $location offers Flex Consumption."
    }
} else {
    Write-Host 'aksfw: AZURE_LOCATION is not set yet: the region and Key Vault checks run at the next provision.'
}

# --- 2. a soft-deleted Key Vault of this environment ----------------------------------------
if ($location -and $envName) {
    # JSON here, not a query naming the tag: a quoted "azd-env-name" does not survive
    # PowerShell's native argument passing the same way on every version.
    $deleted = & az keyvault list-deleted --subscription $subscription --resource-type vault --output json
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    $vaults = ($deleted -join "`n") | ConvertFrom-Json
    $vault = @($vaults) |
        Where-Object { $_.properties.tags.'azd-env-name' -ceq $envName -and
            ("$($_.properties.location)".ToLowerInvariant() -replace ' ', '') -eq $location } |
        Select-Object -First 1
    if ($vault) {
        $name = $vault.name
        if ("$($vault.properties.purgeProtectionEnabled)".ToLowerInvariant() -eq 'true') {
            Stop-Hook @(
                "a deleted Key Vault of this environment, $name ($location), still holds the vault's name, and purge protection keeps it until $($vault.properties.scheduledPurgeDate): provisioning would fail.",
                'Deploy under another environment name (azd env new), or bring the vault back: create its resource group again',
                "(az group create --subscription $subscription --name rg-$envName --location $location), then",
                "az keyvault recover --subscription $subscription --name $name")
        }
        Stop-Hook @(
            "a deleted Key Vault of this environment, $name ($location), still holds the vault's name (soft delete keeps it 90 days): provisioning would fail.",
            "Purge it, then provision again: az keyvault purge --subscription $subscription --name $name --location $location",
            "(its secrets go with it: set the Panorama key again if azd does not hold it; 'azd down --purge' purges at teardown).")
    }
}

# --- 3. DEPLOY_EVENT_SUBSCRIPTIONS without its app ------------------------------------------
if ((Get-EnvValue 'DEPLOY_EVENT_SUBSCRIPTIONS' 'false').ToLowerInvariant() -eq 'true') {
    $app = Get-EnvValue 'AZURE_FUNCTION_APP_NAME'
    $appGroup = Get-EnvValue 'RESOURCE_GROUP' "rg-$envName"
    $gone = ''
    if (-not $app) {
        $gone = 'this environment names no Function App (AZURE_FUNCTION_APP_NAME)'
    } else {
        $exists = & az group exists --subscription $subscription --name $appGroup
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        if ("$exists".Trim().ToLowerInvariant() -ne 'true') {
            $gone = "its resource group $appGroup is gone"
        } else {
            & az functionapp show --subscription $subscription --resource-group $appGroup --name $app `
                --query id --output tsv 2>$null | Out-Null
            # az's show commands exit 3 when the resource does not exist (azure-cli#6612).
            if ($LASTEXITCODE -eq 3) { $gone = "the Function App $app is gone" }
        }
    }
    if ($gone) {
        Write-Host "aksfw: DEPLOY_EVENT_SUBSCRIPTIONS was true but $gone (an azd down that stopped half-way?): set to false;"
        Write-Host 'aksfw: the Event Grid subscriptions come back after the deploy (postdeploy hook).'
        & azd env set DEPLOY_EVENT_SUBSCRIPTIONS false
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
}

# --- 4. Microsoft.App for the virtual network -----------------------------------------------
if ((Get-EnvValue 'AKSFW_VNET_ENABLED' 'false').ToLowerInvariant() -eq 'true') {
    Write-Host "aksfw: registering the Microsoft.App resource provider in $subscription (VNet integration)."
    & az provider register --namespace Microsoft.App --subscription $subscription --wait
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

# --- 5. the clusters ------------------------------------------------------------------------
# Empty = the app's subscription, as in the Bicep (monitoredSubscriptionIdsCsv).
$monitored = Get-EnvValue 'AKSFW_MONITORED_SUBSCRIPTION_IDS'
if (-not $monitored) { $monitored = $subscription }
$subscriptions = @()
foreach ($sub in ($monitored -split '[, ]' | Where-Object { $_ })) {
    if (-not ($subscriptions | Where-Object { $_ -eq $sub })) { $subscriptions += $sub }
}
$tag = Get-EnvValue 'AKSFW_DISCOVERY_TAG' 'aksfw'
$discovered = @()
if (-not $tag) {
    Write-Host 'aksfw: no discovery tag; only the explicit clusters get cluster roles.'
} else {
    foreach ($sub in $subscriptions) {
        # The tag filter runs in Resource Manager (key=value, or a key alone); --tag cannot be
        # combined with --resource-type, hence the query. A failed listing stops the hook.
        $ids = Invoke-AzTsvOrStop resource list --subscription $sub --tag $tag `
            --query "[?type=='Microsoft.ContainerService/managedClusters'].id"
        foreach ($id in $ids) {
            if ($discovered -notcontains $id) {
                $discovered += $id
                Write-Host "aksfw: found $id"
            }
        }
    }
}

# The explicit clusters' IDs, from the JSON array AKSFW_CLUSTERS, by the resource ID pattern
# (as preprovision.sh does; JSON may escape "/" as "\/").
$clustersJson = (Get-EnvValue 'AKSFW_CLUSTERS' '') -replace '\\/', '/'
$explicit = @([regex]::Matches($clustersJson,
        '(?i)/subscriptions/[^/"]+/resourcegroups/[^/"]+/providers/microsoft\.containerservice/managedclusters/[^/" ]+') |
    ForEach-Object { $_.Value.ToLowerInvariant() } | Select-Object -Unique)

$clusters = @(@($explicit) + @($discovered | ForEach-Object { $_.ToLowerInvariant() }) | Select-Object -Unique)
$properties = @{}
foreach ($sub in @($clusters | ForEach-Object { Get-IdPart $_ 2 } | Select-Object -Unique)) {
    # One row per cluster: id, Entra ID authentication, local accounts disabled, OIDC issuer,
    # workload identity.
    $rows = Invoke-AzTsvOrStop aks list --subscription $sub `
        --query '[].[id, to_string(aadProfile != `null`), to_string(disableLocalAccounts), to_string(oidcIssuerProfile.enabled), to_string(securityProfile.workloadIdentity.enabled)]'
    foreach ($row in $rows) {
        $fields = $row -split "`t"
        $properties[$fields[0].ToLowerInvariant()] = $fields
    }
}

$allow = (Get-EnvValue 'AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS' 'false').ToLowerInvariant() -eq 'true'
$localAccounts = @()
$withoutOidc = @()
foreach ($id in $clusters) {
    $fields = $properties[$id]
    if (-not $fields) {
        Write-Warn "could not read $id (does it exist? may you read it?): taken as a cluster with local accounts and no OIDC issuer until it can be read."
        $fields = @($id, 'false', 'false', 'false', 'false')
    }
    $entra = $fields[1].ToLowerInvariant() -eq 'true'
    $disabled = $fields[2].ToLowerInvariant() -eq 'true'
    if (-not $entra -and -not $disabled) {
        $localAccounts += $id
    } elseif (-not $entra) {
        Write-Warn "$id has neither Microsoft Entra ID authentication nor local accounts: the 'azure' credential cannot sign in to it (give it Entra ID, or a 'token' credential)."
    }
    if ($fields[3].ToLowerInvariant() -ne 'true' -or "$($fields[4])".ToLowerInvariant() -ne 'true') { $withoutOidc += $id }
}

foreach ($id in $localAccounts) {
    Write-Warn "$id signs in with local accounts (no Microsoft Entra ID): its Cluster User Role lists an admin-equivalent credential."
    if ($allow) {
        Write-Warn '  AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS=true: the app''s identity gets it anyway.'
    } elseif ($explicit -contains $id) {
        Write-Warn "  not granted the Cluster User Role (AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS): aksfw cannot read it with the 'azure' credential."
    } else {
        Write-Warn '  left out of AKSFW_DISCOVERED_CLUSTER_IDS: no roles on it, aksfw lists it but cannot read its Services.'
    }
}
if ($localAccounts.Count -gt 0 -and -not $allow) {
    Write-Warn "enable Microsoft Entra ID (az aks update --enable-aad --aad-admin-group-object-ids <group> --disable-local-accounts), give it a 'token'"
    Write-Warn 'credential in AKSFW_CLUSTERS, or grant the role knowingly: azd env set AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS true'
}

$kept = @($discovered | Where-Object { $allow -or ($localAccounts -notcontains $_.ToLowerInvariant()) })

$noOidc = @()
if ((Get-EnvValue 'AKSFW_WATCHER_ENABLED' 'false').ToLowerInvariant() -eq 'true') {
    $watched = @(@($explicit) + @($kept | ForEach-Object { $_.ToLowerInvariant() }) | Select-Object -Unique)
    foreach ($id in $watched) {
        if ($withoutOidc -contains $id) {
            $noOidc += $id
            Write-Warn "$id has no OIDC issuer or no workload identity: no watcher identity for it (AKSFW_NO_OIDC_CLUSTER_IDS); Service label changes there wait for the timer."
            Write-Warn "  to watch it: az aks update --subscription $(Get-IdPart $id 2) --resource-group $(Get-IdPart $id 4) --name $(Get-IdPart $id 8) --enable-oidc-issuer --enable-workload-identity, then azd provision"
        }
    }
}

Write-Host "aksfw: $($kept.Count) tagged cluster(s) get their cluster roles (AKSFW_DISCOVERED_CLUSTER_IDS)."
& azd env set AKSFW_DISCOVERED_CLUSTER_IDS ($kept -join ',')
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& azd env set AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS ($localAccounts -join ',')
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& azd env set AKSFW_NO_OIDC_CLUSTER_IDS ($noOidc -join ',')
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

# --- 6. the subscriptions' existing Resource Manager system topics ---------------------------
$existing = @()
$withoutIdentity = @()
foreach ($sub in $subscriptions) {
    $topic = $null
    foreach ($row in (Invoke-AzTsvOrStop eventgrid system-topic list --subscription $sub `
                --query '[].[id, topicType, to_string(identity.type)]')) {
        $fields = $row -split "`t"
        if ($fields[1].ToLowerInvariant() -eq 'microsoft.resources.subscriptions') { $topic = $fields; break }
    }
    if (-not $topic) { continue }
    $id = $topic[0]
    $group = Get-IdPart $id 4
    if ($group.ToLowerInvariant() -eq $eventsGroup.ToLowerInvariant()) {
        Write-Host "aksfw: ${sub}: the Resource Manager system topic is this environment's own ($id)."
        continue
    }
    Write-Host "aksfw: ${sub}: adding to the subscription's existing Resource Manager system topic $id (Azure allows one per subscription)."
    $existing += "`"$sub`": `"$id`""
    if ($topic[2].ToLowerInvariant() -notlike '*systemassigned*') {
        $withoutIdentity += , @($sub, $group, (Get-IdPart $id 8))
    }
}
# JSON with its quotes: PowerShell 7.3 and later pass them to azd as they are.
& azd env set AKSFW_EXISTING_SYSTEM_TOPIC_IDS ('{' + ($existing -join ', ') + '}')
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

if ($withoutIdentity.Count -gt 0) {
    foreach ($found in $withoutIdentity) {
        [Console]::Error.WriteLine("aksfw: the system topic $($found[2]) (group $($found[1]), subscription $($found[0])) has no system-assigned identity, which Event Grid dead-letters with:")
        [Console]::Error.WriteLine("aksfw:   az eventgrid system-topic update --subscription $($found[0]) --resource-group $($found[1]) --name $($found[2]) --identity systemassigned")
    }
    Stop-Hook @('add it (nothing else on the topic changes), then provision again.')
}
exit 0
