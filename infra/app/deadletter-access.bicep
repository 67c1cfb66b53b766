// Lets one Event Grid system topic dead-letter into the app's storage account: its own
// system-assigned identity gets Storage Blob Data Contributor on the dead-letter container
// and nothing else (deployed into the app's resource group, once per monitored
// subscription). Event Grid never acts with the app's identity, which owns the queues, the
// state blobs and the vault reads. A system-assigned identity is also the only kind Event
// Grid can use through the storage firewall's trusted-services exception (vnetEnabled).

@description('The app\'s storage account.')
param storageAccountName string

@description('Blob container receiving undeliverable events.')
param deadLetterContainerName string

@description('Principal (object) ID of the system topic\'s system-assigned identity.')
param topicPrincipalId string

var roles = loadJsonContent('roles.json')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

// Dead-lettering writes a blob per undeliverable event; it reads and deletes nothing.
resource topicBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, topicPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
  }
}
