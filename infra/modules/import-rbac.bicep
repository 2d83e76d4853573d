// The app's identity may read Partner Center's table (LEADS_IMPORT_STORAGE, LEADS_IMPORT_TABLE) in the publisher's
// existing account: read only, and only that one table. A role assignment scoped to a table is how Azure RBAC narrows
// data access below the account (Learn, "Assign an Azure role for access to table data", scope "Table":
// https://learn.microsoft.com/azure/storage/tables/assign-azure-role-data-access). Named guid(scope id, principal id,
// role id) like rbac.bicep, so a redeploy finds the same assignment. The importer keeps its watermark and markers in
// the app's own account, never in this one.
param principalId string
param storageAccountName string

@description('The one table the importer reads (LEADS_IMPORT_TABLE).')
param tableName string

var storageTableDataReader = '76199698-9eea-4c19-bc75-cec21354c6b6'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource importTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: tableName
}

resource tableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(importTable.id, principalId, storageTableDataReader)
  scope: importTable
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReader)
  }
}
