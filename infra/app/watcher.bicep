// The optional in-cluster watcher's Event Grid custom topic (watcherEnabled, docs/watcher.md):
// `aksfw watch` in each monitored cluster publishes a CloudEvent (type
// Aksfw.Kubernetes.ServicesChanged, source the managed cluster's resource ID, no Service
// data) when a change Azure never announces may change tags (a Service's labels, a selector
// now matching), and this topic delivers it to the resource_event function like any
// Resource Manager event. Publishers authenticate with Entra ID only: disableLocalAuth
// leaves no access key that could publish, and each cluster's identity holds EventGrid
// Data Sender on this topic alone (watcher-identity.bicep). With vnetEnabled the topic takes
// no public traffic: a private endpoint in the app's network, reached from peered cluster
// networks that resolve the private DNS zone (docs/watcher.md): one created here and linked
// to the app's network, or a hub's existing privatelink.eventgrid zone
// (existingPrivateDnsZoneIds).

@description('Name of the custom topic.')
param name string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Create the event subscription (the resource_event function must exist).')
param deployEventSubscription bool

@description('Resource ID of the resource_event function.')
param functionId string

@description('Storage account receiving undeliverable events.')
param deadLetterStorageAccountId string

@description('Blob container receiving undeliverable events.')
param deadLetterContainerName string

@description('Private endpoint subnet of the app\'s virtual network; empty = no network integration, the topic is public (Entra ID still required).')
param privateEndpointSubnetId string = ''

@description('The app\'s virtual network (with privateEndpointSubnetId): linked to the topic\'s private DNS zone.')
param virtualNetworkId string = ''

@description('Existing private DNS zones (resource IDs, as vnet.bicep\'s): one named as Event Grid\'s private link zone is used instead of creating it; nothing is linked to it.')
param existingPrivateDnsZoneIds array = []

@description('Name prefix of the private endpoint.')
param privateEndpointPrefix string = 'pe-'

@description('Action group the dead-letter alerts notify.')
param actionGroupId string

// The only event type the watcher publishes (aksfw_core resolves it by its source).
var includedEventTypes = [
  'Aksfw.Kubernetes.ServicesChanged'
]
var isPrivate = !empty(privateEndpointSubnetId)
// Event Grid's private link zone of this cloud (public, Government, China).
var privateZoneName = environment().name == 'AzureUSGovernment' ? 'privatelink.eventgrid.azure.us' : (environment().name == 'AzureChinaCloud' ? 'privatelink.eventgrid.azure.cn' : 'privatelink.eventgrid.azure.net')
// A hub's zone of that name, if given (DNS names are case-insensitive).
var existingZoneNames = [for zoneId in existingPrivateDnsZoneIds: toLower(last(split(zoneId, '/')))]
var useExistingZone = contains(existingZoneNames, privateZoneName)
var existingZoneId = useExistingZone ? existingPrivateDnsZoneIds[indexOf(existingZoneNames, privateZoneName)] : ''

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193:Public network access is Disabled with vnetEnabled (a private endpoint in the app's network). Without it the watchers publish from the clusters' own outbound addresses, which the template cannot know; publishing still needs an Entra token with EventGrid Data Sender on this topic (disableLocalAuth: no access key exists).
  name: name
  location: location
  tags: tags
  // Its own identity, for dead-lettering only (deadletter-access.bicep), as the system topics.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: isPrivate ? 'Disabled' : 'Enabled'
  }
}

resource zone 'Microsoft.Network/privateDnsZones@2020-06-01' = if (isPrivate && !useExistingZone) {
  name: privateZoneName
  location: 'global'
  tags: tags
}

resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = if (isPrivate && !useExistingZone) {
  parent: zone
  name: name
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: virtualNetworkId
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-01-01' = if (isPrivate) {
  name: '${privateEndpointPrefix}${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'topic'
        properties: {
          privateLinkServiceId: topic.id
          groupIds: [
            'topic'
          ]
        }
      }
    ]
  }
}

resource endpointZone 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = if (isPrivate) {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'topic'
        properties: {
          privateDnsZoneId: useExistingZone ? existingZoneId : zone.id
        }
      }
    ]
  }
}

resource watcherEvents 'Microsoft.EventGrid/topics/eventSubscriptions@2022-06-15' = if (deployEventSubscription) {
  parent: topic
  name: 'resource-event'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    // As the system topics' subscription (eventgrid.bicep): one event per call, the function
    // only resolves the cluster and queues its resync, with the function's system key.
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: functionId
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: includedEventTypes
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

// Watcher events dead-lettered or dropped, as for the system topics (eventgrid.bicep): the
// timer resync carries the missed changes meanwhile.
var deadLetterMetrics = [
  {
    name: 'dead-lettered'
    metric: 'DeadLetteredCount'
    displayName: 'events dead-lettered'
  }
  {
    name: 'dropped'
    metric: 'DroppedEventCount'
    displayName: 'events dropped'
  }
]

// Only with the subscription: the metrics are per event subscription.
var alertedMetrics = deployEventSubscription ? deadLetterMetrics : []

resource deadLetterAlerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [for item in alertedMetrics: {
  name: '${name}-${item.name}'
  location: 'global'
  tags: tags
  properties: {
    description: 'aksfw: watcher ${item.displayName} on ${name}. Dead letters are blobs in the app\'s ${deadLetterContainerName} container; the timer resync heals the missed changes.'
    severity: 2
    enabled: true
    scopes: [
      topic.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: item.name
          metricNamespace: 'Microsoft.EventGrid/topics'
          metricName: item.metric
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}]

output id string = topic.id
output name string = topic.name
@description('Where the watchers publish (AKSFW_EVENTGRID_TOPIC_ENDPOINT): the URL only, never a key.')
output endpoint string = topic.properties.endpoint
@description('Principal (object) ID of the topic\'s system-assigned identity, which dead-letters.')
output principalId string = topic.identity.principalId
