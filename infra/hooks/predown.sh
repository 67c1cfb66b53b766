#!/bin/sh
# azd predown hook: remove every tag aksfw registered, on every target, before `azd down`
# deletes the app. Tags never expire by default, so without this the IPs stay in the
# Dynamic Address Groups (and the rules that use them) after the app is gone.
#
# Calls the app's own POST /api/uninstall (a tombstone per cluster and target; resyncs are
# held back meanwhile), then reads GET /api/status until no cluster holds a target. Needs
# only the Azure CLI (signed in) and curl: the function key comes from
# `az functionapp keys list` and travels in a header read from stdin, never on a command line.
# Every az call names the app's subscription (AZURE_SUBSCRIPTION_ID).
#
# An environment that was provisioned but never deployed (no Function App, or one that lists no
# functions) registered nothing: nothing to uninstall, and azd down goes on.
#
# Before that, what azd down itself would do wrong:
# - It deletes rg-<env>-events in the app's subscription (a group the deployment created). If
#   the Event Grid system topic there, the subscription's only Resource Manager topic, also
#   delivers to someone else (another aksfw environment uses it as its existing topic), they
#   would lose their events: azd down stops here, unless AKSFW_DELETE_SHARED_TOPIC=true.
# - It looks every group it deletes up by name in the app's subscription only. When this
#   environment created events groups in other subscriptions but none in the app's, an empty
#   rg-<env>-events (tagged aksfw-env-name) is created there for it to find and delete; the
#   postdown hook deletes the other subscriptions' groups.
#
#   AKSFW_UNINSTALL_DRY_RUN=true azd down       show what would be removed; stop azd down
#   AKSFW_SKIP_UNINSTALL=true azd down          leave the registrations, knowingly
#   AKSFW_UNINSTALL_WAIT_SECONDS (default 300)  how long to wait for the removals
#   AKSFW_DELETE_SHARED_TOPIC=true azd down     delete the events topic though others use it
set -eu

# A setting from the process environment, else the azd environment, else $2.
setting() {
    eval "given=\${$1-}"
    if [ -n "$given" ]; then
        printf '%s' "$given"
    elif value=$(azd env get-value "$1" 2>/dev/null); then
        printf '%s' "$value" | tr -d '\r'
    else
        printf '%s' "${2-}"
    fi
}

. "$(dirname "$0")/common.sh"  # env_value, lower, az_tsv

is_true() { [ "$(printf '%s' "$1" | tr -d '\r ' | lower)" = "true" ]; }


fail() {
    echo "aksfw: $1" >&2
    echo "aksfw: the tags aksfw registered are still on Panorama; azd down stopped before deleting anything." >&2
    echo "aksfw: fix the cause and run 'azd down' again, or run 'AKSFW_SKIP_UNINSTALL=true azd down'" >&2
    echo "aksfw: to leave them knowingly (then unregister the aks.* and aks_* tags on PAN-OS)." >&2
    exit 1
}

subscription=$(setting AZURE_SUBSCRIPTION_ID)
env_name=$(setting AZURE_ENV_NAME)
if [ -z "$subscription" ] || [ -z "$env_name" ]; then
    echo "aksfw: this azd environment was never provisioned (no AZURE_SUBSCRIPTION_ID): nothing to uninstall."
    exit 0
fi
events_group="rg-$env_name-events"
# Where this environment's event subscriptions deliver: functions of the app in rg-<env>.
app_sites=$(printf '/subscriptions/%s/resourcegroups/rg-%s/providers/microsoft.web/sites/' "$subscription" "$env_name" | lower)

