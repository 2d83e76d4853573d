// The fallback storage (LEADS_FALLBACK_STORAGE): a second account, best in another region, holding each lead
// that arrives while the main account's table is unreachable, until the sweeper moves it (leads/services/recovery.py).
// Entra ID only, like the main account: shared keys are off; the app reaches it with its identity
// (fallback-rbac.bicep grants the one data role it needs).
param name string
param location string
param tags object

@description('Public network access: Allow (Entra ID identities with a data role only) or Deny (trusted Azure services only; needs VNet integration and private endpoints for the app). main.bicep networkDefaultAction says why Allow is the default.')
@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Allow'

@description('The table the app holds leads in (leads/storage/fallback_table.py FALLBACK_TABLE).')
param tableName string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without a virtual network reaches storage over its public endpoint, so the firewall must allow it; data access is Entra ID only (shared keys off) and needs an explicit data role.
  // checkov:skip=CKV_AZURE_59: Same cause as CKV_AZURE_35: closing the public endpoint needs VNet integration and private endpoints, left out of this one-step template (cost, complexity).
  // checkov:skip=CKV_AZURE_206: Locally redundant on purpose: this account is itself the redundancy (another region than the main account), and it holds a lead only for the length of an outage.
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
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: networkDefaultAction
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource table 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: tableName
}

output name string = account.name
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
