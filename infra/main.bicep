// aksfw on Azure Functions (Flex Consumption), deployed by `azd up`.
//
// rg-<env>: managed identity, storage (host, queues, state, deployment package, dead
// letters), Key Vault (RBAC), Log Analytics + Application Insights (Entra ID auth), the
// alerts and the workbook, the plan and the function app, optionally a virtual network
// with private endpoints. Only rg-<env> carries azd-env-name, so that azd finds one
// resource group per environment (azure.yaml also names it, and AZURE_RESOURCE_GROUP is
// an output).
// In every monitored subscription, and every subscription holding a listed or discovered
// cluster: aksfw's custom roles (custom-roles.bicep: managed clusters read, Kubernetes
// Services read, subnets read with registerNodeSubnets, network and custom-resource reads
// with registerEgress). In every monitored subscription: the cluster reader on the
// subscription (discovery by tag), the subnet and egress readers when asked for, and
// rg-<env>-events with the Event Grid system topic (or the subscription's existing topic);
// the event subscription follows once the code is deployed (deployEventSubscriptions,
// turned on by the postdeploy hook). On each cluster, the explicit ones and the tagged ones
// the preprovision hook found: the cluster reader, the credential role (not on
// local-account clusters unless allowed), the service reader and, with registerEgress, the
// gateway reader (conditioned to the Static Egress Gateway's objects). No secret is stored
// in plain text anywhere.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource groups (rg-<env>, rg-<env>-events) and seeds the unique token in resource names.')
param environmentName string

@minLength(1)
@description('Region of the app, its storage, vault and monitoring, and of the events resource groups.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Subscriptions aksfw scans for clusters carrying the discovery tag and whose Resource Manager events it subscribes to (one Event Grid system topic each). List every subscription that holds a monitored cluster. Overridden by monitoredSubscriptionIdsCsv when that is set.')
param monitoredSubscriptionIds array = [
  subscription().subscriptionId
]

@description('Comma-separated subscription IDs (AKSFW_MONITORED_SUBSCRIPTION_IDS): when not empty, used instead of monitoredSubscriptionIds. The preprovision hook scans the same list for tagged clusters.')
param monitoredSubscriptionIdsCsv string = ''

@description('Comma-separated resource IDs of the clusters carrying the discovery tag, found by the preprovision hook (AKSFW_DISCOVERED_CLUSTER_IDS): each gets its credential roles on itself. A cluster tagged later needs `azd provision`.')
param discoveredClusterIds string = ''

@description('Existing Resource Manager system topics to use, by subscription ID (AKSFW_EXISTING_SYSTEM_TOPIC_IDS as JSON, azd 1.23.4 or later; the preprovision hook finds them): {"<subscription id>": "/subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.EventGrid/systemTopics/<name>"}. Azure allows one such topic per subscription; the topic needs a system-assigned identity. Subscriptions not listed get a new topic in rg-<env>-events.')
param existingSystemTopicIds object = {}

@description('Comma-separated lower-case resource IDs of the monitored clusters with local accounts enabled, found by the preprovision hook (AKSFW_LOCAL_ACCOUNT_CLUSTER_IDS): there listClusterUserCredential hands out an admin credential, so the app gets no Azure Kubernetes Service Cluster User Role on them unless allowLocalAccountClusters (its other roles it still gets). Reach them with the `token` credential (docs/permissions.md).')
param localAccountClusterIds string = ''

@description('Grant Azure Kubernetes Service Cluster User Role on the clusters with local accounts too (AKSFW_ALLOW_LOCAL_ACCOUNT_CLUSTERS): whoever controls the app\'s identity then holds their admin credential.')
param allowLocalAccountClusters bool = false

@description('Comma-separated lower-case resource IDs of the monitored clusters without an OIDC issuer or workload identity, found by the preprovision hook (AKSFW_NO_OIDC_CLUSTER_IDS): with watcherEnabled they get no watcher identity (a federated credential needs the issuer).')
param noOidcClusterIds string = ''

@description('Azure tag (key, or key=value) that marks an AKS cluster as monitored (config.discovery.tag); empty = no discovery by tag.')
param discoveryTag string = 'aksfw'

