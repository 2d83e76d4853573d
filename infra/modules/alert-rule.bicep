// One log search alert over Application Insights: the query returns rows only when something is wrong, and
// one row or more fires the alert (and resolves it by itself once the query returns none).
param name string
param location string
param tags object
param displayName string
param description string
param severity int
param evaluationFrequency string
param windowSize string
param query string
param applicationInsightsId string
param actionGroupId string

resource rule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: name
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: displayName
    description: description
    severity: severity
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: windowSize
    criteria: {
      allOf: [
        {
          query: query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

output name string = rule.name
