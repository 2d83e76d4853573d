// The whole lead destination in one deployment:
//   az deployment sub create --location <region> --template-file infra/main.bicep --parameters @infra/main.parameters.json
// Subscription scope so that the resource group is created too (as in Azure-Samples/functions-quickstart-python-http-azd).
// Every app setting the app reads (leads/core/settings.py SETTINGS) is a parameter below with the code's default; the
// ones marked secret are secure parameters stored in Key Vault and referenced from the app settings.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Short name of this deployment (e.g. leads-prod): names the resource group and seeds unique resource names.')
param environmentName string

@description('Region of every resource; must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string = deployment().location

@description('Object id of whoever runs the deployment (azd sets AZURE_PRINCIPAL_ID). Recorded in the resource group\'s deployed-by tag only: no role is granted to it (operators read leads through the API, not the tables).')
param principalId string = ''

@description('Resource group to create or reuse.')
param resourceGroupName string = 'rg-${environmentName}'

@description('Instance memory in MB (512, 2048 or 4096).')
param instanceMemoryMB int = 512

@description('Most instances the app may scale out to.')
param maximumInstanceCount int = 100

@description('Create the fallback storage account (LEADS_FALLBACK_STORAGE) that holds a lead, answered 202, while the main table is unreachable. On by default: the other place a lead can wait, a file on the instance\'s disk, vanishes when Flex Consumption scales that instance in. false: such a lead gets 503 with Retry-After.')
param fallbackStorage bool = true

@description('Region of the fallback storage account; empty (the default): the region paired with `location` (Learn, Azure region pairs), or `location` itself where it has no pair.')
param fallbackStorageLocation string = ''

@description('LEADS_IMPORT_STORAGE: name of the existing storage account Partner Center\'s "Azure Table" destination writes leads to; the app reads its new rows every minute with its identity. Empty (the default): no import.')
param importStorageAccountName string = ''

@description('With importStorageAccountName: the resource group (in this subscription) holding that account, to grant the app\'s identity Storage Table Data Reader on the one table it reads (LEADS_IMPORT_TABLE); empty: grant that role yourself (docs/operations.md).')
param importStorageResourceGroup string = ''

@description('Put Microsoft Entra sign-in (App Service Authentication) in front of the console (/api/console) and the management API (/api/manage/); /api/leads and /api/health stay outside it. Needs an app registration first (docs/deploy.md).')
param enableOperatorSignIn bool = false

@description('With enableOperatorSignIn: application (client) id of the Entra app registration used for sign-in (app roles Leads.Reader and Leads.Operator).')
param operatorSignInClientId string = ''

@description('With enableOperatorSignIn: tenant users sign in from (default: this subscription\'s tenant).')
param operatorSignInTenantId string = tenant().tenantId

// ----- App settings read by the app (leads/core/settings.py), each with the code's default -----

// --- core ---
@description('LEADS_IMPORT_TABLE: The table Partner Center writes leads to (with LEADS_IMPORT_STORAGE).')
param leadsImportTable string = 'MarketplaceLeads'

@description('LEADS_TABLE: Table holding every lead, its delivery state and the de-duplication markers.')
param leadsTable string = 'leads'

@description('LEADS_QUARANTINE_TABLE: Table holding every rejected request (reason and the first 64 KiB of the body).')
param leadsQuarantineTable string = 'leadsquarantine'

@description('LEADS_QUEUE: Queue of delivery work; the sweeper reads `<name>-poison`.')
param leadsQueue string = 'leads-delivery'

@description('LEADS_DESTINATIONS: Where each lead goes, comma-separated: `email`, `webhook`, `dynamics`, `salesforce`, `marketo`, `hubspot`.')
param leadsDestinations string = 'email'

@description('LEADS_ROUTES: Which leads each destination takes, one rule per destination separated by `;`, e.g. `salesforce:emea country=DE,FR; hubspot action=INS,PLT` (docs/destinations.md, Routing). Empty: defaults only.')
param leadsRoutes string = ''

@description('LEADS_FORWARD_TEST_LEADS: `true` sends Partner Center\'s MSFT_TEST leads to CRMs too (they always go to e-mail and webhook).')
param leadsForwardTestLeads string = 'false'

@description('LEADS_RETRY_DELAYS: Seconds to wait before each retry of a destination that failed transiently (default: 9 retries over about 28 hours).')
param leadsRetryDelays string = '30,120,600,1800,3600,7200,14400,28800,43200'

@description('LEADS_DEDUPE_HOURS: The same payload received again within this many hours is the same lead.')
param leadsDedupeHours string = '24'

@description('LEADS_RETENTION_DAYS: Days a lead is kept (with its delivery history, markers, rejected requests and held or spooled copies): a daily run deletes what arrived longer ago. `0` keeps everything.')
param leadsRetentionDays string = '730'

@description('LEADS_SPOOL_DIR: Folder where a lead is kept when storage is down, stored by the instance that kept it once storage answers (default: a folder under the system temp directory).')
param leadsSpoolDir string = ''

@description('LEADS_HTTP_TIMEOUT: Seconds before a call to a CRM or webhook is abandoned (and retried later).')
param leadsHttpTimeout string = '20'

// --- email ---
@description('LEADS_EMAIL_TO: Who is told of each lead: addresses separated by `;` or `,` (like Partner Center\'s Contact email field).')
param leadsEmailTo string = ''

@description('LEADS_EMAIL_FROM: Sender address of the notification e-mail.')
param leadsEmailFrom string = ''

@description('LEADS_SMTP_HOST: SMTP server.')
param leadsSmtpHost string = ''

@description('LEADS_SMTP_PORT: SMTP port (default 25, 587 with `starttls`, 465 with `ssl`).')
param leadsSmtpPort string = ''

@description('LEADS_SMTP_USERNAME: SMTP login (optional).')
param leadsSmtpUsername string = ''

@description('LEADS_SMTP_PASSWORD: SMTP password (optional).')
@secure()
param leadsSmtpPassword string = ''

@description('LEADS_SMTP_SECURITY: `none`, `starttls` or `ssl`.')
param leadsSmtpSecurity string = 'starttls'

@description('LEADS_EMAIL_TRANSPORT: `smtp`, `smtp-oauth` or `acs`. With emailService=true the app uses `acs`.')
param leadsEmailTransport string = 'smtp'

@description('LEADS_SMTP_OAUTH_TENANT_ID: Directory (tenant) ID of the app registration that may send as LEADS_EMAIL_FROM (smtp-oauth).')
param leadsSmtpOauthTenantId string = ''

@description('LEADS_SMTP_OAUTH_CLIENT_ID: Application (client) ID of that app registration (smtp-oauth).')
param leadsSmtpOauthClientId string = ''

@description('LEADS_SMTP_OAUTH_CLIENT_SECRET: its client secret (smtp-oauth).')
@secure()
param leadsSmtpOauthClientSecret string = ''

@description('LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE: PEM (private key and certificate) used instead of a secret (smtp-oauth).')
@secure()
param leadsSmtpOauthClientCertificate string = ''

@description('LEADS_ACS_ENDPOINT: Communication Services endpoint reached with the app identity (acs). Set from the created resource when emailService=true.')
param leadsAcsEndpoint string = ''

@description('LEADS_ACS_CONNECTION_STRING: endpoint=...;accesskey=... used instead of the identity (acs).')
@secure()
param leadsAcsConnectionString string = ''

@description('LEADS_ACS_WAIT_SECONDS: how long one delivery waits for the ACS send operation to finish.')
param leadsAcsWaitSeconds string = '30'

@description('Create Azure Communication Services Email (an Azure-managed sender domain, linked) and let the app send through it with its identity: LEADS_EMAIL_TRANSPORT becomes acs, LEADS_ACS_ENDPOINT its endpoint, and LEADS_EMAIL_FROM (when empty) DoNotReply@<the managed domain>.')
param emailService bool = false

@description('Where Communication Services keeps e-mail data at rest, e.g. United States, Europe, UK (emailService=true).')
param emailDataLocation string = 'United States'

@description('LEADS_EMAIL_INCLUDE_PII: `true` puts the customer\'s name, e-mail and phone in the e-mail, and in the Teams and Slack messages. Off by default: lead data should not travel by unsecured e-mail, nor be read by a whole channel.')
param leadsEmailIncludePii string = 'false'

// --- webhook ---
@description('LEADS_WEBHOOK_URL: HTTPS URL that receives each lead as signed JSON (it often carries a key: kept in Key Vault).')
@secure()
param leadsWebhookUrl string = ''

@description('LEADS_WEBHOOK_SECRET: Standard Webhooks signing secret (whsec_ + base64 of 24 to 64 random bytes); several space-separated while rotating.')
@secure()
param leadsWebhookSecret string = ''

// --- teams, slack (their URLs carry the key that lets anyone post to the channel) ---
@description('LEADS_TEAMS_WEBHOOK_URL: URL of a Teams workflow ("Post to a channel when a webhook request is received").')
@secure()
param leadsTeamsWebhookUrl string = ''

@description('LEADS_SLACK_WEBHOOK_URL: Slack incoming webhook URL.')
@secure()
param leadsSlackWebhookUrl string = ''

// --- dynamics ---
@description('LEADS_AUTHORITY_HOST: Azure AD authority (sovereign clouds: e.g. `https://login.microsoftonline.us`).')
param leadsAuthorityHost string = 'https://login.microsoftonline.com'

@description('LEADS_DYNAMICS_URL: Dynamics 365 instance URL, e.g. `https://contoso.crm4.dynamics.com`.')
param leadsDynamicsUrl string = ''

@description('LEADS_DYNAMICS_TENANT_ID: Directory (tenant) ID of the app registration.')
param leadsDynamicsTenantId string = ''

@description('LEADS_DYNAMICS_CLIENT_ID: Application (client) ID of the app registration; with no secret and no certificate, the client id of the managed identity to use (empty: system-assigned).')
param leadsDynamicsClientId string = ''

@description('LEADS_DYNAMICS_CLIENT_SECRET: Client secret of the app registration.')
@secure()
param leadsDynamicsClientSecret string = ''

@description('LEADS_DYNAMICS_CLIENT_CERTIFICATE: PEM (private key and certificate) used instead of a secret: the text itself or a file path.')
@secure()
param leadsDynamicsClientCertificate string = ''

@description('LEADS_DYNAMICS_FIELD_MAP: JSON object that changes or extends the lead mapping, e.g. `{"jobtitle": null, "new_campaign": "campaign.mktcmpid"}`.')
param leadsDynamicsFieldMap string = ''

// --- salesforce ---
@description('LEADS_SALESFORCE_MODE: `web-to-lead` (no credentials; errors are invisible) or `rest` (connected app; errors are reported).')
param leadsSalesforceMode string = 'web-to-lead'

@description('LEADS_SALESFORCE_ORG_ID: Web-to-Lead: the 15-character Organization ID (`oid`).')
param leadsSalesforceOrgId string = ''

@description('LEADS_SALESFORCE_WEB_TO_LEAD_URL: Web-to-Lead endpoint.')
param leadsSalesforceWebToLeadUrl string = 'https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8'

@description('LEADS_SALESFORCE_URL: REST: the org\'s My Domain URL, e.g. `https://contoso.my.salesforce.com`.')
param leadsSalesforceUrl string = ''

@description('LEADS_SALESFORCE_CLIENT_ID: REST: the connected app\'s consumer key.')
param leadsSalesforceClientId string = ''

@description('LEADS_SALESFORCE_CLIENT_SECRET: REST: the connected app\'s consumer secret.')
@secure()
param leadsSalesforceClientSecret string = ''

@description('LEADS_SALESFORCE_API_VERSION: REST API version.')
param leadsSalesforceApiVersion string = 'v62.0'

@description('LEADS_SALESFORCE_EXTERNAL_ID_FIELD: REST: an External ID field on Lead (e.g. `Marketplace_Lead_Id__c`); when set, leads are upserted on it.')
param leadsSalesforceExternalIdField string = ''

@description('LEADS_SALESFORCE_FIELD_MAP: JSON object that changes or extends the Lead mapping.')
param leadsSalesforceFieldMap string = ''

@description('LEADS_SALESFORCE_LEAD_SOURCE: The Lead\'s `LeadSource`: a value of the org\'s Lead Source picklist (`Web` is one of a new org\'s standard values).')
param leadsSalesforceLeadSource string = 'Web'

@description('LEADS_SALESFORCE_OFFER_FIELD: REST: the API name of a Lead text field (e.g. `Marketplace_Offer__c`) that receives the offer\'s name; empty: not sent.')
param leadsSalesforceOfferField string = ''

// --- marketo ---
@description('LEADS_MARKETO_URL: REST endpoint from Admin > Web Services, e.g. `https://123-ABC-456.mktorest.com`.')
param leadsMarketoUrl string = ''

@description('LEADS_MARKETO_CLIENT_ID: Client ID of the LaunchPoint custom service.')
param leadsMarketoClientId string = ''

@description('LEADS_MARKETO_CLIENT_SECRET: Client Secret of the LaunchPoint custom service.')
@secure()
param leadsMarketoClientSecret string = ''

@description('LEADS_MARKETO_FIELD_MAP: JSON object that changes or extends the lead mapping.')
param leadsMarketoFieldMap string = ''

@description('LEADS_MARKETO_UPDATE_EXISTING: true overwrites a known person\'s mapped fields; false fills only empty ones.')
param leadsMarketoUpdateExisting string = 'false'

@description('LEADS_MARKETO_ACTIVITY_TYPE_ID: id of a custom activity type recorded on the person for every lead (empty: none).')
param leadsMarketoActivityTypeId string = ''

// --- hubspot ---
@description('LEADS_HUBSPOT_URL: HubSpot API base URL.')
param leadsHubspotUrl string = 'https://api.hubapi.com'

@description('LEADS_HUBSPOT_TOKEN: Private app access token (scopes crm.objects.contacts.read and .write).')
@secure()
param leadsHubspotToken string = ''

@description('LEADS_HUBSPOT_FIELD_MAP: JSON object that changes or extends the contact property mapping.')
param leadsHubspotFieldMap string = ''

@description('LEADS_HUBSPOT_UPDATE_EXISTING: true overwrites an existing contact\'s mapped properties; false fills only empty ones.')
param leadsHubspotUpdateExisting string = 'false'

// --- delivery timing ---
@description('LEADS_DELIVERY_LEASE_SECONDS: How long a worker holds a destination it is sending to. A worker that dies is replaced after this; keep it at least the host\'s functionTimeout.')
param leadsDeliveryLeaseSeconds string = '600'

@description('LEADS_OUTBOX_GRACE_SECONDS: How late a lead\'s next step may be before the sweeper enqueues it again.')
param leadsOutboxGraceSeconds string = '120'

@description('LEADS_REQUEUE_AGAIN_SECONDS: After the sweeper enqueues a lead again (a due outbox row, a poison message), how long before it does so once more if the lead is still unfinished.')
param leadsRequeueAgainSeconds string = '300'

@description('LEADS_SWEEP_SCHEDULE: When the outbox sweeper runs (NCRONTAB, six fields, UTC). It re-enqueues lost work and reads the poison queue: a lost enqueue is retried at most LEADS_OUTBOX_GRACE_SECONDS plus one period after the lead was stored.')
param leadsSweepSchedule string = '0 */5 * * * *'

// --- the Functions host ---
@description('AzureFunctionsJobHost__extensions__queues__maxPollingInterval: the longest wait between two reads of the empty delivery queue (overrides host.json). Lead to e-mail within about this plus the delivery on a running instance; halving it doubles the idle polling cost (docs/deploy.md).')
param queuesMaxPollingInterval string = '00:00:10'

@description('LEADS_CONSOLE_URL: Address of the lead console, e.g. `https://<app>.azurewebsites.net/api/console` (locally `http://127.0.0.1:7071/api/console`): the notification e-mail links to each lead there. Empty: no link.')
param leadsConsoleUrl string = ''

@description('LEADS_OPS_EMAIL_TO: Who is told when a destination is blocked, a lead fails for good or no lead arrives for a while (and again when it clears): addresses separated by `;` or `,`. Empty: LEADS_EMAIL_TO.')
param leadsOpsEmailTo string = ''

@description('LEADS_OPS_CHAT: Teams or Slack destinations of LEADS_DESTINATIONS (by name) that get the operational notices too. Empty: e-mail only.')
param leadsOpsChat string = ''

@description('LEADS_SILENCE_ALERT_DAYS: Days without any lead (test or real) before the operational notice says so. 0 turns it off.')
param leadsSilenceAlertDays string = '7'

@description('LEADS_NOTICE_INTERVAL_SECONDS: At most one operational notice per condition in this many seconds; also how often the sweeper reviews open conditions and the silence.')
param leadsNoticeIntervalSeconds string = '3600'

@description('Who receives the Azure Monitor alerts (docs/operations.md, Alerts in Azure). Empty: the alerts still fire and show in the portal, but nobody is e-mailed.')
param alertEmail string = ''

@description('How long leads may arrive with no successful delivery before the alert fires (ISO 8601: PT1H, PT2H, PT3H, PT6H, P1D or P2D; Azure accepts no PT12H window).')
param alertNoDeliveryPeriod string = 'PT6H'

@description('Network access to the storage accounts and the Key Vault: `Allow` (the default) lets the app reach them over their public endpoints, where only Entra ID identities holding a data role get in (shared keys are off); `Deny` closes the public endpoints except to trusted Azure services, which breaks this template\'s app unless you add Flex Consumption VNet integration and private endpoints (docs/deploy.md, Network).')
@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Allow'

// Azure region pairs (https://learn.microsoft.com/azure/reliability/cross-region-replication-azure), for the
// regions that offer Flex Consumption; a region without a pair keeps the fallback in its own region.
var regionPairs = {
  australiaeast: 'australiasoutheast'
  brazilsouth: 'southcentralus'
  canadacentral: 'canadaeast'
  centralindia: 'southindia'
  centralus: 'eastus2'
  eastasia: 'southeastasia'
  eastus: 'westus'
  eastus2: 'centralus'
  francecentral: 'francesouth'
  germanywestcentral: 'germanynorth'
  japaneast: 'japanwest'
  koreacentral: 'koreasouth'
  northcentralus: 'southcentralus'
  northeurope: 'westeurope'
  norwayeast: 'norwaywest'
  southafricanorth: 'southafricawest'
  southcentralus: 'northcentralus'
  southeastasia: 'eastasia'
  swedencentral: 'swedensouth'
  switzerlandnorth: 'switzerlandwest'
  uaenorth: 'uaecentral'
  uksouth: 'ukwest'
  westeurope: 'northeurope'
  westus: 'eastus'
  westus2: 'westcentralus'
  westus3: 'eastus'
}
var fallbackRegion = empty(fallbackStorageLocation) ? (contains(regionPairs, location) ? regionPairs[location] : location) : fallbackStorageLocation
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
// azd-env-name: azd finds this deployment's resource group by it (Azure-Samples/functions-quickstart-python-http-azd).
var tags = {
  'app': 'marketplace-leads'
  'env': environmentName
  'azd-env-name': environmentName
}
var functionAppName = 'func-leads-${resourceToken}'
// Storage account names hold 24 lower-case letters and digits at most: 'stfb' + the 13-character token.
var fallbackStorageName = 'stfb${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var communicationServiceName = 'acs-leads-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: empty(principalId) ? tags : union(tags, { 'deployed-by': principalId })
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-leads-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    networkDefaultAction: networkDefaultAction
    tableNames: [
      leadsTable
      leadsQuarantineTable
    ]
    // The host moves a message that failed maxDequeueCount times to <queue>-poison; the app listens there too.
    queueNames: [
      leadsQueue
      '${leadsQueue}-poison'
    ]
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-leads-${resourceToken}'
    applicationInsightsName: 'appi-leads-${resourceToken}'
    location: location
    tags: tags
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    namePrefix: 'leads-${resourceToken}'
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    alertEmail: alertEmail
    noDeliveryPeriod: alertNoDeliveryPeriod
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    networkDefaultAction: networkDefaultAction
  }
}

