// Optional Microsoft Entra sign-in (App Service Authentication) in front of the operator's console
// (/api/console) and the management API (/api/manage/...): an unauthenticated browser is sent to the Entra
// sign-in page and comes back with a session cookie. Partner Center cannot sign in: it calls /api/leads with
// the function key in the URL, so that path stays outside sign-in, as does the anonymous health probe;
// everything else needs a signed-in user or a bearer token for this app registration.
// The platform only says who signed in (the X-MS-CLIENT-PRINCIPAL header, and WEBSITE_AUTH_ENABLED=True,
// which it sets itself when this is on); the app decides what that person may do from the app roles in it
// (Leads.Reader to view, Leads.Operator to replay, re-ingest and send test leads). Assign them with
// "Assignment required" on the enterprise application, so that nobody without a role can sign in at all.
// Bicep cannot create the app registration without the Microsoft Graph extension: docs/deploy.md shows the
// az commands (registration, roles, assignments).
param functionAppName string

@description('Application (client) id of the Entra app registration: redirect URI https://<app>.azurewebsites.net/.auth/login/aad/callback, ID tokens on, app roles Leads.Reader and Leads.Operator.')
param clientId string

@description('Directory (tenant) id users sign in from.')
param tenantId string

@description('How long a sign-in lasts before Entra is asked again (hh:mm:ss).')
param sessionLifetime string = '08:00:00'

// Exactly the routes that must answer without sign-in: ingest (Partner Center, function key) and health
// (an anonymous probe). tests/infra/test_bicep_policy.py holds this list to these two.
var excludedPaths = [
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
      // A browser is redirected to sign-in; App Service documents a 401 instead for a native (non-browser)
      // client. Scripts send a bearer token for this app registration (docs/deploy.md).
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
          // No client secret: sign-in uses ID tokens only, which is all the principal header needs.
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          // ID tokens (browsers) carry the client id; access tokens for scripts carry api://<client id>
          // (v1) or the client id (v2).
          allowedAudiences: [
            'api://${clientId}'
            clientId
          ]
        }
      }
    }
    login: {
      // The app reads only the principal header; no provider tokens are kept on the platform.
      tokenStore: {
        enabled: false
      }
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: sessionLifetime
      }
    }
  }
}
