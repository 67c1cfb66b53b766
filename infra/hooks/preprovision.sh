#!/bin/sh
# azd preprovision hook: what the Bicep cannot find out by itself.
#
# 1. With AKSFW_VNET_ENABLED=true, Flex Consumption's virtual network integration needs the
#    Microsoft.App resource provider registered in the app's subscription (the template uses
#    it only as a subnet delegation, so Resource Manager does not register it on its own).
# 2. The clusters carrying the discovery tag (AKSFW_DISCOVERY_TAG, default aksfw) in the
#    monitored subscriptions (AKSFW_MONITORED_SUBSCRIPTION_IDS, default the app's
#    subscription) go into AKSFW_DISCOVERED_CLUSTER_IDS, so that the Bicep grants the
#    credential roles on each of them instead of on whole subscriptions. A cluster tagged
#    later gets its roles at the next `azd provision` (or `azd up`).
#
# Needs the Azure CLI signed in (az login) with read access to those subscriptions.
set -eu

# An azd environment value, or $2 when it is not set at all (an empty value stays empty).
env_value() {
    if value=$(azd env get-value "$1" 2>/dev/null); then
        printf '%s' "$value"
    else
        printf '%s' "${2-}"
    fi
}

subscription=$(env_value AZURE_SUBSCRIPTION_ID)
if [ -z "$subscription" ]; then
    subscription=$(az account show --query id --output tsv)
    subscription=$(printf '%s' "$subscription" | tr -d '\r')
fi

vnet=$(env_value AKSFW_VNET_ENABLED false | tr '[:upper:]' '[:lower:]')
if [ "$vnet" = "true" ]; then
    echo "aksfw: registering the Microsoft.App resource provider in $subscription (VNet integration)."
    az provider register --namespace Microsoft.App --subscription "$subscription" --wait
fi

tag=$(env_value AKSFW_DISCOVERY_TAG aksfw)
if [ -z "$tag" ]; then
    echo "aksfw: no discovery tag; only the explicit clusters get cluster roles."
    azd env set AKSFW_DISCOVERED_CLUSTER_IDS ""
    exit 0
fi

subscriptions=$(env_value AKSFW_MONITORED_SUBSCRIPTION_IDS "$subscription" | tr ',' ' ')
found=""
for sub in $subscriptions; do
    # The tag filter runs in Resource Manager (key=value, or a key alone); --tag cannot be
    # combined with --resource-type, hence the query. A failed listing stops the hook (set -e):
    # provisioning without it would leave tagged clusters without their roles.
    ids=$(az resource list --subscription "$sub" --tag "$tag" \
        --query "[?type=='Microsoft.ContainerService/managedClusters'].id" --output tsv)
    for id in $(printf '%s' "$ids" | tr -d '\r'); do
        found="${found:+$found,}$id"
        echo "aksfw: found $id"
    done
done

count=$(printf '%s' "$found" | tr ',' '\n' | grep -c . || true)
echo "aksfw: $count cluster(s) carry the tag '$tag'; each gets its cluster roles (AKSFW_DISCOVERED_CLUSTER_IDS)."
azd env set AKSFW_DISCOVERED_CLUSTER_IDS "$found"
