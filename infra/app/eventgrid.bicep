// The Event Grid system topic of one subscription (Resource Manager events) and the event
// subscription delivering the events aksfw resolves (aksfw_core/events.py) to the
// resource_event function. Only the operations that can change a cluster's Services or
// addresses pass the filter; credential and list actions do not (aksfw causes those itself).

@description('Name of the system topic.')
param systemTopicName string

@description('Tags of every resource.')
param tags object

@description('Resource ID of the app\'s managed identity: the topic dead-letters with it.')
param identityId string

@description('Create the event subscription (the resource_event function must exist).')
param deployEventSubscription bool

@description('Resource ID of the resource_event function.')
param functionId string

@description('Storage account receiving undeliverable events.')
param deadLetterStorageAccountId string

@description('Blob container receiving undeliverable events.')
param deadLetterContainerName string

var includedEventTypes = [
  'Microsoft.Resources.ResourceWriteSuccess'
  'Microsoft.Resources.ResourceDeleteSuccess'
  'Microsoft.Resources.ResourceActionSuccess'
]

// data.operationName values (compared case-insensitively by Event Grid).
var resourceOperations = [
  'Microsoft.ContainerService/managedClusters/write'
  'Microsoft.ContainerService/managedClusters/delete'
  'Microsoft.ContainerService/managedClusters/start/action'
  'Microsoft.ContainerService/managedClusters/stop/action'
  'Microsoft.ContainerService/managedClusters/abort/action'
  'Microsoft.ContainerService/managedClusters/rotateClusterCertificates/action'
  'Microsoft.ContainerService/managedClusters/agentPools/write'
  'Microsoft.ContainerService/managedClusters/agentPools/delete'
  'Microsoft.Network/loadBalancers/write'
  'Microsoft.Network/loadBalancers/delete'
  'Microsoft.Network/publicIPAddresses/write'
  'Microsoft.Network/publicIPAddresses/delete'
]

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource resourceEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (deployEventSubscription) {
  parent: topic
  name: 'aksfw-resource-events'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
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
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: resourceOperations
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identityId
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

output systemTopicName string = topic.name
