// The Flex Consumption plan and the function app (azd service `api`). The app runs as the
// user-assigned identity; its settings are exactly what the code, azure-identity and the
// Functions host read (tests/deploy/test_infra.py checks both directions). No secret is
// written here: PANORAMA_API_KEY is a Key Vault reference.

@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Resource ID of the user-assigned managed identity.')
param identityId string

@description('Client ID of that identity.')
param identityClientId string

@description('Blob endpoint of the app\'s storage account (https://<account>.blob.<suffix>/).')
param storageBlobEndpoint string

@description('Queue endpoint of the app\'s storage account.')
param storageQueueEndpoint string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Vault URI with its trailing slash (https://<vault>.vault.azure.net/).')
param keyVaultUri string

@description('Name of the Key Vault secret holding the Panorama API key.')
param panoramaApiKeySecretName string

@description('Name of the Key Vault secret holding the CAs that vouch for Panorama\'s certificate (PANORAMA_CA_CERTIFICATES); empty = none.')
param panoramaCaCertificatesSecretName string = ''

@description('The aksfw configuration document (JSON text), AKSFW_CONFIG.')
param aksfwConfig string

@description('Subnet (delegated to Microsoft.App/environments) for virtual network integration; empty = none.')
param virtualNetworkSubnetId string = ''

// Flex Consumption scales per function group: the HTTP functions together, every other
// function alone, and this bound applies to each group's on-demand instances (not to the
// app's sum). 1 is the plan's lowest value, 1000 its highest.
@minValue(1)
@maxValue(1000)
@description('Most on-demand instances of each function group (per-function scaling).')
param maximumInstanceCount int = 10

@allowed([
  512
  2048
  4096
])
@description('Memory of one instance.')
param instanceMemoryMB int = 2048

// The Python versions Flex Consumption offers that aksfw is tested on (docs/deploy.md): the
// whole suite runs on 3.11, and every trigger runs through Microsoft's azure-functions-runtime
// on 3.13 (with azure-functions 2.x; requirements.txt admits both lines, pip takes the one
// the Python version can install).
@allowed([
  '3.11'
  '3.13'
])
@description('Python version of the app (Flex Consumption runtime version).')
param pythonVersion string = '3.11'

// Telemetry: OpenTelemetry mode (host.json telemetryMode OpenTelemetry, Flex Consumption)
// into the workspace-based Application Insights, with Entra ID authentication (local auth
// is off). The host exports its logs and invocation spans with
// APPLICATIONINSIGHTS_CONNECTION_STRING and the identity in
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING. The app code sends its logs, metrics (meter
// aksfw) and traces through azure-monitor-opentelemetry, configured with the same connection
// string and the managed identity as its credential. PYTHON_ENABLE_OPENTELEMETRY makes the
// Python worker carry the host's trace context into each invocation and tell the host that
// the worker exports its own logs (no duplicates). Not
// PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: the worker would then call
// configure_azure_monitor() itself, without a credential (refused by Entra-only ingestion),
// and everything would be exported twice.

// Resource Manager URL of this cloud without the trailing slash (public, Government, China).
var resourceManager = environment().resourceManager
var armEndpoint = endsWith(resourceManager, '/') ? substring(resourceManager, 0, length(resourceManager) - 1) : resourceManager

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Flex Consumption zone redundancy exists in some regions only; aksfw's availability comes from queue retries, Event Grid retries (24 h) and the timer resync, which lose nothing while an instance or zone is down.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Event Grid delivers to the resource_event function through the public endpoint and azd deploys through it; the HTTP functions (resync, status) require a function key and HTTPS.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on its queue, timer and Event Grid triggers; work waits in the queues and Event Grid retries delivery, so no instance has to stand by.
  // checkov:skip=CKV_AZURE_213:No user traffic is balanced over instances here, so there is nothing for a health check to route around; /api/status (function key) and Application Insights report health.
  // checkov:skip=CKV_AZURE_17:Client certificates would block Event Grid delivery to the resource_event function; HTTP endpoints need a function key.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Functions host: identity-based AzureWebJobsStorage (blob + queue; no connection string).
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storageBlobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storageQueueEndpoint
        }
        // azure-identity: DefaultAzureCredential picks the user-assigned identity, in this cloud.
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'AZURE_AUTHORITY_HOST'
          value: environment().authentication.loginEndpoint
        }
        // aksfw
        {
          name: 'AKSFW_ARM_ENDPOINT'
          value: armEndpoint
        }
        {
          name: 'AKSFW_CONFIG'
          value: aksfwConfig
        }
        {
          name: 'PANORAMA_API_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${panoramaApiKeySecretName})'
        }
        // Empty = the system's CAs (or the pin in AKSFW_CONFIG) vouch for Panorama.
        {
          name: 'PANORAMA_CA_CERTIFICATES'
          value: empty(panoramaCaCertificatesSecretName) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${panoramaCaCertificatesSecretName})'
        }
        // Application Insights in OpenTelemetry mode with Entra ID authentication (see above).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // Python worker: OpenTelemetry mode (see above).
        {
          name: 'PYTHON_ENABLE_OPENTELEMETRY'
          value: 'true'
        }
      ]
    }
  }
}

// No publishing with user names and passwords: azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
