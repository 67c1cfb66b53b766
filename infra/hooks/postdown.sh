#!/bin/sh
# azd postdown hook: what `azd down` leaves behind, once it has deleted the app's resource
# group. azd runs it only when azd down succeeded.
#
# 1. DEPLOY_EVENT_SUBSCRIPTIONS goes back to false: the next `azd up` creates the app before
#    its event subscriptions (the postdeploy hook turns the flag on again). A failed azd down
#    runs no postdown hook, so the flag stays on while the subscriptions may still exist; if
#    the app went nonetheless, the preprovision hook turns it off.
# 2. azd down deletes the resource groups the deployment created, but looks each one up by
#    name in the app's subscription (AZURE_SUBSCRIPTION_ID) only. This hook deletes, naming
#    --subscription on every call, what it leaves in the monitored subscriptions
#    (AKSFW_MONITORED_SUBSCRIPTION_IDS):
#    - rg-<env>-events (tagged aksfw-env-name=<env>), unless its system topic still delivers to
#      someone else (another environment found it as the subscription's existing topic): then
#      the group and topic stay for them, and only this environment's event subscription and
#      alerts go.
#    - on a topic this environment did not create (AKSFW_EXISTING_SYSTEM_TOPIC_IDS): its event
#      subscription (the one delivering to a function of rg-<env>) and its dead-letter alerts
#      (tagged aksfw-env-name=<env>) in the topic's group; the topic stays.
# Whatever cannot be deleted is named, and the hook fails: `azd down` again retries (the app
# is gone, so predown has nothing to uninstall).
set -eu

. "$(dirname "$0")/common.sh"  # env_value, lower, az_tsv

left=""
# left_behind WHAT: note something that could not be deleted.
left_behind() {
    echo "aksfw: could not delete $1" >&2
    left="$left
  $1"
}

echo "aksfw: DEPLOY_EVENT_SUBSCRIPTIONS=false: the next azd up creates the Event Grid subscriptions after its deploy."
azd env set DEPLOY_EVENT_SUBSCRIPTIONS false

subscription=$(env_value AZURE_SUBSCRIPTION_ID)
env_name=$(env_value AZURE_ENV_NAME)
if [ -z "$subscription" ] || [ -z "$env_name" ]; then
    echo "aksfw: this azd environment was never provisioned: nothing else to delete."
    exit 0
fi
events_group="rg-$env_name-events"
app_sites=$(printf '/subscriptions/%s/resourcegroups/rg-%s/providers/microsoft.web/sites/' "$subscription" "$env_name" | lower)
existing=$(env_value AKSFW_EXISTING_SYSTEM_TOPIC_IDS '{}')
monitored=$(env_value AKSFW_MONITORED_SUBSCRIPTION_IDS)
# The monitored subscriptions, and the app's (where the predown hook may have created an
# empty events group for azd), each once.
subscriptions=$(printf '%s,%s' "${monitored:-$subscription}" "$subscription" | tr ', ' '\n\n' | grep . | awk '!seen[tolower($0)]++')

# event_subscriptions SUB GROUP TOPIC: "name<TAB>destination" of each event subscription on it.
event_subscriptions() {
    az_tsv eventgrid system-topic event-subscription list --subscription "$1" --resource-group "$2" \
        --system-topic-name "$3" --query "[].[name, to_string(destination.resourceId)]"
}

# remove_ours SUB GROUP TOPIC: this environment's event subscriptions on the topic, and its
# alerts in the topic's group.
remove_ours() {
    if ! rows=$(event_subscriptions "$1" "$2" "$3"); then
        left_behind "this environment's event subscription on $3 ($2, subscription $1)"
    else
        for name in $(printf '%s\n' "$rows" | awk -F'\t' -v ours="$app_sites" 'NF && index(tolower($2), ours) == 1 { print $1 }'); do
            echo "aksfw: deleting the event subscription $name from $3 ($2, subscription $1)."
            az eventgrid system-topic event-subscription delete --subscription "$1" --resource-group "$2" \
                --system-topic-name "$3" --name "$name" --yes ||
                left_behind "the event subscription $name on $3 ($2, subscription $1)"
        done
    fi
    if ! alerts=$(az_tsv monitor metrics alert list --subscription "$1" --resource-group "$2" \
        --query "[?tags.\"aksfw-env-name\"=='$env_name'].name"); then
        left_behind "this environment's alerts in $2 (subscription $1)"
        return 0
    fi
    for alert in $alerts; do
        echo "aksfw: deleting the alert $alert ($2, subscription $1)."
        az monitor metrics alert delete --subscription "$1" --resource-group "$2" --name "$alert" ||
            left_behind "the alert $alert ($2, subscription $1)"
    done
}

for sub in $subscriptions; do
    # A topic this environment did not create: only its own part of it goes.
    topic=$(printf '%s' "$existing" | tr ',{}' '\n\n\n' | grep -iF "\"$sub\"" | sed -n 's/.*: *"\([^"]*\)".*/\1/p' | head -n 1)
    if [ -n "$topic" ]; then
        remove_ours "$sub" "$(printf '%s' "$topic" | cut -d/ -f5)" "$(printf '%s' "$topic" | cut -d/ -f9)"
    fi

    # This environment's own events group, unless its topic serves someone else.
    if ! groups=$(az_tsv group list --subscription "$sub" --tag "aksfw-env-name=$env_name" --query "[].name"); then
        left_behind "$events_group in subscription $sub (if it exists)"
        continue
    fi
    printf '%s\n' "$groups" | grep -qixF "$events_group" || continue
    if ! topics=$(az_tsv eventgrid system-topic list --subscription "$sub" --resource-group "$events_group" --query "[].name"); then
        left_behind "$events_group in subscription $sub"
        continue
    fi
    others=""
    for name in $topics; do
        if ! rows=$(event_subscriptions "$sub" "$events_group" "$name"); then
            others="$others $name: (its event subscriptions could not be read)"
            continue
        fi
        foreign=$(printf '%s\n' "$rows" | awk -F'\t' -v ours="$app_sites" 'NF && index(tolower($2), ours) != 1 { print $1 }' | paste -sd, -)
        if [ -n "$foreign" ]; then others="$others $name: $foreign"; fi
    done
    if [ -n "$others" ]; then
        echo "aksfw: keeping $events_group in subscription $sub: its system topic also delivers to others ($others )." >&2
        echo "aksfw:   only this environment's part goes; delete the group once nobody uses it:" >&2
        echo "aksfw:   az group delete --subscription $sub --name $events_group" >&2
        for name in $topics; do remove_ours "$sub" "$events_group" "$name"; done
        continue
    fi
    echo "aksfw: deleting $events_group in subscription $sub."
    az group delete --subscription "$sub" --name "$events_group" --yes ||
        left_behind "$events_group in subscription $sub"
done

if [ -n "$left" ]; then
    echo "aksfw: left behind:$left" >&2
    echo "aksfw: run 'azd down' again to retry (the app is gone: nothing to uninstall), or delete them by hand." >&2
    exit 1
fi
echo "aksfw: nothing of this environment is left in the monitored subscriptions."
