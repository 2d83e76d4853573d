// One Key Vault secret. main.bicep calls this only when the value is non-empty (the condition is on the
// module call, not on the resource: checkov does not look inside a conditional resource's body).
param vaultName string
param name string

@secure()
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: These are third-party credentials (SMTP, CRM) whose lifetime the vendor sets; an invented expiry date would not rotate them, only make a valid one look expired. Rotation is az keyvault secret set (docs/deploy.md).
  parent: vault
  name: name
  properties: {
    value: value
    contentType: 'text/plain'
  }
}
