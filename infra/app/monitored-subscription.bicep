// One monitored subscription (deployed with scope: subscription(id)): the app identity's
// roles there and the Event Grid system topic that tells aksfw about cluster and
// load-balancer changes, in the resource group rg-<env>-events of that subscription.
targetScope = 'subscription'

@description('Region of the events resource group.')
param location string

@description('Tags of every resource.')
param tags object

@description('Resource group (in this subscription) holding the system topic.')
param resourceGroupName string

@description('Name of the Event Grid system topic for this subscription.')
param systemTopicName string

@description('Principal (object) ID of the app\'s managed identity.')
param principalId string

@description('Resource ID of the app\'s managed identity (for dead-lettering).')
param identityId string

@description('Grant the identity its cluster roles on the whole subscription (discovery by tag, or a configuration the template cannot inspect). Explicit clusters get them on themselves (cluster-access.bicep).')
param grantSubscriptionRoles bool

@description('The clusters use Azure RBAC for Kubernetes authorization: add Azure Kubernetes Service RBAC Reader.')
param clustersUseAzureRbac bool

@description('Create the event subscription (the resource_event function must exist).')
param deployEventSubscription bool

@description('Resource ID of the resource_event function.')
param functionId string

@description('Storage account receiving undeliverable events.')
param deadLetterStorageAccountId string

@description('Blob container receiving undeliverable events.')
param deadLetterContainerName string

var roles = loadJsonContent('roles.json')

// List and read managed clusters (and their node resource groups) to find monitored ones.
resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantSubscriptionRoles) {
  name: guid(subscription().id, principalId, roles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// listClusterUserCredential: the kubeconfig of each cluster (an Entra ID one for AAD clusters).
resource clusterUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantSubscriptionRoles) {
  name: guid(subscription().id, principalId, roles.aksClusterUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.aksClusterUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// List Services through Entra ID on clusters that authorize with Azure RBAC.
resource rbacReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantSubscriptionRoles && clustersUseAzureRbac) {
  name: guid(subscription().id, principalId, roles.aksRbacReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.aksRbacReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module events 'eventgrid.bicep' = {
  name: 'aksfw-events'
  scope: eventsGroup
  params: {
    systemTopicName: systemTopicName
    tags: tags
    identityId: identityId
    deployEventSubscription: deployEventSubscription
    functionId: functionId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
  }
}

output systemTopicName string = events.outputs.systemTopicName
