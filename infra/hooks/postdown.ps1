# azd postdown hook: what `azd down` leaves behind, once it has deleted the app's resource
# group. azd runs it only when azd down succeeded. The same steps as postdown.sh, which
# explains each:
#
# 1. DEPLOY_EVENT_SUBSCRIPTIONS back to false (the next azd up creates the app first).
# 2. In each monitored subscription (AKSFW_MONITORED_SUBSCRIPTION_IDS) and the app's, naming
#    --subscription on every call: rg-<env>-events (tagged aksfw-env-name=<env>) is deleted,
#    unless its system topic still delivers to someone else (then only this environment's
#    event subscription and alerts go); on a topic this environment did not create
#    (AKSFW_EXISTING_SYSTEM_TOPIC_IDS), its event subscription and its alerts go.
# Whatever cannot be deleted is named, and the hook fails: `azd down` again retries.
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot 'common.ps1')  # Get-EnvValue, Invoke-AzTsv


$script:left = @()
function Add-LeftBehind([string]$What) {
    [Console]::Error.WriteLine("aksfw: could not delete $What")
    $script:left += $What
}

Write-Host 'aksfw: DEPLOY_EVENT_SUBSCRIPTIONS=false: the next azd up creates the Event Grid subscriptions after its deploy.'
& azd env set DEPLOY_EVENT_SUBSCRIPTIONS false
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

$subscription = Get-EnvValue 'AZURE_SUBSCRIPTION_ID'
$envName = Get-EnvValue 'AZURE_ENV_NAME'
if (-not $subscription -or -not $envName) {
    Write-Host 'aksfw: this azd environment was never provisioned: nothing else to delete.'
    exit 0
}
$eventsGroup = "rg-$envName-events"
$appSites = "/subscriptions/$subscription/resourcegroups/rg-$envName/providers/microsoft.web/sites/".ToLowerInvariant()
$existing = Get-EnvValue 'AKSFW_EXISTING_SYSTEM_TOPIC_IDS' '{}'
$existingTopics = if ($existing.Trim()) { $existing | ConvertFrom-Json } else { $null }
$monitored = Get-EnvValue 'AKSFW_MONITORED_SUBSCRIPTION_IDS'
if (-not $monitored) { $monitored = $subscription }
# The monitored subscriptions, and the app's (where the predown hook may have created an
# empty events group for azd), each once.
$subscriptions = @()
foreach ($sub in (("$monitored,$subscription") -split '[, ]' | Where-Object { $_ })) {
    if (-not ($subscriptions | Where-Object { $_ -eq $sub })) { $subscriptions += $sub }
}

# Each event subscription on a topic: @(name, destination).
function Get-EventSubscriptions([string]$Sub, [string]$Group, [string]$Topic) {
    $rows = Invoke-AzTsv eventgrid system-topic event-subscription list --subscription $Sub --resource-group $Group `
        --system-topic-name $Topic --query '[].[name, to_string(destination.resourceId)]'
    if ($null -eq $rows) { return $null }
    $result = New-Object System.Collections.Generic.List[object]
    foreach ($row in $rows) { $result.Add([string[]]($row -split "`t")) }
    return , $result.ToArray()
}

