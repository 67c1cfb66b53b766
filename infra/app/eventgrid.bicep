// The Event Grid system topic of one subscription (Resource Manager events) and the event
// subscription delivering the events aksfw resolves (aksfw_core/events.py) to the
// resource_event function. Only the operations that can change a cluster's Services or
// addresses pass the filter; credential and list actions do not (aksfw causes those itself).
//
// Azure allows one Microsoft.Resources.Subscriptions system topic per subscription: when
// one exists already (another aksfw environment, or any other tool), the template adds its
// event subscription to that topic instead (createSystemTopic false, existingSystemTopicIds
// in main.bicep). The topic's own system-assigned identity dead-letters: never the app's
// identity (deadletter-access.bicep grants it the dead-letter container only).

@description('Name of the system topic.')
param systemTopicName string

@description('Tags of every resource.')
param tags object

@description('Create the system topic; false = it exists already (it must have a system-assigned identity).')
param createSystemTopic bool = true

@description('Name of the event subscription, unique per environment so that environments can share one topic.')
param eventSubscriptionName string

@description('Create the event subscription (the resource_event function must exist).')
param deployEventSubscription bool

@description('Resource ID of the resource_event function.')
param functionId string

@description('Storage account receiving undeliverable events.')
param deadLetterStorageAccountId string

@description('Blob container receiving undeliverable events.')
param deadLetterContainerName string

@description('Name prefix of the dead-letter alert rules.')
param alertNamePrefix string

@description('Action group the dead-letter alerts notify.')
param actionGroupId string

var includedEventTypes = [
  'Microsoft.Resources.ResourceWriteSuccess'
  'Microsoft.Resources.ResourceDeleteSuccess'
  'Microsoft.Resources.ResourceActionSuccess'
]

// data.operationName values (compared case-insensitively by Event Grid). Event Grid takes at
// most 25 values across all the advanced filters of an event subscription, 512 characters
// each (Microsoft Learn, "Understand event filtering for Event Grid subscriptions",
// *Limitations*); tests/deploy/test_infra.py holds the list to that. The Microsoft.Network
// ones resolve only inside a monitored cluster's node resource group (aksfw_core/azure/
// events.py): load balancers and their frontends, the public IPs and prefixes and the NAT
// gateway of its outbound traffic (egress tags), and the managed virtual network (node
// subnets).
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
  'Microsoft.Network/publicIPPrefixes/write'
  'Microsoft.Network/publicIPPrefixes/delete'
  'Microsoft.Network/natGateways/write'
  'Microsoft.Network/natGateways/delete'
  'Microsoft.Network/virtualNetworks/write'
]

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createSystemTopic) {
  name: systemTopicName
  location: 'global'
  tags: tags
  // Its own identity, for dead-lettering only: through the storage firewall's
  // trusted-services exception (vnetEnabled) Event Grid can use a system-assigned identity,
  // not a user-assigned one.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

// The topic in either case: the one created above, or the subscription's existing one.
resource subscriptionTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource resourceEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (deployEventSubscription) {
  parent: subscriptionTopic
  name: eventSubscriptionName
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    // Event Grid waits 30 seconds for the function's answer, then counts the delivery as
    // failed and retries: resource_event only resolves the cluster and queues its resync
    // (the Kubernetes list runs in the cluster-resync queue function), so it answers fast.
    // Delivery to an AzureFunction endpoint uses the function's system key, no identity.
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
    // The topic's system-assigned identity (Storage Blob Data Contributor on this container
    // only, deadletter-access.bicep).
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
  dependsOn: [
    topic
  ]
}

// Events this environment's subscription dead-lettered (Event Grid gave up after 24 hours
// or 30 attempts) or dropped (not even dead-lettering succeeded). Scoped to the event
// subscription, so another tool's subscriptions on a shared topic do not page anyone here.
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

resource deadLetterAlerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [for item in deadLetterMetrics: {
  name: '${alertNamePrefix}-${item.name}'
  location: 'global'
  tags: tags
  properties: {
    description: 'aksfw: Resource Manager ${item.displayName} by ${eventSubscriptionName} on ${systemTopicName} (subscription ${subscription().subscriptionId}). Dead letters are blobs in the app\'s ${deadLetterContainerName} container; the timer resync heals the missed changes.'
    severity: 2
    enabled: true
    scopes: [
      subscriptionTopic.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: item.name
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: item.metric
          dimensions: [
            {
              name: 'EventSubscriptionName'
              operator: 'Include'
              values: [
                eventSubscriptionName
              ]
            }
          ]
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
  dependsOn: [
    topic
  ]
}]

output systemTopicName string = subscriptionTopic.name
@description('Principal (object) ID of the topic\'s system-assigned identity, which dead-letters.')
output principalId string = createSystemTopic ? topic.identity.principalId : subscriptionTopic.identity.principalId
