// One monitored subscription (deployed with scope: subscription(id)): what the app identity
// may read there, and the Event Grid system topic that tells aksfw about cluster and
// load-balancer changes, in the resource group rg-<env>-events of that subscription (or the
// subscription's existing topic, wherever it is).
//
// Least privilege: on the subscription the identity may only read managed clusters (the
// custom cluster reader role, to discover the tagged ones), with registerNodeSubnets virtual
// networks and subnets, and with registerEgress public IPs, public IP prefixes, NAT gateways
// and subnets. The roles are defined by custom-roles.bicep (deployed first in the same
// subscription); their names are deterministic, computed here as there.
// Credentials (Azure Kubernetes Service Cluster User Role, which on a local-account cluster
// hands out admin credentials) and the Kubernetes Service reads are granted per cluster
// (cluster-access.bicep), for the explicit clusters and the tagged ones the preprovision
// hook found; a newly tagged cluster needs `azd provision`.
targetScope = 'subscription'

@description('Region of the events resource group.')
param location string

@description('Tags of every resource (not azd-env-name: azd must find one resource group per environment, rg-<env>).')
param tags object

@description('Resource group (in this subscription) holding the system topic.')
param resourceGroupName string

@description('Name of the Event Grid system topic for this subscription.')
param systemTopicName string

@description('Principal (object) ID of the app\'s managed identity.')
param principalId string

@description('Let the identity list and read the managed clusters of the whole subscription (discovery by tag, or a configuration the template cannot inspect).')
param grantSubscriptionRoles bool

@description('Let the identity read virtual networks and subnets in the subscription (registerNodeSubnets: node-pool subnet CIDRs).')
param grantSubnetRead bool = false

@description('Let the identity read public IPs, public IP prefixes, NAT gateways and subnets in the subscription (registerEgress: the clusters\' outbound addresses).')
param grantEgressRead bool = false

@description('The suffix of the custom role names (custom-roles.bicep): their definitions\' names derive from it.')
param roleNameSuffix string

@description('Resource ID of this subscription\'s existing Resource Manager system topic (Azure allows one per subscription); empty = create one in resourceGroupName.')
param existingSystemTopicId string = ''

@description('Name of the event subscription (unique per environment).')
param eventSubscriptionName string

@description('Name prefix of the dead-letter alert rules.')
param alertNamePrefix string

@description('Action group the dead-letter alerts notify.')
param actionGroupId string

@description('Create the event subscription (the resource_event function must exist).')
param deployEventSubscription bool

@description('Resource ID of the resource_event function.')
param functionId string

@description('Storage account receiving undeliverable events.')
param deadLetterStorageAccountId string

@description('Blob container receiving undeliverable events.')
param deadLetterContainerName string

// The custom roles of custom-roles.bicep, by their deterministic names.
var clusterReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', guid(subscription().id, roleNameSuffix, 'aksfw-cluster-reader'))
var subnetReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', guid(subscription().id, roleNameSuffix, 'aksfw-subnet-reader'))
var egressReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', guid(subscription().id, roleNameSuffix, 'aksfw-egress-reader'))

// List and read managed clusters (tags, node resource group, node pools): nothing else, and
// no credential action.
resource clusterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantSubscriptionRoles) {
  name: guid(subscription().id, principalId, 'aksfw-cluster-reader')
  properties: {
    roleDefinitionId: clusterReaderRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// registerNodeSubnets: node pools' subnets (bring-your-own VNets anywhere in the
// subscription, the managed VNet in the node resource group).
resource subnetReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantSubnetRead) {
  name: guid(subscription().id, principalId, 'aksfw-subnet-reader')
  properties: {
    roleDefinitionId: subnetReaderRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// registerEgress: the subscription, not the node resource groups. AKS puts its managed
// outbound IPs and NAT gateway in a cluster's node resource group, but the outbound IPs and
// prefixes you bring, a user-assigned NAT gateway and the subnets naming it can sit in any
// group of the subscription; and a node resource group's name is the cluster's, read at
// run time (a deployment cannot scope a module by it), for clusters the hook may not know
// yet. Reads of network configuration only: no secret, no write, no traffic.
resource egressReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantEgressRead) {
  name: guid(subscription().id, principalId, 'aksfw-egress-reader')
  properties: {
    roleDefinitionId: egressReaderRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2025-04-01' = if (createSystemTopic) {
  name: resourceGroupName
  location: location
  tags: tags
}

// An existing topic: /subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.EventGrid/systemTopics/<name>
var createSystemTopic = empty(existingSystemTopicId)
var topicGroupName = createSystemTopic ? resourceGroupName : split(existingSystemTopicId, '/')[4]
var topicName = createSystemTopic ? systemTopicName : last(split(existingSystemTopicId, '/'))

module events 'eventgrid.bicep' = {
  name: take('${eventSubscriptionName}-events', 64)
  scope: resourceGroup(topicGroupName)
  params: {
    systemTopicName: topicName
    createSystemTopic: createSystemTopic
    eventSubscriptionName: eventSubscriptionName
    tags: tags
    deployEventSubscription: deployEventSubscription
    functionId: functionId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    alertNamePrefix: alertNamePrefix
    actionGroupId: actionGroupId
  }
  dependsOn: [
    eventsGroup
  ]
}

output systemTopicName string = events.outputs.systemTopicName
@description('Principal (object) ID of the system topic\'s identity, which dead-letters.')
output systemTopicPrincipalId string = events.outputs.principalId
