// The identity `aksfw watch` runs as in one monitored cluster (deployed into the app's
// resource group, once per cluster): a user-assigned identity with EventGrid Data Sender on
// the watcher topic and nothing else, federated with the cluster's OIDC issuer for the
// Kubernetes service account kube-system/aksfw-watch (AKS workload identity; the cluster
// needs --enable-oidc-issuer --enable-workload-identity).
//
// One identity per cluster rather than one shared identity with a credential per cluster:
// a cluster's token then speaks for that cluster's identity only, so the sign-in logs name
// the cluster that published, and removing a cluster (or revoking its identity) touches no
// other. The blast radius is the same either way (any of them can only send to this topic,
// and the app resyncs only clusters its inventory knows), and each identity carries a
// single federated credential, so none are written concurrently (Azure refuses that).

@description('Resource ID of the managed cluster.')
param clusterId string

@description('Name of the identity.')
param name string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Name of the watcher topic (in this resource group).')
param topicName string

var roles = loadJsonContent('roles.json')
// /subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.ContainerService/managedClusters/<name>
var clusterParts = split(clusterId, '/')

// The Kubernetes service account of deploy/watcher/ (kube-system/aksfw-watch).
var serviceAccountSubject = 'system:serviceaccount:kube-system:aksfw-watch'

resource managedCluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: clusterParts[8]
  scope: resourceGroup(clusterParts[2], clusterParts[4])
}

resource topic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: topicName
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

resource federation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: identity
  name: 'aksfw-watch'
  properties: {
    issuer: managedCluster.properties.oidcIssuerProfile.issuerURL
    subject: serviceAccountSubject
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

// Send events to the watcher topic: nothing else, nowhere else.
resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, identity.id, roles.eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

@description('The client ID for the service account\'s azure.workload.identity/client-id annotation.')
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
