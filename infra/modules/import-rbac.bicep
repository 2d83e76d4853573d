// The app's identity may read Partner Center's table (LEADS_IMPORT_STORAGE) in the publisher's existing account:
// read only, nothing else. Named guid(scope id, principal id, role id) like rbac.bicep, so a redeploy finds the same
// assignment. The importer keeps its watermark and markers in the app's own account, never in this one.
param principalId string
param storageAccountName string

var storageTableDataReader = '76199698-9eea-4c19-bc75-cec21354c6b6'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource tableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, storageTableDataReader)
  scope: storageAccount
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReader)
  }
}
