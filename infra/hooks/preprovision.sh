#!/bin/sh
# azd preprovision hook: what the Bicep cannot find out by itself, and what would fail the
# provisioning half-way, checked before anything is created. Every az call names its
# subscription.
#
# 1. Region: AZURE_LOCATION must offer Flex Consumption (az functionapp
#    list-flexconsumption-locations); else stop with the regions that do.
# 2. Key Vault: a soft-deleted vault of this environment (its azd-env-name tag, same region)
#    still holds the vault's name (kv-<token>, which only the Bicep can compute): stop with the
#    purge command, or with why it cannot be purged.
# 3. DEPLOY_EVENT_SUBSCRIPTIONS=true while the Function App it was set for is gone (an
#    `azd down` that stopped half-way, a group deleted by hand): back to false, so that this
#    provision does not create event subscriptions to a function that does not exist yet; the
#    postdeploy hook sets it again.
# 4. With AKSFW_VNET_ENABLED=true, Flex Consumption's virtual network integration needs the
#    Microsoft.App resource provider registered in the app's subscription (the template uses
#    it only as a subnet delegation, so Resource Manager does not register it on its own).
# 5. Clusters. The ones carrying the discovery tag (AKSFW_DISCOVERY_TAG, default aksfw) in the
#    monitored subscriptions (AKSFW_MONITORED_SUBSCRIPTION_IDS, default the app's
#    subscription) go into AKSFW_DISCOVERED_CLUSTER_IDS, so that the Bicep grants the
#    credential roles on each of them instead of on whole subscriptions; a cluster tagged
#    later gets its roles at the next `azd provision`. Each of them and each explicit one
#    (AKSFW_CLUSTERS) is then read (az aks list, one call per subscription):
#    - Local accounts: on a cluster without Microsoft Entra ID authentication (no aadProfile)
#      whose local accounts are not disabled, the Cluster User Role lists an admin-equivalent
#      credential ("On clusters that don't use Microsoft Entra ID, the clusterUser role has
#      the same effect of clusterAdmin role": Microsoft Learn, AKS, control-kubeconfig-access).
#      On an Entra ID cluster it lists an Entra ID kubeconfig whatever disableLocalAccounts
#      says (the local admin needs listClusterAdminCredential, never granted); a cluster with
#      neither authenticates no one with it. Such clusters are listed in
#      AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS (the Bicep then withholds the role) and, when tagged,
#      left out of AKSFW_DISCOVERED_CLUSTER_IDS, each with a warning, unless
#      AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS=true. A cluster that cannot be read counts as one.
#    - With AKSFW_WATCHER_ENABLED=true, the watched clusters (explicit and discovered) without
#      an OIDC issuer (the watcher identity's federated credential needs it) or without
#      workload identity (the watcher pod's token needs it) go into AKSFW_NO_OIDC_CLUSTER_IDS:
#      the Bicep leaves them out of the watcher identities instead of failing the whole
#      provision; a warning names the fix.
# 6. Event Grid: Azure allows one Resource Manager system topic per subscription. One that
#    this environment did not create (anything outside rg-<env>-events) in a monitored
#    subscription goes into AKSFW_EXISTING_SYSTEM_TOPIC_IDS, {"<subscription>": "<topic id>"},
#    so that the Bicep adds this environment's event subscription to it instead of failing on
#    a second topic. It must have a system-assigned identity (Event Grid dead-letters with
#    it): else stop with the command that adds one.
#
# Needs the Azure CLI signed in (az login) with read access to those subscriptions.
set -eu

. "$(dirname "$0")/common.sh"  # env_value, lower, az_tsv

warn() { echo "aksfw: warning: $*" >&2; }

stop() {
    for line in "$@"; do echo "aksfw: $line" >&2; done
    exit 1
}

# add LIST ITEM: LIST (comma-separated) with ITEM, unless it holds it already in any case.
add() {
    case ",$(printf '%s' "$1" | lower)," in
        *",$(printf '%s' "$2" | lower),"*) printf '%s' "$1" ;;
        *) printf '%s' "${1:+$1,}$2" ;;
    esac
}

# has LIST ITEM: whether LIST (comma-separated) holds ITEM, in any case.
has() {
    case ",$(printf '%s' "$1" | lower)," in *",$(printf '%s' "$2" | lower),"*) return 0 ;; esac
    return 1
}

