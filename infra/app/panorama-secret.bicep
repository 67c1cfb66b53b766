// A Panorama secret in Key Vault written from the azd environment: the API key
// (panorama-api-key, from AKSFW_PANORAMA_API_KEY) or the CAs that vouch for Panorama's
// certificate (panorama-ca-certificates, from AKSFW_PANORAMA_CA_CERTIFICATES_BASE64).
// keyvault.bicep deploys it only while that value is set, and then every `azd provision`
// writes it again (a new version): the environment is the source of truth, and a change made
// only in Key Vault lasts until the next provision. docs/deploy.md, *Rotate the Panorama
// key*, says how to rotate either way. The version carries a tag saying where it comes from.

@description('Name of the vault.')
param keyVaultName string

@description('Name of the secret.')
param secretName string

@secure()
@description('The secret\'s value: the Panorama XML API key, or PEM text.')
param value string

@description('The azd environment value the secret is written from, e.g. AKSFW_PANORAMA_API_KEY (a tag on the secret).')
param source string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:A PAN-OS API key (or a CA list) has no expiry that Azure knows of; an expiry date here would only make the Key Vault reference fail on that day. Rotate it together with the key (or the certificate) on Panorama.
  parent: vault
  name: secretName
  tags: {
    'aksfw-written-from': 'azd environment value ${source}: each azd provision writes it again while the value is set'
  }
  properties: {
    value: value
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}