# foreign_deliveries: the event subscriptions on the system topics of rg-<env>-events (in the
# app's subscription) that deliver anywhere but to this environment's app, one a line.
foreign_deliveries() {
    topics=$(az_tsv eventgrid system-topic list --subscription "$subscription" --resource-group "$events_group" --query "[].name")
    for topic in $topics; do
        rows=$(az_tsv eventgrid system-topic event-subscription list --subscription "$subscription" \
            --resource-group "$events_group" --system-topic-name "$topic" \
            --query "[].[name, to_string(destination.resourceId)]")
        printf '%s\n' "$rows" | awk -F'\t' -v ours="$app_sites" -v topic="$topic" '
            NF && index(tolower($2), ours) != 1 {
                where = ($2 == "null") ? "an endpoint outside Resource Manager" : $2
                print topic ": " $1 " -> " where
            }'
    done
}

group_exists=$(az group exists --subscription "$subscription" --name "$events_group") ||
    fail "could not look for $events_group in $subscription (az login?)"
if is_true "$group_exists"; then
    shared=$(foreign_deliveries) || fail "could not read the Event Grid subscriptions in $events_group"
    if [ -n "$shared" ]; then
        echo "aksfw: $events_group (subscription $subscription) holds the subscription's Resource Manager system topic," >&2
        echo "aksfw: and it also delivers to others:" >&2
        printf '%s\n' "$shared" | sed 's/^/aksfw:   /' >&2
        echo "aksfw: azd down deletes that group, the topic with it (a group this deployment created), and they would stop receiving events." >&2
        if ! is_true "$(setting AKSFW_DELETE_SHARED_TOPIC false)"; then
            echo "aksfw: nothing was deleted and no tag removed. Tear them down first, or run" >&2
            echo "aksfw: 'AKSFW_DELETE_SHARED_TOPIC=true azd down' to delete it knowingly (an aksfw environment then" >&2
            echo "aksfw: creates a topic of its own at its next 'azd provision'; another tool must be set up again)." >&2
            exit 1
        fi
        echo "aksfw: AKSFW_DELETE_SHARED_TOPIC=true: deleting it anyway." >&2
    fi
fi

# go_on: let azd down delete. When this environment created events groups in other
# subscriptions but there is none in the app's, azd would fail to list the one it looks for
# there (by name): an empty one is created for it to delete.
go_on() {
    existing=$(setting AKSFW_EXISTING_SYSTEM_TOPIC_IDS '{}')
    monitored=$(setting AKSFW_MONITORED_SUBSCRIPTION_IDS)
    own_elsewhere=false
    for sub in $(printf '%s' "${monitored:-$subscription}" | tr ', ' '\n\n'); do
        if printf '%s' "$existing" | grep -qiF "\"$sub\""; then continue; fi
        if [ "$(printf '%s' "$sub" | lower)" = "$(printf '%s' "$subscription" | lower)" ]; then
            own_elsewhere=false
            break
        fi
        own_elsewhere=true
    done
    if [ "$own_elsewhere" = "true" ] && ! is_true "$group_exists"; then
        echo "aksfw: creating an empty $events_group in $subscription: azd down looks the groups it deletes up by name"
        echo "aksfw: in the app's subscription, and this environment's events groups are in others (the postdown hook deletes them)."
        az group create --subscription "$subscription" --name "$events_group" \
            --location "$(setting AZURE_LOCATION)" --tags "aksfw-env-name=$env_name" --output none
    fi
    exit 0
}

if is_true "$(setting AKSFW_SKIP_UNINSTALL false)"; then
    echo "aksfw: AKSFW_SKIP_UNINSTALL=true: the tags aksfw registered stay on Panorama." >&2
    go_on
fi

app=$(setting AZURE_FUNCTION_APP_NAME)
group=$(setting RESOURCE_GROUP "$(setting AZURE_RESOURCE_GROUP)")
if [ -z "$app" ] || [ -z "$group" ]; then
    echo "aksfw: no Function App in this azd environment (never provisioned): nothing to uninstall."
    go_on
fi

dry_run=false
if is_true "$(setting AKSFW_UNINSTALL_DRY_RUN false)"; then
    dry_run=true
fi
wait_s=$(setting AKSFW_UNINSTALL_WAIT_SECONDS 300)
case "$wait_s" in '' | *[!0-9]*) fail "AKSFW_UNINSTALL_WAIT_SECONDS must be a whole number of seconds" ;; esac

