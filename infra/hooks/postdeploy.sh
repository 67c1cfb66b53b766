#!/bin/sh
# azd postdeploy hook: create the Event Grid subscriptions once the code is deployed.
#
# An Event Grid subscription to an Azure Function can only be created when the function
# (resource_event) exists, that is after the first `azd deploy`. So the first provision
# leaves them out (DEPLOY_EVENT_SUBSCRIPTIONS=false); this hook turns the flag on and
# provisions once more. Later deploys find the flag on and do nothing; later provisions keep
# the subscriptions because the flag stays on.
set -eu

if [ "$(azd env get-value DEPLOY_EVENT_SUBSCRIPTIONS 2>/dev/null || true)" = "true" ]; then
    echo "aksfw: Event Grid subscriptions already deployed (DEPLOY_EVENT_SUBSCRIPTIONS=true)."
    exit 0
fi

echo "aksfw: creating the Event Grid subscriptions to the resource_event function."
azd env set DEPLOY_EVENT_SUBSCRIPTIONS true
# The function may take a moment to be listed after a first deploy: try twice.
if azd provision --no-prompt; then
    exit 0
fi
echo "aksfw: provisioning failed; retrying in 60 seconds." >&2
sleep 60
if azd provision --no-prompt; then
    exit 0
fi
# Leave the flag off so that the next `azd deploy` (or `azd up`) tries again.
azd env set DEPLOY_EVENT_SUBSCRIPTIONS false
echo "aksfw: could not create the Event Grid subscriptions; run 'azd deploy' again." >&2
exit 1
