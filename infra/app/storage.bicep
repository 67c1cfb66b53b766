// The app's own storage account: the Functions host (AzureWebJobsStorage), aksfw's queues
// and state, the Flex Consumption deployment package, and Event Grid dead letters (written
// by each system topic's own system-assigned identity, which is what the trusted-services
// exception admits when the firewall denies other networks: a user-assigned one is not).
// Identity-only: no shared keys, no anonymous blobs, HTTPS with TLS 1.2.

@description('Name of the storage account.')
param name string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Blob container holding the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Accept only private endpoints, trusted Azure services and allowedIpRanges (vnetEnabled).')
param networkRestricted bool = false

@description('With networkRestricted: public IP ranges (CIDR) still allowed in.')
param allowedIpRanges array = []

@description('Log Analytics workspace receiving the blob and queue access logs.')
param logAnalyticsWorkspaceId string

// The queues and the state container aksfw uses (docs/app.md, "Queues and state"); the code
// creates them too if missing, but declaring them keeps `azd down` and audits honest.
var queueNames = [
  'cluster-resync'
  'cluster-resync-poison'
  'panorama-updates'
  'panorama-updates-poison'
]
// Containers: aksfw-state (aksfw), the deployment package, and Event Grid dead letters.
var deadLetterContainerName = 'eventgrid-deadletter'
var storageLogs = [
  'StorageRead'
  'StorageWrite'
  'StorageDelete'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:The default action is Deny with vnetEnabled. Without a virtual network the Flex Consumption app has no fixed outbound addresses to allow, so access rests on Entra ID and RBAC alone (shared keys are off).
  // checkov:skip=CKV_AZURE_59:Event Grid dead-letters here through the trusted-services exception, which needs the public endpoint (with network rules); without vnetEnabled the app reaches the account over it too. Shared keys are off, so only Entra identities holding a data role get in.
  // checkov:skip=CKV_AZURE_206:Queues and state are rebuilt by the timer resync and the hourly audit, and the app runs in one region; LRS keeps the template deployable in regions without a geo pair.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // Public endpoint on, so that Event Grid (a trusted service) can dead-letter and, without
    // a virtual network, the app can reach it; with vnetEnabled everything else is denied.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: networkRestricted ? 'Deny' : 'Allow'
      ipRules: [for range in allowedIpRanges: {
        value: range
        action: 'Allow'
      }]
      virtualNetworkRules: []
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'aksfw-state'
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-access'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [for category in storageLogs: {
      category: category
      enabled: true
    }]
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-access'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [for category in storageLogs: {
      category: category
      enabled: true
    }]
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output deadLetterContainerName string = deadLetterContainer.name