@description('Explicitly monitored clusters (config.clusters, AKSFW_CLUSTERS as a JSON array; azd 1.23.4 or later): objects with id and optional alias, selectors and credential, as in docs/configuration.md. An entry for a cluster that also carries the discovery tag gives it its alias and selectors. Each gets its credential roles.')
param clusters array = []

@description('Panorama address, host[:port] (config.panorama.host). Ignored when aksfwConfig is given.')
param panoramaHost string

@description('Where IP-tags are registered (config.panorama.targets): "panorama", or the JSON of an object such as {"deviceGroups": ["dg-aks"]}, {"serials": ["0123456789"]} or {"panorama": true, "deviceGroups": [...]}.')
param panoramaTargets string = 'panorama'

@description('SHA-256 fingerprint of Panorama\'s own certificate (config.panorama.certificateSha256, AKSFW_PANORAMA_CERTIFICATE_SHA256), as openssl prints it: only that certificate is accepted, whatever its name. Empty = the system\'s CAs, or panoramaCaCertificatesBase64.')
param panoramaCertificateSha256 string = ''

@secure()
@description('Base64 of a PEM file of the CAs that vouch for Panorama\'s certificate (AKSFW_PANORAMA_CA_CERTIFICATES_BASE64): written to the Key Vault secret panorama-ca-certificates by every provision (the azd environment is its source of truth), given to the app as PANORAMA_CA_CERTIFICATES (config.panorama.caCertificates). Empty = the system\'s CAs, or the pin.')
param panoramaCaCertificatesBase64 string = ''

@description('Virtual system of the registrations (config.panorama.vsys), e.g. vsys1; empty = the default.')
param panoramaVsys string = ''

@minValue(0)
@maxValue(2592000)
@description('Seconds a registered tag lives on the firewalls (config.panorama.tagTimeoutSeconds); 0 = never expires.')
param tagTimeoutSeconds int = 0

@description('A complete aksfw configuration document (docs/configuration.md). When not empty it is used as it is instead of the document built from the parameters above; "keyVault" defaults to the deployed vault.')
param aksfwConfig object = {}

@secure()
@description('Panorama XML API key (AKSFW_PANORAMA_API_KEY, azd env set-secret). While given, every provision writes it to the Key Vault secret panorama-api-key (a new version): the azd environment is the source of truth, and a change made only in Key Vault lasts until the next provision. Empty = the secret is Key Vault\'s to manage (az keyvault secret set) and no provision touches it. Never stored anywhere else (docs/deploy.md, *Rotate the Panorama key*).')
param panoramaApiKey string = ''

@description('The monitored clusters use Azure RBAC for Kubernetes authorization: give the app, on each, a custom role with only the data action Microsoft.ContainerService/managedClusters/services/read (otherwise bind a Kubernetes role, see docs/permissions.md).')
param clustersUseAzureRbac bool = true

@description('Integrate the app with a new virtual network (Panoramas and private clusters reachable only privately). Storage and vault then take private endpoints and deny other networks except trusted Azure services and allowedIpRanges.')
param vnetEnabled bool = false

// The defaults stay clear of the ranges AKS networks commonly use (10.0.0.0/16, the default
// service CIDR; 10.244.0.0/16, the default pod CIDR; 10.224.0.0/12 and the rest of 10.0.0.0/8
// in Azure CNI and hub-spoke designs; 172.17.0.0/16, the Docker bridge), and of the
// 192.168.0.0/23 of home and lab routers, so that peering with the hub or the clusters works.
@description('With vnetEnabled (AKSFW_VNET_ADDRESS_PREFIX): address space of the virtual network. It must not overlap any network you peer it with or reach through it (hub, Panorama, clusters, on-premises). The default 192.168.250.0/24 is outside 10.0.0.0/8, where AKS service, pod and Azure CNI ranges usually live.')
param vnetAddressPrefix string = '192.168.250.0/24'

@description('With vnetEnabled (AKSFW_VNET_APP_SUBNET_PREFIX): subnet of the app (delegated to Microsoft.App/environments, behind the NAT gateway), inside vnetAddressPrefix.')
param vnetAppSubnetPrefix string = '192.168.250.0/25'

