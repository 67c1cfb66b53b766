// The app identity's roles on one cluster (deployed into the cluster's resource group): an
// explicitly configured one, or one carrying the discovery tag that the preprovision hook
// found (AKSFW_DISCOVERED_CLUSTER_IDS). Read it (the custom cluster reader role:
// managedClusters/read), and for the `azure` credential list its user credential (Azure
// Kubernetes Service Cluster User Role) and, with Azure RBAC for Kubernetes, read its
// Services (the custom service reader role: the data action managedClusters/services/read)
// and, with registerEgress, its Static Egress Gateways (the custom gateway reader role,
// customresources/read, under a condition that limits it to staticgatewayconfigurations).
// The custom roles are defined in the cluster's subscription by custom-roles.bicep, with
// deterministic names computed here the same way. Credentials are granted per cluster, never
// on a subscription: Azure Kubernetes Service Cluster User Role on a local-account cluster
// hands out its admin credential, so there it is granted only when allowed
// (grantClusterUser).

@description('The cluster entry of the configuration (config.clusters[]): id, optional alias, selectors, credential.')
param cluster object

@description('Principal (object) ID of the app\'s managed identity.')
param principalId string

@description('The cluster uses Azure RBAC for Kubernetes authorization: add the service reader role (Services only).')
param clustersUseAzureRbac bool

@description('The suffix of the custom role names (custom-roles.bicep): their definitions\' names derive from it.')
param roleNameSuffix string

@description('false = grant nothing: a discovered cluster that is also listed explicitly gets its roles from that entry (its credential may not be `azure`).')
param grant bool = true

@description('registerEgress: with Azure RBAC for Kubernetes and the `azure` credential, add the gateway reader role (customresources/read, conditioned to the Static Egress Gateway\'s staticgatewayconfigurations).')
param grantGatewayRead bool = false

@description('false = no Azure Kubernetes Service Cluster User Role: the cluster has local accounts (listClusterUserCredential would hand out an admin credential) and they are not allowed (allowLocalAccountClusters). The other roles are still granted.')
param grantClusterUser bool = true

var roles = loadJsonContent('roles.json')
// credential is "azure" (default), {"kind": "azure"} or {"kind": "token", ...}.
var clusterCredential = contains(cluster, 'credential') ? cluster.credential : 'azure'
var credentialKind = contains(clusterCredential, 'kind') ? clusterCredential.kind : clusterCredential
var usesAzureCredential = toLower(string(credentialKind)) == 'azure'
// The custom roles of custom-roles.bicep in this cluster's subscription, by their names.
var clusterReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', guid(subscription().id, roleNameSuffix, 'aksfw-cluster-reader'))
var serviceReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', guid(subscription().id, roleNameSuffix, 'aksfw-service-reader'))
var gatewayReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', guid(subscription().id, roleNameSuffix, 'aksfw-gateway-reader'))
// Azure RBAC for Kubernetes has one data action for every custom resource; this ABAC
// condition (Microsoft Learn, "Use Microsoft Entra ID authorization for the Kubernetes API",
// *Restrict custom resource access using ABAC conditions*, preview; condition version 2.0)
// lets customresources/read through only for the Static Egress Gateway's objects
// (aksfw_core/kube_egress.py: GROUP and PLURAL; the kind attribute is the plural resource
// name). The same text is in docs/permissions.md.
var gatewayCondition = '''(
 (
  !(ActionMatches{'Microsoft.ContainerService/managedClusters/customresources/read'})
 )
 OR
 (
  @Request[Microsoft.ContainerService/managedClusters/customResources:group] StringEqualsIgnoreCase 'egressgateway.kubernetes.azure.com'
  AND
  @Request[Microsoft.ContainerService/managedClusters/customResources:kind] StringEqualsIgnoreCase 'staticgatewayconfigurations'
 )
)'''

resource managedCluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: split(cluster.id, '/')[8]
}

// managedClusters/read on this cluster only (its subscription's role may not be assigned
// there: discovery by tag off, or the subscription not scanned).
resource clusterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grant) {
  name: guid(managedCluster.id, principalId, 'aksfw-cluster-reader')
  scope: managedCluster
  properties: {
    roleDefinitionId: clusterReaderRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource clusterUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grant && usesAzureCredential && grantClusterUser) {
  name: guid(managedCluster.id, principalId, roles.aksClusterUser)
  scope: managedCluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.aksClusterUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource serviceReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grant && usesAzureCredential && clustersUseAzureRbac) {
  name: guid(managedCluster.id, principalId, 'aksfw-service-reader')
  scope: managedCluster
  properties: {
    roleDefinitionId: serviceReaderRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// registerEgress: list the StaticGatewayConfiguration objects in every namespace, and no
// other custom resource (the condition).
resource gatewayReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grant && usesAzureCredential && clustersUseAzureRbac && grantGatewayRead) {
  name: guid(managedCluster.id, principalId, 'aksfw-gateway-reader')
  scope: managedCluster
  properties: {
    roleDefinitionId: gatewayReaderRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: gatewayCondition
    conditionVersion: '2.0'
  }
}
