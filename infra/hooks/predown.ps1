# azd predown hook: remove every tag aksfw registered, on every target, before `azd down`
# deletes the app. Tags never expire by default, so without this the IPs stay in the
# Dynamic Address Groups (and the rules that use them) after the app is gone.
#
# Calls the app's own POST /api/uninstall (a tombstone per cluster and target; resyncs are
# held back meanwhile), then reads GET /api/status until no cluster holds a target. Needs
# only the Azure CLI (signed in): the function key comes from `az functionapp keys list`
# and travels in the x-functions-key header, never in a URL.
#
#   $env:AKSFW_UNINSTALL_DRY_RUN='true'; azd down   show what would be removed; stop azd down
#   $env:AKSFW_SKIP_UNINSTALL='true'; azd down      leave the registrations, knowingly
#   AKSFW_UNINSTALL_WAIT_SECONDS (default 300)      how long to wait for the removals
$ErrorActionPreference = 'Stop'

# A setting from the process environment, else the azd environment, else $default.
function Get-Setting([string]$name, [string]$default = '') {
    $given = [Environment]::GetEnvironmentVariable($name)
    if ($given) { return $given }
    $value = (& azd env get-value $name 2>$null)
    if ($LASTEXITCODE -eq 0) { return "$value".Trim() }
    return $default
}

function Stop-Uninstall([string]$reason) {
    [Console]::Error.WriteLine("aksfw: $reason")
    [Console]::Error.WriteLine('aksfw: the tags aksfw registered are still on Panorama; azd down stopped before deleting anything.')
    [Console]::Error.WriteLine("aksfw: fix the cause and run 'azd down' again, or run 'AKSFW_SKIP_UNINSTALL=true azd down'")
    [Console]::Error.WriteLine('aksfw: to leave them knowingly (then unregister the aks.* and aks_* tags on PAN-OS).')
    exit 1
}

if ((Get-Setting 'AKSFW_SKIP_UNINSTALL' 'false').ToLowerInvariant() -eq 'true') {
    [Console]::Error.WriteLine('aksfw: AKSFW_SKIP_UNINSTALL=true: the tags aksfw registered stay on Panorama.')
    exit 0
}

$app = Get-Setting 'AZURE_FUNCTION_APP_NAME'
$group = Get-Setting 'RESOURCE_GROUP' (Get-Setting 'AZURE_RESOURCE_GROUP')
if (-not $app -or -not $group) {
    Write-Host 'aksfw: no Function App in this azd environment (never provisioned): nothing to uninstall.'
    exit 0
}

$dryRun = (Get-Setting 'AKSFW_UNINSTALL_DRY_RUN' 'false').ToLowerInvariant() -eq 'true'
$waitText = Get-Setting 'AKSFW_UNINSTALL_WAIT_SECONDS' '300'
$waitSeconds = 0
if (-not [int]::TryParse($waitText, [ref]$waitSeconds) -or $waitSeconds -lt 0) {
    Stop-Uninstall 'AKSFW_UNINSTALL_WAIT_SECONDS must be a whole number of seconds'
}

$hostName = (& az functionapp show --resource-group $group --name $app --query defaultHostName --output tsv)
if ($LASTEXITCODE -ne 0) { Stop-Uninstall "could not read the Function App $app in $group (az login? does it still exist?)" }
$key = (& az functionapp keys list --resource-group $group --name $app --query functionKeys.default --output tsv)
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
        exit 0
    }
    if ($waited -ge $waitSeconds) {
        Stop-Uninstall "after $waitSeconds s, $remaining target(s) still hold tags (see 'aksfw status' for the last error)"
    }
    Write-Host "aksfw: $remaining target(s) still hold tags; waiting."
    Start-Sleep -Seconds 5
    $waited += 5
}