@description('With vnetEnabled (AKSFW_VNET_PRIVATE_ENDPOINT_SUBNET_PREFIX): subnet of the private endpoints (storage blob and queue, vault), inside vnetAddressPrefix.')
param vnetPrivateEndpointSubnetPrefix string = '192.168.250.128/26'

@description('With vnetEnabled (AKSFW_VNET_NAT_IP_ZONES): comma-separated availability zones of the NAT gateway\'s static public IP; 1,2,3 = a zone-redundant address. The address only: the NAT gateway (Standard) is a zonal resource that Azure places in one zone it does not disclose, and the app\'s outbound traffic stops while that zone is down, whatever the address\'s zones (docs/network.md). Empty in a region without availability zones.')
param vnetNatIpZones string = '1,2,3'

@description('With vnetEnabled (AKSFW_VNET_PRIVATE_DNS_ZONE_IDS): comma-separated resource IDs of existing private DNS zones to use instead of creating them in rg-<env> (hub-and-spoke networks keep the privatelink zones centrally), matched by zone name: privatelink.blob and privatelink.queue of the storage suffix, privatelink.vaultcore, and with watcherEnabled privatelink.eventgrid. A zone not listed is created and linked to the network. aksfw links nothing to an existing zone: the network must resolve it (vnetDnsServers, or a link you add).')
param vnetPrivateDnsZoneIds string = ''

@description('With vnetEnabled (AKSFW_VNET_DNS_SERVERS): comma-separated DNS server addresses of the network, e.g. the hub\'s DNS Private Resolver inbound endpoint or firewall DNS proxy, which must resolve the privatelink zones; empty = Azure-provided DNS, which resolves the zones linked to this network.')
param vnetDnsServers string = ''

@description('With vnetEnabled: public IP ranges (CIDR) still allowed to reach the storage account and the vault, e.g. the machine that runs az keyvault secret set.')
param allowedIpRanges array = []

@description('Create the Event Grid subscriptions to the resource_event function. The function must exist first, so the azd postdeploy hook turns this on after the first code deploy.')
param deployEventSubscriptions bool = false

@description('The in-cluster watcher (docs/watcher.md): an Event Grid custom topic that `aksfw watch` publishes Service changes to, delivered to resource_event, and per monitored cluster (explicit and discovered) an identity federated with the cluster\'s OIDC issuer that may only send to it. Each cluster needs its OIDC issuer and workload identity enabled.')
param watcherEnabled bool = false

@description('Register each node pool\'s subnet CIDR on Panorama (config nodeSubnets, PAN-OS 10.0+): the identity may then read virtual networks and subnets in the monitored subscriptions.')
param registerNodeSubnets bool = false

@description('Register each monitored cluster\'s outbound IPs and prefixes under aks.<cluster>.egress and its Static Egress Gateways\' prefixes under aks.<cluster>.egress.<namespace>.<gateway> (config egressTags, AKSFW_REGISTER_EGRESS; networks need PAN-OS 10.0+; docs/egress.md): the identity may then read public IPs, public IP prefixes, NAT gateways and subnets in the monitored subscriptions and, on clusters with Azure RBAC for Kubernetes, the StaticGatewayConfiguration objects only.')
param registerEgress bool = false

@description('Tag every LoadBalancer Service\'s IPs with its namespace too, aks.<cluster>.ns.<namespace> (config namespaceTags, AKSFW_NAMESPACE_TAGS; docs/tags.md).')
param namespaceTags bool = false

@description('Namespaces whose Services\' aksfw.io/tags annotation adds aks.<cluster>.tag.<value> tags (config annotationTags.namespaces, AKSFW_ANNOTATION_TAG_NAMESPACES as a JSON array, azd 1.23.4 or later): ["*"] = every namespace; empty = none, annotation tags off. Open a namespace only to teams trusted with those DAGs (docs/tags.md).')
param annotationTagNamespaces array = []

// The same upper bound as the configuration's (aksfw_core/config/panorama.py).
@minValue(0)
@maxValue(100000000)
@description('Registered IPs on one target, from all sources, at which aksfw warns and the capacity alert fires (config panorama.capacityWarningIps, AKSFW_CAPACITY_WARNING_IPS), e.g. 80 % of the smallest model\'s limit in its data sheet; 0 = no warning (docs/operations.md, *Capacity*).')
param capacityWarningIps int = 0