// Secrets: each secure parameter goes to its own Key Vault secret, named after the setting with dashes (Key
// Vault names allow letters, digits and dashes). Written only when given, so a redeploy without the values
// keeps secrets rotated in the vault with `az keyvault secret set`. An unwritten secret leaves its Key Vault
// reference unresolved, which matters only if that destination is switched on (docs/deploy.md: Secrets).
module kvLeadsSmtpPassword 'modules/keyvault-secret.bicep' = if (!empty(leadsSmtpPassword)) {
  name: 'secret-leads-smtp-password'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-SMTP-PASSWORD'
    value: leadsSmtpPassword
  }
}

module kvLeadsSmtpOauthClientSecret 'modules/keyvault-secret.bicep' = if (!empty(leadsSmtpOauthClientSecret)) {
  name: 'secret-leads-smtp-oauth-client-secret'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-SMTP-OAUTH-CLIENT-SECRET'
    value: leadsSmtpOauthClientSecret
  }
}

module kvLeadsSmtpOauthClientCertificate 'modules/keyvault-secret.bicep' = if (!empty(leadsSmtpOauthClientCertificate)) {
  name: 'secret-leads-smtp-oauth-client-certificate'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-SMTP-OAUTH-CLIENT-CERTIFICATE'
    value: leadsSmtpOauthClientCertificate
  }
}

