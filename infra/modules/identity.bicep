// The app's own identity. User-assigned (as in the Flex quickstart) so that its roles can be granted
// before the function app exists: the app starts with working storage and Key Vault access.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
