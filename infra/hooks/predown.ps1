# azd predown hook: remove every tag aksfw registered, on every target, before `azd down`
# deletes the app. Tags never expire by default, so without this the IPs stay in the
# Dynamic Address Groups (and the rules that use them) after the app is gone.
#
# Calls the app's own POST /api/uninstall (a tombstone per cluster and target; resyncs are
# held back meanwhile), then reads GET /api/status until no cluster holds a target. Needs
# only the Azure CLI (signed in): the function key comes from `az functionapp keys list`
# and travels in the x-functions-key header, never in a URL. Every az call names the app's
# subscription (AZURE_SUBSCRIPTION_ID).
#
# An environment that was provisioned but never deployed (no Function App, or one that lists no
# functions) registered nothing: nothing to uninstall, and azd down goes on.
#
# Before that, what azd down itself would do wrong (predown.sh explains each):
# - rg-<env>-events in the app's subscription goes with azd down: if its system topic also
#   delivers to someone else, stop, unless AKSFW_DELETE_SHARED_TOPIC=true.
# - azd looks the groups it deletes up by name in the app's subscription only: when this
#   environment's events groups are all in other subscriptions, an empty rg-<env>-events is
#   created there for it to delete (the postdown hook deletes the others).
#
#   $env:AKSFW_UNINSTALL_DRY_RUN='true'; azd down   show what would be removed; stop azd down
#   $env:AKSFW_SKIP_UNINSTALL='true'; azd down      leave the registrations, knowingly
#   AKSFW_UNINSTALL_WAIT_SECONDS (default 300)      how long to wait for the removals
#   $env:AKSFW_DELETE_SHARED_TOPIC='true'; azd down delete the events topic though others use it
$ErrorActionPreference = 'Stop'

# A setting from the process environment, else the azd environment, else $default.
function Get-Setting([string]$name, [string]$default = '') {
    $given = [Environment]::GetEnvironmentVariable($name)
    if ($given) { return $given }
    $value = (& azd env get-value $name 2>$null)
    if ($LASTEXITCODE -eq 0) { return "$value".Trim() }
    return $default
}

function Test-True([string]$text) { return "$text".Trim().ToLowerInvariant() -eq 'true' }

function Stop-Uninstall([string]$reason) {
    [Console]::Error.WriteLine("aksfw: $reason")
    [Console]::Error.WriteLine('aksfw: the tags aksfw registered are still on Panorama; azd down stopped before deleting anything.')
    [Console]::Error.WriteLine("aksfw: fix the cause and run 'azd down' again, or run 'AKSFW_SKIP_UNINSTALL=true azd down'")
    [Console]::Error.WriteLine('aksfw: to leave them knowingly (then unregister the aks.* and aks_* tags on PAN-OS).')
    exit 1
}

. (Join-Path $PSScriptRoot 'common.ps1')  # Get-EnvValue, Invoke-AzTsv

$subscription = Get-Setting 'AZURE_SUBSCRIPTION_ID'
$envName = Get-Setting 'AZURE_ENV_NAME'
if (-not $subscription -or -not $envName) {
    Write-Host 'aksfw: this azd environment was never provisioned (no AZURE_SUBSCRIPTION_ID): nothing to uninstall.'
    exit 0
}
$eventsGroup = "rg-$envName-events"
# Where this environment's event subscriptions deliver: functions of the app in rg-<env>.
$appSites = "/subscriptions/$subscription/resourcegroups/rg-$envName/providers/microsoft.web/sites/".ToLowerInvariant()