@description('Email address that receives the alerts (AKSFW_ALERT_EMAIL); empty = the action group has no receiver (the alert rules still exist).')
param alertEmail string = ''

@minValue(10)
@maxValue(300)
@description('Minutes the applies of a (cluster, target) may keep failing before the alert fires.')
param alertApplyFailingMinutes int = 30

@description('Key Vault purge protection (irreversible). Off by default so that `azd down --purge` purges the vault and the environment can be deployed again; on, a deleted vault keeps its name for 90 days.')
param keyVaultPurgeProtection bool = false

@description('Optional: object ID of an administrator or tester given data access to the app\'s storage and Key Vault Secrets Officer on its vault (to set secrets and run the app locally against Azure). Empty = nobody.')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principalId.')
param principalType string = 'User'

// The same list as app/api.bicep's (tests/deploy/test_infra.py checks that they agree).
@allowed([
  '3.11'
  '3.13'
])
@description('Python version of the function app (AKSFW_PYTHON_VERSION): 3.11 (default) or 3.13, the versions Flex Consumption offers that aksfw is tested on (docs/deploy.md).')
param pythonVersion string = '3.11'

// The same bounds and default as app/api.bicep's (tests/deploy/test_infra.py checks that they agree).
@minValue(1)
@maxValue(1000)
@description('Most on-demand instances of each Flex Consumption function group (AKSFW_MAXIMUM_INSTANCE_COUNT), 1 (the plan\'s lowest) to 1000: the bound applies to each group, not to the app: the HTTP functions together, and resource_event, resync_timer, cluster_resync and panorama_updates each on its own (docs/deploy.md, *Scale*). Default 10.')
param maximumInstanceCount int = 10

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
// Resource groups in the monitored subscriptions: not azd-env-name (azd must find exactly
// one resource group per environment).
var eventsTags = {
  'aksfw-env-name': environmentName
}
var monitoredSubscriptionList = empty(trim(monitoredSubscriptionIdsCsv)) ? monitoredSubscriptionIds : split(replace(trim(monitoredSubscriptionIdsCsv), ' ', ''), ',')
var discoveredClusterIdList = empty(trim(discoveredClusterIds)) ? [] : split(replace(trim(discoveredClusterIds), ' ', ''), ',')
var explicitClusterIds = [for cluster in clusters: toLower(cluster.id)]
// Resource IDs are case-insensitive: the lists below compare them in lower case.
var discoveredClusterIdsLower = [for clusterId in discoveredClusterIdList: toLower(clusterId)]
var localAccountClusterIdList = empty(trim(localAccountClusterIds)) ? [] : split(toLower(replace(trim(localAccountClusterIds), ' ', '')), ',')
var noOidcClusterIdList = empty(trim(noOidcClusterIds)) ? [] : split(toLower(replace(trim(noOidcClusterIds), ' ', '')), ',')
// The watcher's clusters, each once: explicit and discovered, but those without an OIDC
// issuer (no federated credential can trust them).
var watchedClusterIds = watcherEnabled ? filter(union(explicitClusterIds, discoveredClusterIdsLower), clusterId => !contains(noOidcClusterIdList, clusterId)) : []
// Where aksfw's custom roles are defined (custom-roles.bicep), each subscription once: the
// monitored ones and those of the clusters that get roles.
var monitoredSubscriptionIdsLower = [for subscriptionId in monitoredSubscriptionList: toLower(subscriptionId)]
var explicitClusterSubscriptionIds = [for clusterId in explicitClusterIds: split(clusterId, '/')[2]]
var discoveredClusterSubscriptionIds = [for clusterId in discoveredClusterIdsLower: split(clusterId, '/')[2]]
var clusterSubscriptionIds = union(explicitClusterSubscriptionIds, discoveredClusterSubscriptionIds)
var roleSubscriptionIds = union(monitoredSubscriptionIdsLower, clusterSubscriptionIds)
var roleNameSuffix = '${environmentName}-${resourceToken}'
var privateDnsZoneIdList = empty(trim(vnetPrivateDnsZoneIds)) ? [] : split(replace(trim(vnetPrivateDnsZoneIds), ' ', ''), ',')
var dnsServerList = empty(trim(vnetDnsServers)) ? [] : split(replace(trim(vnetDnsServers), ' ', ''), ',')
var deploymentContainerName = 'app-package-${resourceToken}'
// The identity lists the clusters of whole subscriptions (a read-only custom role) when
// clusters are found by tag, or when the configuration is given whole and cannot be
// inspected here. Credential roles are never granted on a subscription.
var subscriptionWideAccess = !empty(discoveryTag) || !empty(aksfwConfig)

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: '${abbrs.resourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.logAnalyticsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    namePrefix: 'aksfw-${resourceToken}'
    workspaceId: monitoring.outputs.workspaceId
    alertEmail: alertEmail
    applyFailingMinutes: alertApplyFailingMinutes
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    displayName: 'aksfw ${environmentName}'
    workspaceId: monitoring.outputs.workspaceId
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    networkRestricted: vnetEnabled
    allowedIpRanges: allowedIpRanges
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaults}${resourceToken}'
    location: location
    tags: tags
    panoramaApiKey: panoramaApiKey
    panoramaCaCertificates: empty(panoramaCaCertificatesBase64) ? '' : base64ToString(panoramaCaCertificatesBase64)
    networkRestricted: vnetEnabled
    allowedIpRanges: allowedIpRanges
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    purgeProtection: keyVaultPurgeProtection
  }
}