subscription=$(env_value AZURE_SUBSCRIPTION_ID)
if [ -z "$subscription" ]; then
    subscription=$(az_tsv account show --query id)
fi
env_name=$(env_value AZURE_ENV_NAME)
location=$(env_value AZURE_LOCATION | lower | tr -d ' ')
events_group="rg-$env_name-events"

# --- 1. the region ------------------------------------------------------------------------
if [ -n "$location" ]; then
    regions=$(az_tsv functionapp list-flexconsumption-locations --subscription "$subscription" --query "[].name")
    regions=$(printf '%s\n' "$regions" | lower | tr -d ' ' | grep . | sort -u || true)
    if [ -z "$regions" ]; then
        warn "az functionapp list-flexconsumption-locations listed no region: the region check is skipped."
    elif ! printf '%s\n' "$regions" | grep -qxF "$location"; then
        stop "the region $location does not offer Flex Consumption, the plan aksfw runs on." \
            "Regions that do (az functionapp list-flexconsumption-locations): $(printf '%s' "$regions" | tr '\n' ' ')" \
            "Choose one of them: azd env set AZURE_LOCATION <region>"
    else
        echo "aksfw: $location offers Flex Consumption."
    fi
else
    echo "aksfw: AZURE_LOCATION is not set yet: the region and Key Vault checks run at the next provision."
fi