module kvLeadsAcsConnectionString 'modules/keyvault-secret.bicep' = if (!empty(leadsAcsConnectionString)) {
  name: 'secret-leads-acs-connection-string'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-ACS-CONNECTION-STRING'
    value: leadsAcsConnectionString
  }
}

module kvLeadsWebhookSecret 'modules/keyvault-secret.bicep' = if (!empty(leadsWebhookSecret)) {
  name: 'secret-leads-webhook-secret'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-WEBHOOK-SECRET'
    value: leadsWebhookSecret
  }
}

module kvLeadsWebhookUrl 'modules/keyvault-secret.bicep' = if (!empty(leadsWebhookUrl)) {
  name: 'secret-leads-webhook-url'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-WEBHOOK-URL'
    value: leadsWebhookUrl
  }
}

module kvLeadsTeamsWebhookUrl 'modules/keyvault-secret.bicep' = if (!empty(leadsTeamsWebhookUrl)) {
  name: 'secret-leads-teams-webhook-url'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-TEAMS-WEBHOOK-URL'
    value: leadsTeamsWebhookUrl
  }
}

module kvLeadsSlackWebhookUrl 'modules/keyvault-secret.bicep' = if (!empty(leadsSlackWebhookUrl)) {
  name: 'secret-leads-slack-webhook-url'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-SLACK-WEBHOOK-URL'
    value: leadsSlackWebhookUrl
  }
}

