#!/bin/sh
# azd predown hook: remove every tag aksfw registered, on every target, before `azd down`
# deletes the app. Tags never expire by default, so without this the IPs stay in the
# Dynamic Address Groups (and the rules that use them) after the app is gone.
#
# Calls the app's own POST /api/uninstall (a tombstone per cluster and target; resyncs are
# held back meanwhile), then reads GET /api/status until no cluster holds a target. Needs
# only the Azure CLI (signed in) and curl: the function key comes from
# `az functionapp keys list` and travels in a header read from stdin, never on a command line.
#
#   AKSFW_UNINSTALL_DRY_RUN=true azd down       show what would be removed; stop azd down
#   AKSFW_SKIP_UNINSTALL=true azd down          leave the registrations, knowingly
#   AKSFW_UNINSTALL_WAIT_SECONDS (default 300)  how long to wait for the removals
set -eu

# A setting from the process environment, else the azd environment, else $2.
setting() {
    eval "given=\${$1-}"
    if [ -n "$given" ]; then
        printf '%s' "$given"
    elif value=$(azd env get-value "$1" 2>/dev/null); then
        printf '%s' "$value"
    else
        printf '%s' "${2-}"
    fi
}

lower() { tr '[:upper:]' '[:lower:]'; }

fail() {
    echo "aksfw: $1" >&2
    echo "aksfw: the tags aksfw registered are still on Panorama; azd down stopped before deleting anything." >&2
    echo "aksfw: fix the cause and run 'azd down' again, or run 'AKSFW_SKIP_UNINSTALL=true azd down'" >&2
    echo "aksfw: to leave them knowingly (then unregister the aks.* and aks_* tags on PAN-OS)." >&2
    exit 1
}

if [ "$(setting AKSFW_SKIP_UNINSTALL false | lower)" = "true" ]; then
    echo "aksfw: AKSFW_SKIP_UNINSTALL=true: the tags aksfw registered stay on Panorama." >&2
    exit 0
fi

app=$(setting AZURE_FUNCTION_APP_NAME)
group=$(setting RESOURCE_GROUP "$(setting AZURE_RESOURCE_GROUP)")
if [ -z "$app" ] || [ -z "$group" ]; then
    echo "aksfw: no Function App in this azd environment (never provisioned): nothing to uninstall."
    exit 0
fi

dry_run=false
if [ "$(setting AKSFW_UNINSTALL_DRY_RUN false | lower)" = "true" ]; then
    dry_run=true
fi
wait_s=$(setting AKSFW_UNINSTALL_WAIT_SECONDS 300)
case "$wait_s" in '' | *[!0-9]*) fail "AKSFW_UNINSTALL_WAIT_SECONDS must be a whole number of seconds" ;; esac

host=$(az functionapp show --resource-group "$group" --name "$app" --query defaultHostName --output tsv) ||
    fail "could not read the Function App $app in $group (az login? does it still exist?)"
key=$(az functionapp keys list --resource-group "$group" --name "$app" --query functionKeys.default --output tsv) ||
    fail "could not read a function key of $app (az functionapp keys list)"
host=$(printf '%s' "$host" | tr -d '\r')
key=$(printf '%s' "$key" | tr -d '\r')
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
        exit 0
    fi
    if [ "$waited" -ge "$wait_s" ]; then
        fail "after $wait_s s, $remaining target(s) still hold tags (see 'aksfw status' for the last error)"
    fi
    echo "aksfw: $remaining target(s) still hold tags; waiting."
    sleep 5
    waited=$((waited + 5))
done