# --- 2. a soft-deleted Key Vault of this environment ----------------------------------------
if [ -n "$location" ] && [ -n "$env_name" ]; then
    deleted=$(az_tsv keyvault list-deleted --subscription "$subscription" --resource-type vault \
        --query '[].[name, properties.location, to_string(properties.tags."azd-env-name"), to_string(properties.purgeProtectionEnabled), to_string(properties.scheduledPurgeDate)]')
    vault=$(printf '%s\n' "$deleted" | awk -F'\t' -v env="$env_name" -v loc="$location" '
        { where = tolower($2); gsub(/ /, "", where) }
        $3 == env && where == loc { print; exit }')
    if [ -n "$vault" ]; then
        name=$(printf '%s' "$vault" | cut -f1)
        protected=$(printf '%s' "$vault" | cut -f4 | lower)
        until=$(printf '%s' "$vault" | cut -f5)
        if [ "$protected" = "true" ]; then
            stop "a deleted Key Vault of this environment, $name ($location), still holds the vault's name, and purge protection keeps it until $until: provisioning would fail." \
                "Deploy under another environment name (azd env new), or bring the vault back: create its resource group again" \
                "(az group create --subscription $subscription --name rg-$env_name --location $location), then" \
                "az keyvault recover --subscription $subscription --name $name"
        fi
        stop "a deleted Key Vault of this environment, $name ($location), still holds the vault's name (soft delete keeps it 90 days): provisioning would fail." \
            "Purge it, then provision again: az keyvault purge --subscription $subscription --name $name --location $location" \
            "(its secrets go with it: set the Panorama key again if azd does not hold it; 'azd down --purge' purges at teardown)."
    fi
fi

# --- 3. DEPLOY_EVENT_SUBSCRIPTIONS without its app ------------------------------------------
if [ "$(env_value DEPLOY_EVENT_SUBSCRIPTIONS false | lower)" = "true" ]; then
    app=$(env_value AZURE_FUNCTION_APP_NAME)
    app_group=$(env_value RESOURCE_GROUP "rg-$env_name")
    gone=""
    if [ -n "$app" ]; then
        app_group_exists=$(az group exists --subscription "$subscription" --name "$app_group")
    fi
    if [ -z "$app" ]; then
        gone="this environment names no Function App (AZURE_FUNCTION_APP_NAME)"
    elif [ "$(printf '%s' "$app_group_exists" | tr -d '\r' | lower)" != "true" ]; then
        gone="its resource group $app_group is gone"
    else
        status=0
        az functionapp show --subscription "$subscription" --resource-group "$app_group" --name "$app" \
            --query id --output tsv >/dev/null 2>&1 || status=$?
        # az's show commands exit 3 when the resource does not exist (azure-cli#6612).
        if [ "$status" = 3 ]; then gone="the Function App $app is gone"; fi
    fi
    if [ -n "$gone" ]; then
        echo "aksfw: DEPLOY_EVENT_SUBSCRIPTIONS was true but $gone (an azd down that stopped half-way?): set to false;"
        echo "aksfw: the Event Grid subscriptions come back after the deploy (postdeploy hook)."
        azd env set DEPLOY_EVENT_SUBSCRIPTIONS false
    fi
fi

# --- 4. Microsoft.App for the virtual network -----------------------------------------------
vnet=$(env_value AKSFW_VNET_ENABLED false | lower)
if [ "$vnet" = "true" ]; then
    echo "aksfw: registering the Microsoft.App resource provider in $subscription (VNet integration)."
    az provider register --namespace Microsoft.App --subscription "$subscription" --wait
fi

# --- 5. the clusters ------------------------------------------------------------------------
# Empty = the app's subscription, as in the Bicep (monitoredSubscriptionIdsCsv).
subscriptions=$(env_value AKSFW_MONITORED_SUBSCRIPTION_IDS)
subscriptions=$(printf '%s' "${subscriptions:-$subscription}" | tr ', ' '\n\n' | grep . | awk '!seen[tolower($0)]++' || true)
tag=$(env_value AKSFW_DISCOVERY_TAG aksfw)
discovered=""
if [ -z "$tag" ]; then
    echo "aksfw: no discovery tag; only the explicit clusters get cluster roles."
else
    for sub in $subscriptions; do
        # The tag filter runs in Resource Manager (key=value, or a key alone); --tag cannot be
        # combined with --resource-type, hence the query. A failed listing stops the hook (set -e):
        # provisioning without it would leave tagged clusters without their roles.
        ids=$(az_tsv resource list --subscription "$sub" --tag "$tag" \
            --query "[?type=='Microsoft.ContainerService/managedClusters'].id")
        for id in $ids; do
            discovered=$(add "$discovered" "$id")
            echo "aksfw: found $id"
        done
    done
fi

# The explicit clusters' IDs, from the JSON array AKSFW_CLUSTERS (no JSON tool needed: the
# resource ID pattern; JSON may escape "/" as "\/").
explicit=$(env_value AKSFW_CLUSTERS "" | sed 's#\\/#/#g' |
    grep -oiE '/subscriptions/[^/"]+/resourcegroups/[^/"]+/providers/microsoft\.containerservice/managedclusters/[^/" ]+' |
    lower | awk '!seen[$0]++' | paste -sd, - || true)

clusters=$(printf '%s,%s' "$explicit" "$discovered" | tr ',' '\n' | lower | grep . | awk '!seen[$0]++' || true)
properties=$(mktemp)
trap 'rm -f "$properties"' EXIT
for sub in $(printf '%s\n' "$clusters" | cut -d/ -f3 | awk 'NF && !seen[$0]++'); do
    # One row per cluster: id, Entra ID authentication, local accounts disabled, OIDC issuer,
    # workload identity.
    az_tsv aks list --subscription "$sub" \
        --query '[].[id, to_string(aadProfile != `null`), to_string(disableLocalAccounts), to_string(oidcIssuerProfile.enabled), to_string(securityProfile.workloadIdentity.enabled)]' \
        >>"$properties"
done

allow=$(env_value AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS false | lower)
local_accounts=""
without_oidc=""
for id in $clusters; do
    row=$(awk -F'\t' -v id="$id" 'tolower($1) == id { print; exit }' "$properties")
    if [ -z "$row" ]; then
        warn "could not read $id (does it exist? may you read it?): taken as a cluster with local accounts and no OIDC issuer until it can be read."
        entra=false disabled=false oidc=false workload=false
    else
        entra=$(printf '%s' "$row" | cut -f2 | lower)
        disabled=$(printf '%s' "$row" | cut -f3 | lower)
        oidc=$(printf '%s' "$row" | cut -f4 | lower)
        workload=$(printf '%s' "$row" | cut -f5 | lower)
    fi
    if [ "$entra" != "true" ] && [ "$disabled" != "true" ]; then
        local_accounts=$(add "$local_accounts" "$id")
    elif [ "$entra" != "true" ]; then
        warn "$id has neither Microsoft Entra ID authentication nor local accounts: the 'azure' credential cannot sign in to it (give it Entra ID, or a 'token' credential)."
    fi
    if [ "$oidc" != "true" ] || [ "$workload" != "true" ]; then
        without_oidc=$(add "$without_oidc" "$id")
    fi
done

for id in $(printf '%s' "$local_accounts" | tr ',' ' '); do
    warn "$id signs in with local accounts (no Microsoft Entra ID): its Cluster User Role lists an admin-equivalent credential."
    if [ "$allow" = "true" ]; then
        warn "  AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS=true: the app's identity gets it anyway."
    elif has "$explicit" "$id"; then
        warn "  not granted the Cluster User Role (AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS): aksfw cannot read it with the 'azure' credential."
    else
        warn "  left out of AKSFW_DISCOVERED_CLUSTER_IDS: no roles on it, aksfw lists it but cannot read its Services."
    fi
done
if [ -n "$local_accounts" ] && [ "$allow" != "true" ]; then
    warn "enable Microsoft Entra ID (az aks update --enable-aad --aad-admin-group-object-ids <group> --disable-local-accounts), give it a 'token'"
    warn "credential in AKSFW_CLUSTERS, or grant the role knowingly: azd env set AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS true"
fi

kept=""
for id in $(printf '%s' "$discovered" | tr ',' ' '); do
    if [ "$allow" = "true" ] || ! has "$local_accounts" "$id"; then
        kept=$(add "$kept" "$id")
    fi
done

no_oidc=""
if [ "$(env_value AKSFW_WATCHER_ENABLED false | lower)" = "true" ]; then
    for id in $(printf '%s,%s' "$explicit" "$kept" | tr ',' '\n' | lower | grep . | awk '!seen[$0]++' || true); do
        if has "$without_oidc" "$id"; then
            no_oidc=$(add "$no_oidc" "$id")
            warn "$id has no OIDC issuer or no workload identity: no watcher identity for it (AKSFW_NO_OIDC_CLUSTER_IDS); Service label changes there wait for the timer."
            warn "  to watch it: az aks update --subscription $(printf '%s' "$id" | cut -d/ -f3) --resource-group $(printf '%s' "$id" | cut -d/ -f5) --name $(printf '%s' "$id" | cut -d/ -f9) --enable-oidc-issuer --enable-workload-identity, then azd provision"
        fi
    done
fi

count=$(printf '%s' "$kept" | tr ',' '\n' | grep -c . || true)
echo "aksfw: $count tagged cluster(s) get their cluster roles (AKSFW_DISCOVERED_CLUSTER_IDS)."
azd env set AKSFW_DISCOVERED_CLUSTER_IDS "$kept"
azd env set AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS "$local_accounts"
azd env set AKSFW_NO_OIDC_CLUSTER_IDS "$no_oidc"

# --- 6. the subscriptions' existing Resource Manager system topics ---------------------------
existing=""
without_identity=""
for sub in $subscriptions; do
    rows=$(az_tsv eventgrid system-topic list --subscription "$sub" \
        --query '[].[id, topicType, to_string(identity.type)]')
    topic=$(printf '%s\n' "$rows" | awk -F'\t' 'tolower($2) == "microsoft.resources.subscriptions" { print; exit }')
    [ -n "$topic" ] || continue
    id=$(printf '%s' "$topic" | cut -f1)
    group=$(printf '%s' "$id" | cut -d/ -f5)
    if [ "$(printf '%s' "$group" | lower)" = "$(printf '%s' "$events_group" | lower)" ]; then
        echo "aksfw: $sub: the Resource Manager system topic is this environment's own ($id)."
        continue
    fi
    echo "aksfw: $sub: adding to the subscription's existing Resource Manager system topic $id (Azure allows one per subscription)."
    existing="${existing:+$existing, }\"$sub\": \"$id\""
    case "$(printf '%s' "$topic" | cut -f3 | lower)" in
        *systemassigned*) ;;
        *) without_identity="$without_identity $sub/$group/$(printf '%s' "$id" | cut -d/ -f9)" ;;
    esac
done
azd env set AKSFW_EXISTING_SYSTEM_TOPIC_IDS "{$existing}"

if [ -n "$without_identity" ]; then
    for found in $without_identity; do
        sub=${found%%/*} rest=${found#*/}
        echo "aksfw: the system topic ${rest#*/} (group ${rest%%/*}, subscription $sub) has no system-assigned identity, which Event Grid dead-letters with:" >&2
        echo "aksfw:   az eventgrid system-topic update --subscription $sub --resource-group ${rest%%/*} --name ${rest#*/} --identity systemassigned" >&2
    done
    stop "add it (nothing else on the topic changes), then provision again."
fi