module vnet 'app/vnet.bicep' = if (vnetEnabled) {
  name: 'vnet'
  scope: rg
  params: {
    name: '${abbrs.virtualNetworks}${resourceToken}'
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: vnetAppSubnetPrefix
    privateEndpointSubnetPrefix: vnetPrivateEndpointSubnetPrefix
    networkSecurityGroupName: '${abbrs.networkSecurityGroups}${resourceToken}'
    natGatewayName: '${abbrs.natGateways}${resourceToken}'
    natPublicIpName: '${abbrs.publicIPAddresses}${abbrs.natGateways}${resourceToken}'
    natPublicIpZones: empty(trim(vnetNatIpZones)) ? [] : split(replace(trim(vnetNatIpZones), ' ', ''), ',')
    existingPrivateDnsZoneIds: privateDnsZoneIdList
    dnsServers: dnsServerList
    privateEndpointPrefix: abbrs.privateEndpoints
    storageAccountId: storage.outputs.id
    keyVaultId: keyVault.outputs.id
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    identityPrincipalId: identity.outputs.principalId
    principalId: principalId
    principalType: principalType
  }
}

// The configuration document (docs/configuration.md): only keys parse_settings knows.
var builtConfigBase = {
  subscriptions: monitoredSubscriptionList
  discovery: empty(discoveryTag) ? null : {
    tag: discoveryTag
  }
  clusters: clusters
  keyVault: keyVault.outputs.url
  // capacityWarningIps only when set.
  panorama: union({
    host: panoramaHost
    targets: (toLower(trim(panoramaTargets)) == 'panorama') ? 'panorama' : json(panoramaTargets)
    vsys: empty(panoramaVsys) ? null : panoramaVsys
    certificateSha256: empty(panoramaCertificateSha256) ? null : panoramaCertificateSha256
    tagTimeoutSeconds: tagTimeoutSeconds
  }, (capacityWarningIps == 0) ? {} : {
    capacityWarningIps: capacityWarningIps
  })
}
// The opt-ins, each only when asked for: registerNodeSubnets and registerEgress also grant
// the reads they need.
var nodeSubnetsOption = registerNodeSubnets ? {
  nodeSubnets: true
} : {}
var egressOption = registerEgress ? {
  egressTags: true
} : {}
var namespaceTagsOption = namespaceTags ? {
  namespaceTags: true
} : {}
var annotationTagsOption = empty(annotationTagNamespaces) ? {} : {
  annotationTags: {
    namespaces: annotationTagNamespaces
  }
}
var builtConfig = union(builtConfigBase, nodeSubnetsOption, egressOption, namespaceTagsOption, annotationTagsOption)
var configDocument = empty(aksfwConfig) ? builtConfig : union({
  keyVault: keyVault.outputs.url
}, aksfwConfig)

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: '${abbrs.functionApps}${resourceToken}'
    planName: '${abbrs.serverFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.vaultUri
    panoramaApiKeySecretName: keyVault.outputs.panoramaApiKeySecretName
    panoramaCaCertificatesSecretName: keyVault.outputs.panoramaCaCertificatesSecretName
    aksfwConfig: string(configDocument)
    virtualNetworkSubnetId: vnetEnabled ? vnet.outputs.appSubnetId : ''
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
  }
  // Start the app once it may use its storage, vault and telemetry.
  dependsOn: [
    rbac
  ]
}

