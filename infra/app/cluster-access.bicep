// The app identity's roles on one cluster (deployed into the cluster's resource group): an
// explicitly configured one, or one carrying the discovery tag that the preprovision hook
// found (AKSFW_DISCOVERED_CLUSTER_IDS). Read it, and for the `azure` credential list its
// user credential and, with Azure RBAC for Kubernetes, list its Services. Credentials are
// granted per cluster, never on a subscription: Azure Kubernetes Service Cluster User Role
// on a local-account cluster hands out its admin credential.

@description('The cluster entry of the configuration (config.clusters[]): id, optional alias, selectors, credential.')
param cluster object

@description('Principal (object) ID of the app\'s managed identity.')
param principalId string

@description('The cluster uses Azure RBAC for Kubernetes authorization: add Azure Kubernetes Service RBAC Reader.')
param clustersUseAzureRbac bool

@description('false = grant nothing: a discovered cluster that is also listed explicitly gets its roles from that entry (its credential may not be `azure`).')
param grant bool = true

var roles = loadJsonContent('roles.json')
// credential is "azure" (default), {"kind": "azure"} or {"kind": "token", ...}.
var clusterCredential = contains(cluster, 'credential') ? cluster.credential : 'azure'
var credentialKind = contains(clusterCredential, 'kind') ? clusterCredential.kind : clusterCredential
var usesAzureCredential = toLower(string(credentialKind)) == 'azure'

resource managedCluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: split(cluster.id, '/')[8]
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grant) {
  name: guid(managedCluster.id, principalId, roles.reader)
  scope: managedCluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource clusterUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grant && usesAzureCredential) {
  name: guid(managedCluster.id, principalId, roles.aksClusterUser)
  scope: managedCluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.aksClusterUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource rbacReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grant && usesAzureCredential && clustersUseAzureRbac) {
  name: guid(managedCluster.id, principalId, roles.aksRbacReader)
  scope: managedCluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.aksRbacReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
