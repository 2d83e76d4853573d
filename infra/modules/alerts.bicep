// Alerts on what the app itself writes to Application Insights: its structured log lines (leads/telemetry/api.py
// log_ingest, log_delivery, log_sweep; docs/operations.md, "Alerts in Azure"), exported by the app's own Azure Monitor
// exporter (leads/telemetry/otel.py) as `traces` rows: the line as `message`, the logging level as `severityLevel`,
// its `extra` fields as `customDimensions`. Not the host's `requests`: under host.json telemetryMode OpenTelemetry
// those are not named after the function, and a timer run may leave none. tests/infra/test_alerts_policy.py runs
// each query over rows built by the exporter's own mapping. The app's own notices (LEADS_OPS_EMAIL_TO) cover what
// only the app knows; these cover it failing, not answering or not delivering.
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

// Any line the app logs at Error or above (a lead failed for good, storage and its fallback down, a broken setting),
// or an exception it exported; ingest's own line has the rule below.
module functionFailures 'alert-rule.bicep' = {
  name: 'alert-function-failures'
  params: {
    name: '${namePrefix}-function-failures'
    location: location
    tags: tags
    displayName: 'Marketplace leads: the app reported an error'
    description: 'The app logged an error or an exception (a lead that failed for good, storage down, a broken setting). See docs/operations.md, Alerts in Azure.'
    severity: 1
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    query: 'union (traces | where severityLevel >= 3 and not(message startswith "ingest ")), (exceptions) | project timestamp, message'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

// The ingest function never answers 500 (leads/triggers/http.py): every 5xx is a 503 whose line says spooled or
// unavailable.
module ingest5xx 'alert-rule.bicep' = {
  name: 'alert-ingest-5xx'
  params: {
    name: '${namePrefix}-ingest-5xx'
    location: location
    tags: tags
    displayName: 'Marketplace leads: ingest answered 5xx'
    description: 'Partner Center got a 503 from /api/leads, and it is not documented to retry: such a lead may be lost. See docs/operations.md, Alerts in Azure.'
    severity: 1
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    query: 'traces | where message startswith "ingest " and tostring(customDimensions.outcome) in ("spooled", "unavailable") | project timestamp, message'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

// Every completed sweep logs one "sweeper run" line; summarize over no rows still gives one row (runs = 0), so
// silence itself fires the alert.
module sweeperNotRunning 'alert-rule.bicep' = {
  name: 'alert-sweeper-not-running'
  params: {
    name: '${namePrefix}-sweeper-not-running'
    location: location
    tags: tags
    displayName: 'Marketplace leads: the sweeper timer is not running'
    description: 'No completed run of the outbox sweeper for 30 minutes (it runs every 5 minutes): lost messages and held leads are not picked up. See docs/operations.md, Alerts in Azure.'
    severity: 2
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    query: 'traces | where message startswith "sweeper run " | summarize runs = count() | where runs == 0'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

// Leads younger than 30 minutes may still be on their way.
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
    query: 'traces | where message startswith "ingest " or message startswith "delivery " | summarize arrived = countif(message startswith "ingest " and tostring(customDimensions.outcome) in ("accepted", "held", "spooled") and timestamp < ago(30m)), handled = countif(message startswith "delivery " and tostring(customDimensions.outcome) in ("delivered", "skipped")) | where arrived > 0 and handled == 0'
    applicationInsightsId: applicationInsightsId
    actionGroupId: actionGroup.id
  }
}

output actionGroupId string = actionGroup.id