// aksfw's custom roles, defined once per subscription (before anything assigns them): the
// cluster reader wherever it is assigned, the service reader where clusters are (with Azure
// RBAC for Kubernetes), the subnet reader in the monitored subscriptions (registerNodeSubnets),
// the egress reader there and the gateway reader where clusters are (registerEgress).
module customRoles 'app/custom-roles.bicep' = [for subscriptionId in roleSubscriptionIds: {
  name: take('aksfw-roles-${resourceToken}-${subscriptionId}', 64)
  scope: subscription(subscriptionId)
  params: {
    roleNameSuffix: roleNameSuffix
    defineClusterReader: subscriptionWideAccess || contains(clusterSubscriptionIds, subscriptionId)
    defineServiceReader: clustersUseAzureRbac && contains(clusterSubscriptionIds, subscriptionId)
    defineSubnetReader: registerNodeSubnets && contains(monitoredSubscriptionIdsLower, subscriptionId)
    defineEgressReader: registerEgress && contains(monitoredSubscriptionIdsLower, subscriptionId)
    defineGatewayReader: registerEgress && clustersUseAzureRbac && contains(clusterSubscriptionIds, subscriptionId)
  }
}]

// The monitored subscriptions, the topics' dead-letter access to the app's container, and
// the clusters' roles.
module monitoredSubscriptions 'app/monitored-subscription.bicep' = [for subscriptionId in monitoredSubscriptionList: {
  name: 'aksfw-${resourceToken}-${subscriptionId}'
  scope: subscription(subscriptionId)
  params: {
    location: location
    tags: eventsTags
    resourceGroupName: '${abbrs.resourceGroups}${environmentName}-events'
    systemTopicName: '${abbrs.eventGridSystemTopics}aksfw-${resourceToken}'
    existingSystemTopicId: contains(existingSystemTopicIds, subscriptionId) ? existingSystemTopicIds[subscriptionId] : ''
    eventSubscriptionName: 'aksfw-${resourceToken}'
    principalId: identity.outputs.principalId
    grantSubscriptionRoles: subscriptionWideAccess
    grantSubnetRead: registerNodeSubnets
    grantEgressRead: registerEgress
    roleNameSuffix: roleNameSuffix
    deployEventSubscription: deployEventSubscriptions
    functionId: '${api.outputs.id}/functions/resource_event'
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    alertNamePrefix: 'aksfw-${resourceToken}'
    actionGroupId: alerts.outputs.actionGroupId
  }
  dependsOn: [
    customRoles
  ]
}]

module deadLetterAccess 'app/deadletter-access.bicep' = [for (subscriptionId, i) in monitoredSubscriptionList: {
  name: 'aksfw-deadletter-${subscriptionId}'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: monitoredSubscriptions[i].outputs.systemTopicPrincipalId
  }
}]

// Cluster IDs: /subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.ContainerService/managedClusters/<name>
module clusterAccess 'app/cluster-access.bicep' = [for cluster in clusters: {
  name: take('aksfw-${resourceToken}-${split(cluster.id, '/')[8]}', 64)
  scope: resourceGroup(split(cluster.id, '/')[2], split(cluster.id, '/')[4])
  params: {
    cluster: cluster
    principalId: identity.outputs.principalId
    clustersUseAzureRbac: clustersUseAzureRbac
    roleNameSuffix: roleNameSuffix
    grantClusterUser: allowLocalAccountClusters || !contains(localAccountClusterIdList, toLower(cluster.id))
    grantGatewayRead: registerEgress
  }
  dependsOn: [
    customRoles
  ]
}]

