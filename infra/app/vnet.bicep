// Optional virtual network integration (vnetEnabled): a network for the Flex Consumption app
// (subnet `app`, delegated to Microsoft.App/environments) so aksfw can reach Panoramas and
// private AKS API servers over peering or VPN, and private endpoints with private DNS for the
// app's storage (blob, queue) and vault. Peer this network with the one holding Panorama
// yourself (its ID is an output); its address space must not overlap.

@description('Name of the virtual network.')
param name string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Address space of the network.')
param addressPrefix string

@description('Prefix of the app subnet (inside addressPrefix; /27 or larger).')
param appSubnetPrefix string

@description('Prefix of the private endpoint subnet (inside addressPrefix).')
param privateEndpointSubnetPrefix string

@description('Name of the network security group of both subnets.')
param networkSecurityGroupName string

@description('Name prefix of the private endpoints.')
param privateEndpointPrefix string

@description('The app\'s storage account.')
param storageAccountId string

@description('The app\'s Key Vault.')
param keyVaultId string

var appSubnetName = 'app'
var endpointSubnetName = 'private-endpoints'

// Private DNS zone names of this cloud (public, Government, China).
var privateLinks = [
  {
    name: 'blob'
    resourceId: storageAccountId
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    name: 'queue'
    resourceId: storageAccountId
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    name: 'vault'
    resourceId: keyVaultId
    zone: replace(environment().suffixes.keyvaultDns, '.vault.', 'privatelink.vaultcore.')
  }
]

// Default rules only (virtual network and Azure load balancer in, anything out): the app
// receives nothing through this network; it calls out to Panorama, AKS and Azure.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: networkSecurityGroupName
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: endpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for link in privateLinks: {
  name: link.zone
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (link, i) in privateLinks: {
  parent: zones[i]
  name: name
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource endpoints 'Microsoft.Network/privateEndpoints@2024-01-01' = [for link in privateLinks: {
  name: '${privateEndpointPrefix}${name}-${link.name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: '${vnet.id}/subnets/${endpointSubnetName}'
    }
    privateLinkServiceConnections: [
      {
        name: link.name
        properties: {
          privateLinkServiceId: link.resourceId
          groupIds: [
            link.name
          ]
        }
      }
    ]
  }
}]

resource endpointZones 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = [for (link, i) in privateLinks: {
  parent: endpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: link.name
        properties: {
          privateDnsZoneId: zones[i].id
        }
      }
    ]
  }
}]

output id string = vnet.id
output name string = vnet.name
output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'
output privateEndpointSubnetId string = '${vnet.id}/subnets/${endpointSubnetName}'