$groupExists = & az group exists --subscription $subscription --name $eventsGroup
if ($LASTEXITCODE -ne 0) { Stop-Uninstall "could not look for $eventsGroup in $subscription (az login?)" }
$groupExists = Test-True $groupExists
if ($groupExists) {
    $shared = @()
    $topics = Invoke-AzTsv eventgrid system-topic list --subscription $subscription --resource-group $eventsGroup --query '[].name'
    if ($null -eq $topics) { Stop-Uninstall "could not read the Event Grid subscriptions in $eventsGroup" }
    foreach ($topic in $topics) {
        $rows = Invoke-AzTsv eventgrid system-topic event-subscription list --subscription $subscription `
            --resource-group $eventsGroup --system-topic-name $topic --query '[].[name, to_string(destination.resourceId)]'
        if ($null -eq $rows) { Stop-Uninstall "could not read the Event Grid subscriptions in $eventsGroup" }
        foreach ($row in $rows) {
            $fields = $row -split "`t"
            if (-not $fields[1].ToLowerInvariant().StartsWith($appSites)) {
                $where = if ($fields[1] -eq 'null') { 'an endpoint outside Resource Manager' } else { $fields[1] }
                $shared += "${topic}: $($fields[0]) -> $where"
            }
        }
    }
    if ($shared.Count -gt 0) {
        [Console]::Error.WriteLine("aksfw: $eventsGroup (subscription $subscription) holds the subscription's Resource Manager system topic,")
        [Console]::Error.WriteLine('aksfw: and it also delivers to others:')
        foreach ($line in $shared) { [Console]::Error.WriteLine("aksfw:   $line") }
        [Console]::Error.WriteLine('aksfw: azd down deletes that group, the topic with it (a group this deployment created), and they would stop receiving events.')
        if (-not (Test-True (Get-Setting 'AKSFW_DELETE_SHARED_TOPIC' 'false'))) {
            [Console]::Error.WriteLine('aksfw: nothing was deleted and no tag removed. Tear them down first, or run')
            [Console]::Error.WriteLine("aksfw: 'AKSFW_DELETE_SHARED_TOPIC=true azd down' to delete it knowingly (an aksfw environment then")
            [Console]::Error.WriteLine("aksfw: creates a topic of its own at its next 'azd provision'; another tool must be set up again).")
            exit 1
        }
        [Console]::Error.WriteLine('aksfw: AKSFW_DELETE_SHARED_TOPIC=true: deleting it anyway.')
    }
}

