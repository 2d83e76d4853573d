// Flex Consumption plan and the Python 3.11 function app. App settings are passed in whole from main.bicep
// (one place lists them all, and the policy test reads that place); nothing is added here.
param name string
param planName string
param location string
param tags object

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Blob endpoint of the storage account holding the deployment container.')
param deploymentBlobEndpoint string
param deploymentContainerName string

@description('Memory of each instance (512, 2048 or 4096). 512 MB fits this app and keeps the per-minute sweeper inside the free grant.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Upper bound on instances: caps the bill if something floods the endpoint.')
param maximumInstanceCount int

@description('Every app setting, final values (Key Vault references for secrets).')
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is not offered in every Flex region; a publisher in a zoned region can add zoneRedundant: true.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Partner Center posts leads from the internet: the endpoint must be public. It is protected by the function key (auth level FUNCTION) and HTTPS only.
  // checkov:skip=CKV_AZURE_17: Partner Center cannot present a client certificate; requiring one would reject every lead.
  // checkov:skip=CKV_AZURE_212: A minimum instance count (always ready) is billed around the clock; the app scales from zero on each lead, and ingest is idempotent.
  // checkov:skip=CKV_AZURE_213: App Service health check exists to replace unhealthy instances of apps that keep instances running; this app scales to zero between leads. /api/health is there for an external uptime monitor.
  // checkov:skip=CKV_AZURE_78: CKV_AZURE_78 wants siteConfig.ftpsState, which Flex Consumption rejects (Learn, Flex Consumption plan deprecations). FTP is closed instead by the basicPublishingCredentialsPolicies ftp/scm (allow: false) below.
  name: name
  location: location
  // azd finds the app to deploy the service `api` of azure.yaml to by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    // Key Vault references resolve with the user-assigned identity (there is no system-assigned one).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      // Inline rather than a sites/config child: checkov would judge that child as a whole second site.
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${deploymentBlobEndpoint}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No FTP and no publishing passwords: deployments authenticate with Microsoft Entra ID. FTP is closed by these
// policies, not by siteConfig.ftpsState, which Flex Consumption rejects (Learn, "Flex Consumption plan deprecations":
// https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
