// Optional Microsoft Entra sign-in (App Service Authentication) in front of the app. Partner Center cannot
// sign in: it calls /api/leads with the function key in the URL, so that path stays outside sign-in, as
// does the anonymous health probe. Everything else (operator pages, /api/status) needs a signed-in user.
param functionAppName string

@description('Application (client) id of an Entra app registration whose redirect URI is https://<app>.azurewebsites.net/.auth/login/aad/callback and which issues ID tokens.')
param clientId string

@description('Directory (tenant) id users sign in from.')
param tenantId string

@description('Paths served without sign-in.')
param excludedPaths array = [
  '/api/leads'
  '/api/health'
]

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: False positive: checkov judges this sites/config child as a whole site. This resource IS the App Service Authentication setting.
  // checkov:skip=CKV_AZURE_63: False positive (sites/config child judged as a site); HTTP logging belongs to the site, and the app's requests go to Application Insights.
  // checkov:skip=CKV_AZURE_65: False positive (sites/config child judged as a site); detailed error pages are off by default on the site.
  // checkov:skip=CKV_AZURE_66: False positive (sites/config child judged as a site); failed request tracing is an IIS (Windows) feature, this is a Linux app.
  // checkov:skip=CKV_AZURE_80: False positive (sites/config child judged as a site); the app is Python, there is no .NET version.
  // checkov:skip=CKV_AZURE_88: False positive (sites/config child judged as a site); Flex Consumption has no Azure Files content share.
  // checkov:skip=CKV_AZURE_222: False positive (sites/config child judged as a site); see the site in functionapp.bicep for why it is public.
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: excludedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${clientId}'
            clientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: true
      }
    }
  }
}
