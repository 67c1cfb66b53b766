// The Panorama API key as the Key Vault secret panorama-api-key; deployed by keyvault.bicep
// only when the key is given as a parameter (otherwise the administrator sets the secret).

@description('Name of the vault.')
param keyVaultName string

@description('Name of the secret.')
param secretName string

@secure()
@description('Panorama XML API key.')
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:A PAN-OS API key has no expiry that Azure knows of; an expiry date here would only make the Key Vault reference fail on that day. Rotate it together with the key on Panorama.
  parent: vault
  name: secretName
  properties: {
    value: value
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}