module kvLeadsDynamicsClientSecret 'modules/keyvault-secret.bicep' = if (!empty(leadsDynamicsClientSecret)) {
  name: 'secret-leads-dynamics-client-secret'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-DYNAMICS-CLIENT-SECRET'
    value: leadsDynamicsClientSecret
  }
}

module kvLeadsDynamicsClientCertificate 'modules/keyvault-secret.bicep' = if (!empty(leadsDynamicsClientCertificate)) {
  name: 'secret-leads-dynamics-client-certificate'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-DYNAMICS-CLIENT-CERTIFICATE'
    value: leadsDynamicsClientCertificate
  }
}

module kvLeadsSalesforceClientSecret 'modules/keyvault-secret.bicep' = if (!empty(leadsSalesforceClientSecret)) {
  name: 'secret-leads-salesforce-client-secret'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-SALESFORCE-CLIENT-SECRET'
    value: leadsSalesforceClientSecret
  }
}

module kvLeadsMarketoClientSecret 'modules/keyvault-secret.bicep' = if (!empty(leadsMarketoClientSecret)) {
  name: 'secret-leads-marketo-client-secret'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-MARKETO-CLIENT-SECRET'
    value: leadsMarketoClientSecret
  }
}

module kvLeadsHubspotToken 'modules/keyvault-secret.bicep' = if (!empty(leadsHubspotToken)) {
  name: 'secret-leads-hubspot-token'
  scope: rg
  params: {
    vaultName: keyVault.outputs.name
    name: 'LEADS-HUBSPOT-TOKEN'
    value: leadsHubspotToken
  }
}