# Let azd down delete. When this environment created events groups in other subscriptions
# but there is none in the app's, azd would fail to list the one it looks for there (by
# name): an empty one is created for it to delete.
function Complete-Predown {
    $existing = Get-Setting 'AKSFW_EXISTING_SYSTEM_TOPIC_IDS' '{}'
    $monitored = Get-Setting 'AKSFW_MONITORED_SUBSCRIPTION_IDS'
    if (-not $monitored) { $monitored = $subscription }
    $ownElsewhere = $false
    foreach ($sub in ($monitored -split '[, ]' | Where-Object { $_ })) {
        if ($existing.ToLowerInvariant().Contains("`"$($sub.ToLowerInvariant())`"")) { continue }
        if ($sub -eq $subscription) { $ownElsewhere = $false; break }
        $ownElsewhere = $true
    }
    if ($ownElsewhere -and -not $groupExists) {
        Write-Host "aksfw: creating an empty $eventsGroup in ${subscription}: azd down looks the groups it deletes up by name"
        Write-Host "aksfw: in the app's subscription, and this environment's events groups are in others (the postdown hook deletes them)."
        & az group create --subscription $subscription --name $eventsGroup `
            --location (Get-Setting 'AZURE_LOCATION') --tags "aksfw-env-name=$envName" --output none
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
    exit 0
}

if (Test-True (Get-Setting 'AKSFW_SKIP_UNINSTALL' 'false')) {
    [Console]::Error.WriteLine('aksfw: AKSFW_SKIP_UNINSTALL=true: the tags aksfw registered stay on Panorama.')
    Complete-Predown
}

$app = Get-Setting 'AZURE_FUNCTION_APP_NAME'
$group = Get-Setting 'RESOURCE_GROUP' (Get-Setting 'AZURE_RESOURCE_GROUP')
if (-not $app -or -not $group) {
    Write-Host 'aksfw: no Function App in this azd environment (never provisioned): nothing to uninstall.'
    Complete-Predown
}

$dryRun = Test-True (Get-Setting 'AKSFW_UNINSTALL_DRY_RUN' 'false')
$waitText = Get-Setting 'AKSFW_UNINSTALL_WAIT_SECONDS' '300'
$waitSeconds = 0
if (-not [int]::TryParse($waitText, [ref]$waitSeconds) -or $waitSeconds -lt 0) {
    Stop-Uninstall 'AKSFW_UNINSTALL_WAIT_SECONDS must be a whole number of seconds'
}

$hostName = (& az functionapp show --subscription $subscription --resource-group $group --name $app --query defaultHostName --output tsv)
# az's show commands exit 3 when the resource (or its group) does not exist (azure-cli#6612).
if ($LASTEXITCODE -eq 3) {
    Write-Host "aksfw: the Function App $app is not in $group (never created, or deleted): it registers nothing; nothing to uninstall."
    Complete-Predown
}
if ($LASTEXITCODE -ne 0) { Stop-Uninstall "could not read the Function App $app in $group (az login?)" }

$functions = Invoke-AzTsv functionapp function list --subscription $subscription --resource-group $group --name $app --query '[].name'
if ($null -ne $functions -and $functions.Count -eq 0) {
    if (Test-True (Get-Setting 'DEPLOY_EVENT_SUBSCRIPTIONS' 'false')) {
        Stop-Uninstall "the Function App $app lists no functions, yet it was deployed (DEPLOY_EVENT_SUBSCRIPTIONS=true): its uninstall cannot run; deploy it again (azd deploy)"
    }
    Write-Host "aksfw: the Function App $app lists no functions: provisioned but never deployed, it registered nothing; nothing to uninstall."
    Complete-Predown
}

$key = (& az functionapp keys list --subscription $subscription --resource-group $group --name $app --query functionKeys.default --output tsv)
if ($LASTEXITCODE -ne 0) { Stop-Uninstall "could not read a function key of $app (az functionapp keys list)" }
$hostName = "$hostName".Trim(); $key = "$key".Trim()
if (-not $hostName -or -not $key) { Stop-Uninstall "the Function App $app has no host name or no default function key" }

$headers = @{ 'x-functions-key' = $key }
$body = if ($dryRun) { '{"dryRun": true}' } else { '{"dryRun": false}' }
Write-Host "aksfw: removing the tags aksfw registered (https://$hostName/api/uninstall, dryRun=$($dryRun.ToString().ToLowerInvariant()))."
try {
    $answer = Invoke-RestMethod -Method Post -Uri "https://$hostName/api/uninstall" -Headers $headers `
        -Body $body -ContentType 'application/json' -TimeoutSec 240 -MaximumRedirection 0
} catch {
    Stop-Uninstall "https://$hostName/api/uninstall failed: $($_.Exception.Message)"
}
if ($answer.targets) {
    $answer.targets | Format-Table tagName, target, ips, tags, cluster -AutoSize | Out-String | Write-Host
} else {
    Write-Host 'aksfw:   nothing applied'
}
if ($dryRun) {
    [Console]::Error.WriteLine('aksfw: dry run (AKSFW_UNINSTALL_DRY_RUN=true): nothing removed; azd down stops here.')
    [Console]::Error.WriteLine("aksfw: run 'azd down' without it to remove these, or 'AKSFW_SKIP_UNINSTALL=true azd down' to leave them.")
    exit 1
}

$waited = 0
while ($true) {
    try {
        $status = Invoke-RestMethod -Method Get -Uri "https://$hostName/api/status" -Headers $headers `
            -TimeoutSec 240 -MaximumRedirection 0
    } catch {
        Stop-Uninstall "https://$hostName/api/status failed: $($_.Exception.Message)"
    }
    $remaining = @($status.clusters | ForEach-Object { $_.targets } | Where-Object { $_ }).Count
    if ($remaining -eq 0) {
        Write-Host 'aksfw: every tag aksfw registered is removed; no cluster holds a target.'
        Complete-Predown
    }
    if ($waited -ge $waitSeconds) {
        Stop-Uninstall "after $waitSeconds s, $remaining target(s) still hold tags (see 'aksfw status' for the last error)"
    }
    Write-Host "aksfw: $remaining target(s) still hold tags; waiting."
    Start-Sleep -Seconds 5
    $waited += 5
}
