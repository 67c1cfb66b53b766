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
// - egress reader: public IPs, public IP prefixes, NAT gateways and subnets (registerEgress:
//   a cluster's outbound addresses); assigned on the monitored subscriptions.
// - gateway reader: the data action `managedClusters/customresources/read` (registerEgress:
//   the Static Egress Gateways' StaticGatewayConfiguration objects); assigned on each
//   cluster using Azure RBAC with the `azure` credential, always with the condition that
//   limits it to those objects (cluster-access.bicep). It reads no other custom resource.
targetScope = 'subscription'

@description('Makes the custom role names unique in the tenant (environment and resource token).')
param roleNameSuffix string

@description('Define the cluster reader role (the subscription is monitored with discovery by tag, or holds a monitored cluster).')
param defineClusterReader bool

@description('Define the service reader role (the subscription holds a monitored cluster, and clusters use Azure RBAC for Kubernetes).')
param defineServiceReader bool

@description('Define the subnet reader role (registerNodeSubnets, in a monitored subscription).')
param defineSubnetReader bool

@description('Define the egress reader role (registerEgress, in a monitored subscription).')
param defineEgressReader bool

@description('Define the gateway reader role (registerEgress, the subscription holds a monitored cluster, and clusters use Azure RBAC for Kubernetes).')
param defineGatewayReader bool

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
// docs/egress.md: the outbound IPs and prefixes of the load balancer or NAT gateway, and for
// userAssignedNATGateway the node subnets' NAT gateway.
var egressReaderActions = [
  'Microsoft.Network/publicIPAddresses/read'
  'Microsoft.Network/publicIPPrefixes/read'
  'Microsoft.Network/natGateways/read'
  'Microsoft.Network/virtualNetworks/subnets/read'
]
var gatewayReaderDataActions = [
  'Microsoft.ContainerService/managedClusters/customresources/read'
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

// registerEgress: the outbound public IPs, prefixes and NAT gateways (AKS-managed ones in the
// node resource group, your own anywhere in the subscription) and the node subnets that name
// a user-assigned NAT gateway.
resource egressReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (defineEgressReader) {
  name: guid(subscription().id, roleNameSuffix, 'aksfw-egress-reader')
  properties: {
    roleName: 'aksfw egress reader ${roleNameSuffix} ${subscription().subscriptionId}'
    description: 'aksfw (${roleNameSuffix}): read public IPs, public IP prefixes, NAT gateways and subnets to register AKS clusters\' outbound addresses.'
    type: 'CustomRole'
    permissions: [
      {
        actions: egressReaderActions
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

// registerEgress on clusters with Azure RBAC for Kubernetes: Azure RBAC has no data action
// for one kind of custom resource, so this one reads them all, and cluster-access.bicep
// assigns it only with an ABAC condition that lets through the Static Egress Gateway's
// staticgatewayconfigurations.egressgateway.kubernetes.azure.com and nothing else.
resource gatewayReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (defineGatewayReader) {
  name: guid(subscription().id, roleNameSuffix, 'aksfw-gateway-reader')
  properties: {
    roleName: 'aksfw gateway reader ${roleNameSuffix} ${subscription().subscriptionId}'
    description: 'aksfw (${roleNameSuffix}): read Kubernetes custom resources of a cluster with Azure RBAC for Kubernetes authorization; assigned only with a condition that limits it to the Static Egress Gateway\'s staticgatewayconfigurations.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: gatewayReaderDataActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}