status=0
host=$(az_tsv functionapp show --subscription "$subscription" --resource-group "$group" --name "$app" \
    --query defaultHostName) || status=$?
# az's show commands exit 3 when the resource (or its group) does not exist (azure-cli#6612).
if [ "$status" = 3 ]; then
    echo "aksfw: the Function App $app is not in $group (never created, or deleted): it registers nothing; nothing to uninstall."
    go_on
fi
[ "$status" = 0 ] || fail "could not read the Function App $app in $group (az login?)"

status=0
functions=$(az_tsv functionapp function list --subscription "$subscription" --resource-group "$group" \
    --name "$app" --query "[].name") || status=$?
if [ "$status" = 0 ] && [ -z "$(printf '%s' "$functions" | tr -d ' \n')" ]; then
    if is_true "$(setting DEPLOY_EVENT_SUBSCRIPTIONS false)"; then
        fail "the Function App $app lists no functions, yet it was deployed (DEPLOY_EVENT_SUBSCRIPTIONS=true): its uninstall cannot run; deploy it again (azd deploy)"
    fi
    echo "aksfw: the Function App $app lists no functions: provisioned but never deployed, it registered nothing; nothing to uninstall."
    go_on
fi

key=$(az_tsv functionapp keys list --subscription "$subscription" --resource-group "$group" --name "$app" \
    --query functionKeys.default) || fail "could not read a function key of $app (az functionapp keys list)"
[ -n "$host" ] && [ -n "$key" ] || fail "the Function App $app has no host name or no default function key"

answer=$(mktemp)
trap 'rm -f "$answer"' EXIT

# call METHOD ROUTE [BODY]: the HTTP status on stdout, the answer in $answer.
call() {
    body=${3-}
    if [ -n "$body" ]; then set -- "$1" "$2" --data "$body"; else set -- "$1" "$2"; fi
    method=$1 route=$2
    shift 2
    printf 'header = "x-functions-key: %s"\n' "$key" | curl --silent --show-error --config - \
        --request "$method" --max-time 240 --connect-timeout 10 --output "$answer" \
        --write-out '%{http_code}' --header 'Content-Type: application/json' \
        "$@" "https://$host/api/$route"
}

echo "aksfw: removing the tags aksfw registered (https://$host/api/uninstall, dryRun=$dry_run)."
code=$(call POST uninstall "{\"dryRun\": $dry_run}") ||
    fail "https://$host/api/uninstall could not be reached"
case "$code" in
    200 | 202) ;;
    *) fail "https://$host/api/uninstall answered HTTP $code: $(head -c 300 "$answer")" ;;
esac
# One line per (cluster, target): the answer's targets are flat JSON objects.
grep -o '{"cluster": [^}]*}' "$answer" | sed 's/^/aksfw:   /' || echo "aksfw:   nothing applied"
if [ "$dry_run" = "true" ]; then
    echo "aksfw: dry run (AKSFW_UNINSTALL_DRY_RUN=true): nothing removed; azd down stops here." >&2
    echo "aksfw: run 'azd down' without it to remove these, or 'AKSFW_SKIP_UNINSTALL=true azd down' to leave them." >&2
    exit 1
fi

waited=0
while :; do
    code=$(call GET status) || fail "https://$host/api/status could not be reached"
    [ "$code" = "200" ] || fail "https://$host/api/status answered HTTP $code"
    remaining=$(grep -o '"target": "[^"]*"' "$answer" | wc -l | tr -d ' ')
    if [ "$remaining" = "0" ]; then
        echo "aksfw: every tag aksfw registered is removed; no cluster holds a target."
        go_on
    fi
    if [ "$waited" -ge "$wait_s" ]; then
        fail "after $wait_s s, $remaining target(s) still hold tags (see 'aksfw status' for the last error)"
    fi
    echo "aksfw: $remaining target(s) still hold tags; waiting."
    sleep 5
    waited=$((waited + 5))
done
