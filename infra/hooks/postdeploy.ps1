# azd postdeploy hook: create the Event Grid subscriptions once the code is deployed.
#
# An Event Grid subscription to an Azure Function can only be created when the function
# (resource_event) exists, that is after the first `azd deploy`. So the first provision
# leaves them out (DEPLOY_EVENT_SUBSCRIPTIONS=false); this hook turns the flag on and
# provisions once more. Later deploys find the flag on and do nothing; later provisions keep
# the subscriptions because the flag stays on.
$ErrorActionPreference = 'Stop'

$current = (& azd env get-value DEPLOY_EVENT_SUBSCRIPTIONS 2>$null)
if ($LASTEXITCODE -eq 0 -and "$current".Trim() -eq 'true') {
    Write-Host 'aksfw: Event Grid subscriptions already deployed (DEPLOY_EVENT_SUBSCRIPTIONS=true).'
    exit 0
}

Write-Host 'aksfw: creating the Event Grid subscriptions to the resource_event function.'
& azd env set DEPLOY_EVENT_SUBSCRIPTIONS true
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

# The function may take a moment to be listed after a first deploy: try twice.
& azd provision --no-prompt
if ($LASTEXITCODE -eq 0) { exit 0 }
Write-Warning 'aksfw: provisioning failed; retrying in 60 seconds.'
Start-Sleep -Seconds 60
& azd provision --no-prompt
if ($LASTEXITCODE -eq 0) { exit 0 }

# Leave the flag off so that the next `azd deploy` (or `azd up`) tries again.
& azd env set DEPLOY_EVENT_SUBSCRIPTIONS false
Write-Error "aksfw: could not create the Event Grid subscriptions; run 'azd deploy' again."
exit 1
