// Azure Communication Services Email with an Azure-managed sender domain (<id>.azurecomm.net: no DNS records
// to publish), linked to a Communication Services resource the app sends through with its identity
// (LEADS_EMAIL_TRANSPORT=acs). Email and Communication Services resources are global; dataLocation is where
// the data is kept at rest.
param communicationServiceName string
param emailServiceName string
param dataLocation string
param tags object

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

// The sender is DoNotReply@<mailFromSenderDomain>. Engagement tracking off: the notification carries no
// tracking pixels or rewritten links.
resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

// A domain not in linkedDomains is refused at send time (DomainNotLinked).
resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      managedDomain.id
    ]
  }
}

output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = 'DoNotReply@${managedDomain.properties.mailFromSenderDomain}'
