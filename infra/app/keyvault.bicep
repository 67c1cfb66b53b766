// The vault holding aksfw's secrets, in RBAC mode: `panorama-api-key` (the Panorama XML API
// key, read through a Key Vault reference), `panorama-ca-certificates` (the CAs that vouch for
// Panorama's certificate, when given) and the service-account tokens of clusters with a
// `token` credential (named by the configuration). Only identities with a data-plane role
// (rbac.bicep) read or write secrets.
//
// Who owns the Panorama secrets: the azd environment while it holds their values (each
// provision writes them again, a new version tagged with where it came from). The API key
// cleared there is Key Vault's to manage (a rotation in Key Vault then stands); the CAs
// cleared there are no longer trusted (the app setting loses its reference). docs/deploy.md,
// *Rotate the Panorama key*.

@description('Name of the vault.')
param name string

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@secure()
@description('Panorama XML API key: written to the secret panorama-api-key by every provision while given; empty = the secret is managed in Key Vault (az keyvault secret set) and left as it is.')
param panoramaApiKey string = ''

@secure()
@description('PEM text of the CAs to trust for Panorama (config panorama.caCertificates): written to the secret panorama-ca-certificates by every provision while given; empty = none, no secret written.')
param panoramaCaCertificates string = ''

@description('Accept only private endpoints, trusted Azure services and allowedIpRanges (vnetEnabled).')
param networkRestricted bool = false

@description('With networkRestricted: public IP ranges (CIDR) still allowed in.')
param allowedIpRanges array = []

@description('Log Analytics workspace receiving the vault audit log.')
param logAnalyticsWorkspaceId string

@description('Turn on purge protection (irreversible): a deleted vault then cannot be purged, and its name stays taken for 90 days, so `azd down --purge` leaves it and the next `azd up` of this environment fails until then. Off: `azd down --purge` purges it.')
param purgeProtection bool = false

var panoramaApiKeySecretName = 'panorama-api-key'
var panoramaCaCertificatesSecretName = 'panorama-ca-certificates'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_110:Purge protection is a parameter (purgeProtection, AKSFW_KEY_VAULT_PURGE_PROTECTION), off by default: the vault name is fixed per environment, and a protected vault cannot be purged, so `azd down --purge` followed by `azd up` would fail for 90 days. The vault holds only the Panorama API key and cluster tokens, which are re-issued at their source; soft delete (90 days) stays on.
  // checkov:skip=CKV_AZURE_42:Soft delete is on (90 days); purge protection is the purgeProtection parameter, see CKV_AZURE_110 above.
  // checkov:skip=CKV_AZURE_109:The firewall denies by default with vnetEnabled (private endpoint, trusted services, allowedIpRanges). Without a virtual network the Flex Consumption app has no fixed outbound addresses to allow, so access rests on Entra ID and RBAC (Key Vault Secrets User for the app only).
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // The property does not accept false (purge protection is irreversible): null = off.
    enablePurgeProtection: purgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: networkRestricted ? 'Deny' : 'Allow'
      ipRules: [for range in allowedIpRanges: {
        value: range
      }]
      virtualNetworkRules: []
    }
  }
}

// Only while the azd environment holds the value: then it is the source of truth, written
// again by every provision (panorama-secret.bicep).
module panoramaKey 'panorama-secret.bicep' = if (!empty(panoramaApiKey)) {
  name: 'panorama-api-key'
  params: {
    keyVaultName: vault.name
    secretName: panoramaApiKeySecretName
    value: panoramaApiKey
    source: 'AKSFW_PANORAMA_API_KEY'
  }
}

module panoramaCas 'panorama-secret.bicep' = if (!empty(panoramaCaCertificates)) {
  name: 'panorama-ca-certificates'
  params: {
    keyVaultName: vault.name
    secretName: panoramaCaCertificatesSecretName
    value: panoramaCaCertificates
    source: 'AKSFW_PANORAMA_CA_CERTIFICATES_BASE64'
  }
}

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
@description('https://<name>.vault.azure.net/ (with the trailing slash), for Key Vault references.')
output vaultUri string = vault.properties.vaultUri
@description('The vault URL without the trailing slash, for the configuration document.')
output url string = endsWith(vault.properties.vaultUri, '/') ? substring(vault.properties.vaultUri, 0, length(vault.properties.vaultUri) - 1) : vault.properties.vaultUri
output panoramaApiKeySecretName string = panoramaApiKeySecretName
@description('The secret holding Panorama\'s CAs; empty when none was given.')
output panoramaCaCertificatesSecretName string = empty(panoramaCaCertificates) ? '' : panoramaCaCertificatesSecretName
