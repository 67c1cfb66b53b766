// The custom roles of one subscription (deployed with scope: subscription(id)): every role
// aksfw grants that is not built in, each with only the actions it needs. Definitions live
// in the tenant but are subscription-level resources, assignable in this subscription only:
// defined once here, in each monitored subscription and each subscription holding a listed
// or discovered cluster, with a deterministic name (a GUID of the subscription, the
// environment and the role), which monitored-subscription.bicep and cluster-access.bicep
// compute the same way to assign them.
//
// - cluster reader: `managedClusters/read` (list and read clusters: tags, node resource
//   group, node pools); assigned on each monitored subscription with discovery by tag, and
//   on each cluster. Instead of Reader, which reads everything.
// - service reader: the data action `managedClusters/services/read` of Azure RBAC for
//   Kubernetes (Kubernetes get, list and watch on Services, in every namespace when
//   assigned on the cluster); assigned on each cluster using Azure RBAC with the `azure`
//   credential. Instead of Azure Kubernetes Service RBAC Reader, which reads most objects
//   of the cluster (pods, config maps, events...).
// - subnet reader: virtual networks and subnets (registerNodeSubnets); assigned on the
//   monitored subscriptions.
targetScope = 'subscription'

@description('Makes the custom role names unique in the tenant (environment and resource token).')
param roleNameSuffix string

@description('Define the cluster reader role (the subscription is monitored with discovery by tag, or holds a monitored cluster).')
param defineClusterReader bool

@description('Define the service reader role (the subscription holds a monitored cluster, and clusters use Azure RBAC for Kubernetes).')
param defineServiceReader bool

@description('Define the subnet reader role (registerNodeSubnets, in a monitored subscription).')
param defineSubnetReader bool

// Role names are unique per tenant: environment, token and subscription in each.
var clusterReaderActions = [
  'Microsoft.ContainerService/managedClusters/read'
]
var serviceReaderDataActions = [
  'Microsoft.ContainerService/managedClusters/services/read'
]
var subnetReaderActions = [
  'Microsoft.Network/virtualNetworks/read'
  'Microsoft.Network/virtualNetworks/subnets/read'
]

// List and read managed clusters: nothing else, and no credential action.
resource clusterReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (defineClusterReader) {
  name: guid(subscription().id, roleNameSuffix, 'aksfw-cluster-reader')
  properties: {
    roleName: 'aksfw cluster reader ${roleNameSuffix} ${subscription().subscriptionId}'
    description: 'aksfw (${roleNameSuffix}): list and read the managed clusters of this subscription (discovery tag, node resource group, node pools).'
    type: 'CustomRole'
    permissions: [
      {
        actions: clusterReaderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// Kubernetes Services through the API server (Azure RBAC for Kubernetes authorization):
// the only Kubernetes object aksfw reads. No other resource, no write, no secret.
resource serviceReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (defineServiceReader) {
  name: guid(subscription().id, roleNameSuffix, 'aksfw-service-reader')
  properties: {
    roleName: 'aksfw service reader ${roleNameSuffix} ${subscription().subscriptionId}'
    description: 'aksfw (${roleNameSuffix}): read (get, list, watch) Kubernetes Services of a cluster with Azure RBAC for Kubernetes authorization.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: serviceReaderDataActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// registerNodeSubnets: node pools' subnets (bring-your-own VNets anywhere in the
// subscription, the managed VNet in the node resource group).
resource subnetReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (defineSubnetReader) {
  name: guid(subscription().id, roleNameSuffix, 'aksfw-subnet-reader')
  properties: {
    roleName: 'aksfw subnet reader ${roleNameSuffix} ${subscription().subscriptionId}'
    description: 'aksfw (${roleNameSuffix}): read virtual networks and subnets to register AKS node-pool subnet CIDRs.'
    type: 'CustomRole'
    permissions: [
      {
        actions: subnetReaderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}