// Tagged clusters found by the preprovision hook: the `azure` credential's roles. One also
// listed explicitly gets its roles from that entry only.
module discoveredClusterAccess 'app/cluster-access.bicep' = [for clusterId in discoveredClusterIdList: {
  name: take('aksfw-${resourceToken}-tag-${split(clusterId, '/')[8]}', 64)
  scope: resourceGroup(split(clusterId, '/')[2], split(clusterId, '/')[4])
  params: {
    cluster: {
      id: clusterId
    }
    principalId: identity.outputs.principalId
    clustersUseAzureRbac: clustersUseAzureRbac
    roleNameSuffix: roleNameSuffix
    grant: !contains(explicitClusterIds, toLower(clusterId))
    grantClusterUser: allowLocalAccountClusters || !contains(localAccountClusterIdList, toLower(clusterId))
    grantGatewayRead: registerEgress
  }
  dependsOn: [
    customRoles
  ]
}]

// The watcher (watcherEnabled): its topic, the topic's dead-letter access, and an identity
// per watched cluster (not for the clusters without an OIDC issuer).
module watcher 'app/watcher.bicep' = if (watcherEnabled) {
  name: 'watcher'
  scope: rg
  params: {
    name: '${abbrs.eventGridTopics}aksfw-${resourceToken}'
    location: location
    tags: tags
    deployEventSubscription: deployEventSubscriptions
    functionId: '${api.outputs.id}/functions/resource_event'
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    privateEndpointSubnetId: vnetEnabled ? vnet.outputs.privateEndpointSubnetId : ''
    virtualNetworkId: vnetEnabled ? vnet.outputs.id : ''
    existingPrivateDnsZoneIds: vnetEnabled ? privateDnsZoneIdList : []
    privateEndpointPrefix: abbrs.privateEndpoints
    actionGroupId: alerts.outputs.actionGroupId
  }
}

module watcherDeadLetterAccess 'app/deadletter-access.bicep' = if (watcherEnabled) {
  name: 'aksfw-deadletter-watcher'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: watcherEnabled ? watcher.outputs.principalId : ''
  }
}

module watcherIdentities 'app/watcher-identity.bicep' = [for clusterId in watchedClusterIds: {
  name: take('aksfw-watch-${split(clusterId, '/')[8]}-${uniqueString(clusterId)}', 64)
  scope: rg
  params: {
    clusterId: clusterId
    name: take('${abbrs.managedIdentities}aksfw-watch-${split(clusterId, '/')[8]}-${uniqueString(clusterId)}', 128)
    location: location
    tags: tags
    topicName: watcherEnabled ? watcher.outputs.name : ''
  }
}]

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
@description('The resource group azd deploys the api service to (azd reads AZURE_RESOURCE_GROUP before the azd-env-name tag).')
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output RESYNC_URL string = 'https://${api.outputs.defaultHostName}/api/resync'
output STATUS_URL string = 'https://${api.outputs.defaultHostName}/api/status'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.url
@description('Object ID of the app\'s managed identity: the subject of Kubernetes role bindings on clusters with Kubernetes RBAC.')
output AKSFW_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AKSFW_VNET_ID string = vnetEnabled ? vnet.outputs.id : ''
@description('With vnetEnabled: the static public IP the app reaches the internet from (its NAT gateway): put it in Panorama\'s permitted-IP list. Empty without the VNet option (Flex Consumption then has no fixed outbound address).')
output AKSFW_OUTBOUND_IP string = vnetEnabled ? vnet.outputs.outboundIp : ''
@description('The Azure Monitor workbook (portal: Monitor > Workbooks, or the resource group).')
output AKSFW_WORKBOOK_ID string = workbook.outputs.id
output AKSFW_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
@description('With watcherEnabled: where the watchers publish (deploy/watcher/watcher.env). A URL, never a key: the topic has none.')
output AKSFW_WATCHER_TOPIC_ENDPOINT string = watcherEnabled ? watcher.outputs.endpoint : ''
@description('With watcherEnabled: per watched cluster (lower-case resource ID), the client ID of its watcher identity (deploy/watcher/watcher.env).')
output AKSFW_WATCHER_IDENTITIES array = [for (clusterId, i) in watchedClusterIds: {
  clusterId: clusterId
  clientId: watcherIdentities[i].outputs.clientId
}]
