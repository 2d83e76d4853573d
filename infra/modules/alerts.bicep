// Alerts that fire even when the app itself is broken: Azure Monitor evaluates these queries over Application
// Insights, using the host's own `requests` records (written for every invocation, whether the Python code ran
// or not; host.json keeps Request and Exception out of sampling) and the app's log lines (docs/operations.md,
// "Alerts in Azure", says what each means and what to do). The app's own notices (LEADS_OPS_EMAIL_TO) cover
// what only the app knows; these cover the app not running, failing, or not delivering.
param location string
param tags object
param namePrefix string
param applicationInsightsId string

@description('Who receives the alerts (one address). Empty: the alert rules still fire and show in the portal, but nobody is e-mailed.')
param alertEmail string = ''

@description('How long leads may arrive with no successful delivery before the alert fires (ISO 8601).')
@allowed([
  'PT1H'
  'PT2H'
  'PT3H'
  'PT6H'
  'P1D'
  'P2D'
])
param noDeliveryPeriod string = 'PT6H'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-alerts'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'leads'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Non-HTTP invocations have resultCode 0 (Azure/azure-webjobs-sdk#1236), so only HTTP answers fall in 400-599:
// those are the caller's fault (4xx) or have their own rule (ingest 5xx). `exceptions` too, because some
// failed invocations are recorded as successful requests (Azure/azure-functions-host#11056).
module functionFailures 'alert-rule.bicep' = {
  name: 'alert-function-failures'
  params: {
    name: '${namePrefix}-function-failures'
    location: location
    tags: tags
    displayName: 'Marketplace leads: function failures or exceptions'
    description: 'A function invocation failed or threw (storage errors, a bug, a crash). See docs/operations.md, Alerts in Azure.'
    severity: 1
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    query: 'union (requests | where success == false and not(toint(resultCode) between (400 .. 599)) | project timestamp, operation_Name), (exceptions | project timestamp, operation_Name)'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

module ingest5xx 'alert-rule.bicep' = {
  name: 'alert-ingest-5xx'
  params: {
    name: '${namePrefix}-ingest-5xx'
    location: location
    tags: tags
    displayName: 'Marketplace leads: ingest answered 5xx'
    description: 'Partner Center got a 5xx from /api/leads, and it is not documented to retry: such a lead may be lost. See docs/operations.md, Alerts in Azure.'
    severity: 1
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    query: 'requests | where operation_Name == "ingest_lead" and toint(resultCode) >= 500 | project timestamp, resultCode'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

// summarize on no rows still gives one row (runs = 0): silence itself fires the alert.
module sweeperNotRunning 'alert-rule.bicep' = {
  name: 'alert-sweeper-not-running'
  params: {
    name: '${namePrefix}-sweeper-not-running'
    location: location
    tags: tags
    displayName: 'Marketplace leads: the sweeper timer is not running'
    description: 'No run of sweep_outbox for 30 minutes (it runs every 5 minutes): lost messages and held leads are not picked up. See docs/operations.md, Alerts in Azure.'
    severity: 2
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    query: 'requests | where operation_Name == "sweep_outbox" | summarize runs = count() | where runs == 0'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

// The log lines of the app (ingest, delivery); leads younger than 30 minutes may still be on their way.
module noDelivery 'alert-rule.bicep' = {
  name: 'alert-no-delivery'
  params: {
    name: '${namePrefix}-no-delivery'
    location: location
    tags: tags
    displayName: 'Marketplace leads: leads arrive but none is delivered'
    description: 'Leads were stored in this period (older than 30 minutes) but no destination delivered or skipped any. See docs/operations.md, Alerts in Azure.'
    severity: 1
    evaluationFrequency: 'PT1H'
    windowSize: noDeliveryPeriod
    query: 'traces | where message startswith "ingest " or message startswith "delivery " | summarize arrived = countif(message startswith "ingest " and (message has "outcome=accepted" or message has "outcome=held" or message has "outcome=spooled") and timestamp < ago(30m)), handled = countif(message startswith "delivery " and (message has "outcome=delivered" or message has "outcome=skipped")) | where arrived > 0 and handled == 0'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

output actionGroupId string = actionGroup.id
