// A Panorama secret in Key Vault: the API key (panorama-api-key; deployed by keyvault.bicep
// only when the key is given as a parameter, otherwise the administrator sets the secret),
// or the CAs that vouch for Panorama's certificate (panorama-ca-certificates).

@description('Name of the vault.')
param keyVaultName string

@description('Name of the secret.')
param secretName string

@secure()
@description('The secret\'s value: the Panorama XML API key, or PEM text.')
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:A PAN-OS API key (or a CA list) has no expiry that Azure knows of; an expiry date here would only make the Key Vault reference fail on that day. Rotate it together with the key (or the certificate) on Panorama.
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