# This environment's event subscriptions on the topic, and its alerts in the topic's group.
function Remove-Ours([string]$Sub, [string]$Group, [string]$Topic) {
    $rows = Get-EventSubscriptions $Sub $Group $Topic
    if ($null -eq $rows) {
        Add-LeftBehind "this environment's event subscription on $Topic ($Group, subscription $Sub)"
    } else {
        foreach ($row in $rows) {
            if (-not $row[1].ToLowerInvariant().StartsWith($appSites)) { continue }
            Write-Host "aksfw: deleting the event subscription $($row[0]) from $Topic ($Group, subscription $Sub)."
            & az eventgrid system-topic event-subscription delete --subscription $Sub --resource-group $Group `
                --system-topic-name $Topic --name $row[0] --yes
            if ($LASTEXITCODE -ne 0) { Add-LeftBehind "the event subscription $($row[0]) on $Topic ($Group, subscription $Sub)" }
        }
    }
    # JSON, not a query naming the tag: a quoted "aksfw-env-name" does not survive PowerShell's
    # native argument passing the same way on every version.
    $alerts = & az monitor metrics alert list --subscription $Sub --resource-group $Group --output json
    if ($LASTEXITCODE -ne 0) {
        Add-LeftBehind "this environment's alerts in $Group (subscription $Sub)"
        return
    }
    $alerts = ($alerts -join "`n") | ConvertFrom-Json
    foreach ($alert in @($alerts)) {
        if ($alert.tags.'aksfw-env-name' -cne $envName) { continue }
        Write-Host "aksfw: deleting the alert $($alert.name) ($Group, subscription $Sub)."
        & az monitor metrics alert delete --subscription $Sub --resource-group $Group --name $alert.name
        if ($LASTEXITCODE -ne 0) { Add-LeftBehind "the alert $($alert.name) ($Group, subscription $Sub)" }
    }
}

foreach ($sub in $subscriptions) {
    # A topic this environment did not create: only its own part of it goes.
    $topicId = $null
    if ($existingTopics) {
        $topicId = $existingTopics.PSObject.Properties | Where-Object { $_.Name -eq $sub } |
            ForEach-Object { $_.Value } | Select-Object -First 1
    }
    if ($topicId) {
        $parts = $topicId -split '/'
        Remove-Ours $sub $parts[4] $parts[8]
    }

    # This environment's own events group, unless its topic serves someone else. The tag filter
    # needs no quoting (key=value).
    $groups = Invoke-AzTsv group list --subscription $sub --tag "aksfw-env-name=$envName" --query '[].name'
    if ($null -eq $groups) {
        Add-LeftBehind "$eventsGroup in subscription $sub (if it exists)"
        continue
    }
    if ($groups -notcontains $eventsGroup) { continue }
    $topics = Invoke-AzTsv eventgrid system-topic list --subscription $sub --resource-group $eventsGroup --query '[].name'
    if ($null -eq $topics) {
        Add-LeftBehind "$eventsGroup in subscription $sub"
        continue
    }
    $others = @()
    foreach ($name in $topics) {
        $rows = Get-EventSubscriptions $sub $eventsGroup $name
        if ($null -eq $rows) { $others += "${name}: (its event subscriptions could not be read)"; continue }
        $foreign = @($rows | Where-Object { -not $_[1].ToLowerInvariant().StartsWith($appSites) } | ForEach-Object { $_[0] })
        if ($foreign.Count -gt 0) { $others += "${name}: $($foreign -join ',')" }
    }
    if ($others.Count -gt 0) {
        [Console]::Error.WriteLine("aksfw: keeping $eventsGroup in subscription ${sub}: its system topic also delivers to others ($($others -join '; ')).")
        [Console]::Error.WriteLine("aksfw:   only this environment's part goes; delete the group once nobody uses it:")
        [Console]::Error.WriteLine("aksfw:   az group delete --subscription $sub --name $eventsGroup")
        foreach ($name in $topics) { Remove-Ours $sub $eventsGroup $name }
        continue
    }
    Write-Host "aksfw: deleting $eventsGroup in subscription $sub."
    & az group delete --subscription $sub --name $eventsGroup --yes
    if ($LASTEXITCODE -ne 0) { Add-LeftBehind "$eventsGroup in subscription $sub" }
}

if ($script:left.Count -gt 0) {
    [Console]::Error.WriteLine("aksfw: left behind: $($script:left -join '; ')")
    [Console]::Error.WriteLine("aksfw: run 'azd down' again to retry (the app is gone: nothing to uninstall), or delete them by hand.")
    exit 1
}
Write-Host 'aksfw: nothing of this environment is left in the monitored subscriptions.'
exit 0
