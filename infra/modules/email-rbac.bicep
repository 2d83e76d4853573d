// The app's identity may send e-mail through the Communication Services resource. ACS honours only its
// built-in role for Entra callers (custom roles are not supported): Communication and Email Service Owner.
// Named guid(scope id, principal id, role id) like rbac.bicep, so a redeploy finds the same assignment.
param principalId string
param communicationServiceName string

var communicationAndEmailServiceOwner = '09976791-48a7-449e-bb21-39d1a415f350'

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: communicationServiceName
}

resource emailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, principalId, communicationAndEmailServiceOwner)
  scope: communicationService
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', communicationAndEmailServiceOwner)
  }
}