// The fallback storage, on by default, in another region. Its endpoint is written from the name (not read from
// the conditional module's output), so the app setting is empty when the module is off.
module fallbackStorageAccount 'modules/fallback-storage.bicep' = if (fallbackStorage) {
  name: 'fallback-storage'
  scope: rg
  params: {
    name: fallbackStorageName
    location: fallbackRegion
    tags: tags
    tableName: 'leadsfallback'
    networkDefaultAction: networkDefaultAction
  }
}

module fallbackRbac 'modules/fallback-rbac.bicep' = if (fallbackStorage) {
  name: 'fallback-rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: fallbackStorageName
  }
  dependsOn: [
    fallbackStorageAccount
  ]
}

// E-mail without a password: Communication Services Email, only when asked for.
module email 'modules/email.bicep' = if (emailService) {
  name: 'email'
  scope: rg
  params: {
    communicationServiceName: communicationServiceName
    emailServiceName: 'ecs-leads-${resourceToken}'
    dataLocation: emailDataLocation
    tags: tags
  }
}

module emailRbac 'modules/email-rbac.bicep' = if (emailService) {
  name: 'email-rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    communicationServiceName: communicationServiceName
  }
  dependsOn: [
    email
  ]
}

// Read access to Partner Center's table, when its account and resource group are given (another subscription or
// tenant: the publisher grants it, docs/operations.md).
module importRbac 'modules/import-rbac.bicep' = if (!empty(importStorageAccountName) && !empty(importStorageResourceGroup)) {
  name: 'import-rbac'
  scope: resourceGroup(empty(importStorageResourceGroup) ? resourceGroupName : importStorageResourceGroup)
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: importStorageAccountName
    tableName: leadsImportTable
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

var secretRefPrefix = '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/'

// Every app setting, in one place. No AzureWebJobsStorage connection string: the host and the app reach
// storage with the managed identity (the __ settings). Of host.json only the delivery queue's polling interval
// is overridden here (the latency/cost trade-off), and FUNCTIONS_WORKER_RUNTIME/_EXTENSION_VERSION must not be set on Flex.
var appSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  // Identity-based: a table endpoint, reached as the host reaches AzureWebJobsStorage (leads/core/settings.py fallback_storage).
  LEADS_FALLBACK_STORAGE: fallbackStorage ? 'https://${fallbackStorageName}.table.${environment().suffixes.storage}' : ''
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  // Local auth is off on Application Insights: the SDK authenticates as the user-assigned identity.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  LEADS_IMPORT_STORAGE: empty(importStorageAccountName) ? '' : 'https://${importStorageAccountName}.table.${environment().suffixes.storage}'
  LEADS_IMPORT_TABLE: leadsImportTable
  // host.json telemetryMode OpenTelemetry: the worker makes the host's invocation span current in the function and
  // leaves the app's logs to the app, which exports them with its spans and metrics (leads/telemetry/otel.py).
  // Not PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: the worker would configure Azure Monitor a second time.
  PYTHON_ENABLE_OPENTELEMETRY: 'true'
  LEADS_TABLE: leadsTable
  LEADS_QUARANTINE_TABLE: leadsQuarantineTable
  LEADS_QUEUE: leadsQueue
  LEADS_DESTINATIONS: leadsDestinations
  LEADS_ROUTES: leadsRoutes
  LEADS_FORWARD_TEST_LEADS: leadsForwardTestLeads
  LEADS_RETRY_DELAYS: leadsRetryDelays
  LEADS_DEDUPE_HOURS: leadsDedupeHours
  LEADS_RETENTION_DAYS: leadsRetentionDays
  LEADS_SPOOL_DIR: leadsSpoolDir
  LEADS_HTTP_TIMEOUT: leadsHttpTimeout
  LEADS_EMAIL_TO: leadsEmailTo
  // With emailService on, the created resource's endpoint and managed sender (ARM evaluates only the branch
  // taken, so the conditional module's outputs are read only when it exists).
  LEADS_EMAIL_FROM: (emailService && empty(leadsEmailFrom)) ? email.outputs.senderAddress : leadsEmailFrom
  LEADS_SMTP_HOST: leadsSmtpHost
  LEADS_SMTP_PORT: leadsSmtpPort
  LEADS_SMTP_USERNAME: leadsSmtpUsername
  LEADS_SMTP_PASSWORD: '${secretRefPrefix}LEADS-SMTP-PASSWORD/)'
  LEADS_SMTP_SECURITY: leadsSmtpSecurity
  LEADS_EMAIL_TRANSPORT: emailService ? 'acs' : leadsEmailTransport
  LEADS_SMTP_OAUTH_TENANT_ID: leadsSmtpOauthTenantId
  LEADS_SMTP_OAUTH_CLIENT_ID: leadsSmtpOauthClientId
  LEADS_SMTP_OAUTH_CLIENT_SECRET: '${secretRefPrefix}LEADS-SMTP-OAUTH-CLIENT-SECRET/)'
  LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE: '${secretRefPrefix}LEADS-SMTP-OAUTH-CLIENT-CERTIFICATE/)'
  LEADS_ACS_ENDPOINT: emailService ? email.outputs.endpoint : leadsAcsEndpoint
  LEADS_ACS_CONNECTION_STRING: '${secretRefPrefix}LEADS-ACS-CONNECTION-STRING/)'
  LEADS_ACS_WAIT_SECONDS: leadsAcsWaitSeconds
  LEADS_EMAIL_INCLUDE_PII: leadsEmailIncludePii
  LEADS_WEBHOOK_URL: '${secretRefPrefix}LEADS-WEBHOOK-URL/)'
  LEADS_WEBHOOK_SECRET: '${secretRefPrefix}LEADS-WEBHOOK-SECRET/)'
  LEADS_TEAMS_WEBHOOK_URL: '${secretRefPrefix}LEADS-TEAMS-WEBHOOK-URL/)'
  LEADS_SLACK_WEBHOOK_URL: '${secretRefPrefix}LEADS-SLACK-WEBHOOK-URL/)'
  LEADS_AUTHORITY_HOST: leadsAuthorityHost
  LEADS_DYNAMICS_URL: leadsDynamicsUrl
  LEADS_DYNAMICS_TENANT_ID: leadsDynamicsTenantId
  LEADS_DYNAMICS_CLIENT_ID: leadsDynamicsClientId
  LEADS_DYNAMICS_CLIENT_SECRET: '${secretRefPrefix}LEADS-DYNAMICS-CLIENT-SECRET/)'
  LEADS_DYNAMICS_CLIENT_CERTIFICATE: '${secretRefPrefix}LEADS-DYNAMICS-CLIENT-CERTIFICATE/)'
  LEADS_DYNAMICS_FIELD_MAP: leadsDynamicsFieldMap
  LEADS_SALESFORCE_MODE: leadsSalesforceMode
  LEADS_SALESFORCE_ORG_ID: leadsSalesforceOrgId
  LEADS_SALESFORCE_WEB_TO_LEAD_URL: leadsSalesforceWebToLeadUrl
  LEADS_SALESFORCE_URL: leadsSalesforceUrl
  LEADS_SALESFORCE_CLIENT_ID: leadsSalesforceClientId
  LEADS_SALESFORCE_CLIENT_SECRET: '${secretRefPrefix}LEADS-SALESFORCE-CLIENT-SECRET/)'
  LEADS_SALESFORCE_API_VERSION: leadsSalesforceApiVersion
  LEADS_SALESFORCE_EXTERNAL_ID_FIELD: leadsSalesforceExternalIdField
  LEADS_SALESFORCE_FIELD_MAP: leadsSalesforceFieldMap
  LEADS_SALESFORCE_LEAD_SOURCE: leadsSalesforceLeadSource
  LEADS_SALESFORCE_OFFER_FIELD: leadsSalesforceOfferField
  LEADS_MARKETO_URL: leadsMarketoUrl
  LEADS_MARKETO_CLIENT_ID: leadsMarketoClientId
  LEADS_MARKETO_CLIENT_SECRET: '${secretRefPrefix}LEADS-MARKETO-CLIENT-SECRET/)'
  LEADS_MARKETO_FIELD_MAP: leadsMarketoFieldMap
  LEADS_MARKETO_UPDATE_EXISTING: leadsMarketoUpdateExisting
  LEADS_MARKETO_ACTIVITY_TYPE_ID: leadsMarketoActivityTypeId
  LEADS_HUBSPOT_URL: leadsHubspotUrl
  LEADS_HUBSPOT_TOKEN: '${secretRefPrefix}LEADS-HUBSPOT-TOKEN/)'
  LEADS_HUBSPOT_FIELD_MAP: leadsHubspotFieldMap
  LEADS_HUBSPOT_UPDATE_EXISTING: leadsHubspotUpdateExisting
  LEADS_DELIVERY_LEASE_SECONDS: leadsDeliveryLeaseSeconds
  LEADS_OUTBOX_GRACE_SECONDS: leadsOutboxGraceSeconds
  LEADS_REQUEUE_AGAIN_SECONDS: leadsRequeueAgainSeconds
  LEADS_SWEEP_SCHEDULE: leadsSweepSchedule
  AzureFunctionsJobHost__extensions__queues__maxPollingInterval: queuesMaxPollingInterval
  LEADS_CONSOLE_URL: leadsConsoleUrl
  LEADS_OPS_EMAIL_TO: leadsOpsEmailTo
  LEADS_OPS_CHAT: leadsOpsChat
  LEADS_SILENCE_ALERT_DAYS: leadsSilenceAlertDays
  LEADS_NOTICE_INTERVAL_SECONDS: leadsNoticeIntervalSeconds
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  // Roles and secrets exist before the app first starts, so storage and Key Vault references work at once.
  dependsOn: [
    kvLeadsSmtpPassword
    kvLeadsSmtpOauthClientSecret
    kvLeadsSmtpOauthClientCertificate
    kvLeadsAcsConnectionString
    kvLeadsWebhookSecret
    kvLeadsWebhookUrl
    kvLeadsTeamsWebhookUrl
    kvLeadsSlackWebhookUrl
    kvLeadsDynamicsClientSecret
    kvLeadsDynamicsClientCertificate
    kvLeadsSalesforceClientSecret
    kvLeadsMarketoClientSecret
    kvLeadsHubspotToken
    rbac
    emailRbac
    fallbackRbac
  ]
  params: {
    name: functionAppName
    planName: 'plan-leads-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: appSettings
  }
}

module operatorSignIn 'modules/operator-signin.bicep' = if (enableOperatorSignIn) {
  name: 'operator-signin'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    clientId: operatorSignInClientId
    tenantId: operatorSignInTenantId
  }
}

output resourceGroupName string = rg.name
output functionAppName string = functionApp.outputs.name
@description('Paste into Partner Center (offer > Customer leads > HTTPS endpoint) after adding ?code=<function key>.')
output ingestUrl string = 'https://${functionApp.outputs.defaultHostName}/api/leads'
output healthUrl string = 'https://${functionApp.outputs.defaultHostName}/api/health'
output keyVaultName string = keyVault.outputs.name
output storageAccountName string = storage.outputs.name
output identityClientId string = identity.outputs.clientId
// azd stores these in the environment (.azure/<env>/.env): `azd env get-value SERVICE_API_URI` gives the app's
// address to `python -m leads verify` (docs/deploy.md, .github/workflows/deploy.yml).
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
