// Optional virtual network integration (vnetEnabled): a network for the Flex Consumption app
// (subnet `app`, delegated to Microsoft.App/environments) so aksfw can reach Panoramas and
// private AKS API servers over peering or VPN, and private endpoints with private DNS for the
// app's storage (blob, queue) and vault: zones created here and linked to this network, or
// the existing zones of a hub (existingPrivateDnsZoneIds), which this network must then
// resolve through dnsServers (or a link made outside aksfw).
//
// Outbound to a public Panorama: Flex Consumption has no fixed outbound IPs, so the app
// subnet sends its internet-bound traffic through a NAT gateway with one static Standard
// public IP. That address (output outboundIp, AKSFW_OUTBOUND_IP in azd) is what goes into
// Panorama's permitted-IP list (Device > Setup > Management > Permitted IP Addresses, or the
// management interface profile).
//
// Zones, as they are (Microsoft Learn, "NAT gateway and availability zones"): a Standard NAT
// gateway is a zonal resource. Deployed with no zone (as here), Azure places it in one zone
// it does not disclose, and that cannot be changed afterwards; a zone-redundant public IP
// does not make it zone-redundant (unlike a load balancer's frontend). Its built-in
// redundancy survives infrastructure faults inside its zone; if that zone goes down, the
// app's outbound traffic stops until the zone returns. The address is zone-redundant
// (natPublicIpZones 1,2,3) so that it is not a second single-zone dependency. A
// zone-redundant NAT gateway is the StandardV2 SKU, which needs StandardV2 public IPs; it is
// not deployed here.
//
// Outbound to a private Panorama (nothing here creates it; it is your network's plan):
// - Reach: peer this network with the hub that reaches Panorama (a VNet peering with "use
//   remote gateways" when Panorama is on premises behind the hub's VPN or ExpressRoute
//   gateway; the hub side allows gateway transit), or peer directly with Panorama's VNet.
//   Address space: vnetAddressPrefix must not overlap any network on that path.
// - Routes: with peering, the private address is reached without a route table. If the hub
//   forces traffic through a firewall (a route table with 0.0.0.0/0 to a network virtual
//   appliance), associate that route table with the `app` subnet yourself; traffic to
//   private addresses then bypasses the NAT gateway, and Panorama sees the app subnet's
//   addresses (appSubnetPrefix) instead of outboundIp: permit those.
// - NSG: this subnet's group keeps the default rules, which allow all outbound traffic (to
//   Panorama on TCP 443, to the AKS API servers on 443, to Azure). Add deny rules only
//   after allowing those.
// - DNS: a Panorama name that only your DNS resolves needs this network's DNS servers set to
//   your resolvers (or an Azure DNS Private Resolver forwarding rule), which must still
//   resolve the privatelink zones linked below (forward to 168.63.129.16).
// Flex Consumption routes all of the app's outbound traffic through the integrated subnet, so
// both paths above apply to every call aksfw makes.

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

@description('Name of the NAT gateway of the app subnet.')
param natGatewayName string

@description('Name of the NAT gateway\'s static public IP address.')
param natPublicIpName string

@description('Availability zones of the NAT gateway\'s public IP, e.g. [\'1\', \'2\', \'3\'] (a zone-redundant address; the NAT gateway itself stays in one zone); empty in a region without availability zones.')
param natPublicIpZones array

@description('Existing private DNS zones (resource IDs) to use instead of creating them here, matched by zone name (the ID\'s last segment, any letter case); a zone not listed is created and linked to this network. Nothing is linked to an existing zone.')
param existingPrivateDnsZoneIds array = []

@description('DNS servers of the network (e.g. a hub\'s resolver); empty = Azure-provided DNS.')
param dnsServers array = []

@description('Name prefix of the private endpoints.')
param privateEndpointPrefix string

@description('The app\'s storage account.')
param storageAccountId string

@description('The app\'s Key Vault.')
param keyVaultId string

var appSubnetName = 'app'
var endpointSubnetName = 'private-endpoints'
// The existing zones' names in lower case (DNS names are case-insensitive), in the order of
// existingPrivateDnsZoneIds.
var existingZoneNames = [for zoneId in existingPrivateDnsZoneIds: toLower(last(split(zoneId, '/')))]

// Private DNS zone names of this cloud (public, Government, China).
var privateLinkTargets = [
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
// Each private link with the existing zone of its name, or '' (the zone is created here).
var privateLinks = [for link in privateLinkTargets: union(link, {
  existingZoneId: contains(existingZoneNames, toLower(link.zone)) ? existingPrivateDnsZoneIds[indexOf(existingZoneNames, toLower(link.zone))] : ''
})]
var createdZones = filter(privateLinks, link => empty(link.existingZoneId))

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

// The app's one outbound address to the internet: a Standard, static public IP on a NAT
// gateway attached to the app subnet (zone-redundant by default: see the zones note above).
resource natPublicIp 'Microsoft.Network/publicIPAddresses@2024-01-01' = {
  name: natPublicIpName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Regional'
  }
  zones: natPublicIpZones
  properties: {
    publicIPAddressVersion: 'IPv4'
    publicIPAllocationMethod: 'Static'
    idleTimeoutInMinutes: 4
  }
}

// No zone given: Azure places this zonal resource in a zone of its choice (a no-zone NAT
// gateway accepts a zone-redundant, zonal or no-zone address). Not zone-redundant.
resource natGateway 'Microsoft.Network/natGateways@2024-01-01' = {
  name: natGatewayName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: natPublicIp.id
      }
    ]
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
    dhcpOptions: {
      dnsServers: dnsServers
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          natGateway: {
            id: natGateway.id
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

// Only the zones not given as existing ones, linked to this network.
resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for link in createdZones: {
  name: link.zone
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (link, i) in createdZones: {
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
          privateDnsZoneId: empty(link.existingZoneId) ? resourceId('Microsoft.Network/privateDnsZones', link.zone) : link.existingZoneId
        }
      }
    ]
  }
  dependsOn: [
    zones
  ]
}]

output id string = vnet.id
output name string = vnet.name
output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'
output privateEndpointSubnetId string = '${vnet.id}/subnets/${endpointSubnetName}'
@description('The static public IP the app\'s internet-bound traffic leaves from: Panorama\'s permitted-IP list.')
output outboundIp string = natPublicIp.properties.ipAddress
output natGatewayId string = natGateway.id
