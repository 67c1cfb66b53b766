// The user-assigned managed identity aksfw runs as: the Functions host (storage, deployment
// package, Application Insights), Key Vault references and azure-identity in the code use
// it. Event Grid does not: each system topic dead-letters with its own identity.

@description('Name of the identity.')
param name string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
