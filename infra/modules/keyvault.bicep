// The vault for destination secrets (SMTP password, webhook key, CRM credentials; written by
// keyvault-secret.bicep). RBAC mode: only the app's identity reads them (Key Vault Secrets User on this
// vault), through Key Vault references in app settings.
param name string
param location string
param tags object

@description('Public network access: Allow (Entra ID identities with a data role only) or Deny (trusted Azure services only; needs VNet integration and private endpoints for the app). main.bicep networkDefaultAction says why Allow is the default.')
@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Allow'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Key Vault references are resolved from the Flex app's public outbound addresses (no VNet here), and App Service is not a trusted service for references: a deny-by-default firewall would break them. Access is RBAC-only (one role, one identity).
  // checkov:skip=CKV_AZURE_189: Same cause as CKV_AZURE_109: disabling public network access needs VNet integration and a private endpoint.
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
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: networkDefaultAction
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
