// What pages an operator: the action group (email from AKSFW_ALERT_EMAIL; none = the group
// exists without a receiver, add one later) and log alert rules over the telemetry the app
// sends to the workspace-based Application Insights (AppMetrics, AppRequests; the metric
// names are aksfw's OpenTelemetry contract, meter `aksfw`): poison queues, failing applies,
// failing functions, a target near its registered-IP limit, a target that forgot. Event Grid
// dead-letters are metric alerts on each system topic (eventgrid.bicep), sent to the same
// group.

@description('Region of the alert rules.')
param location string

@description('Tags of every resource.')
param tags object

@description('Name prefix of the action group and alert rules.')
param namePrefix string

@description('Log Analytics workspace holding the Application Insights tables (AppMetrics, AppRequests).')
param workspaceId string

@description('Email address alerts go to; empty = an action group without a receiver.')
param alertEmail string = ''

@minValue(10)
@maxValue(300)
@description('Minutes a (cluster, target) may keep failing its applies before the alert fires.')
param applyFailingMinutes int = 30

@minValue(1)
@description('Failed function invocations in 15 minutes that fire the function-failure alert.')
param functionFailureThreshold int = 5

// Poison queues that hold messages (the aksfw.queue.depth gauge, recorded at each timer tick
// and status call), or messages moved to one since the last evaluation (the
// aksfw.messages.poisoned counter, exported as deltas). A gauge or counter row carries its
// value in Sum.
var poisonQuery = '''
AppMetrics
| where Name in ('aksfw.queue.depth', 'aksfw.messages.poisoned')
| extend queue = tostring(Properties['queue'])
| where Name == 'aksfw.messages.poisoned' or queue endswith '-poison'
| summarize Messages = max(Sum) by queue
| where Messages > 0
'''

// A (cluster, target) whose applies have all failed since its last good one (applied or
// unchanged), for longer than applyFailingMinutes (the 6-hour window bounds it).
var applyFailingQuery = '''
let applies = AppMetrics
    | where Name == 'aksfw.apply.duration'
    | extend cluster = tostring(Properties['cluster']), target = tostring(Properties['target']), outcome = tostring(Properties['outcome']);
applies
| summarize LastSuccess = maxif(TimeGenerated, outcome in ('applied', 'unchanged')) by cluster, target
| join kind=inner (applies | where outcome == 'failed') on cluster, target
| where isnull(LastSuccess) or TimeGenerated > LastSuccess
| summarize FailingSince = min(TimeGenerated), LastFailure = max(TimeGenerated), FailedApplies = sum(Count) by cluster, target
| where FailingSince < ago(failingFor)
| extend FailingMinutes = datetime_diff('minute', now(), FailingSince)
'''

// Failed function invocations (the Functions host's request telemetry).
var functionFailuresQuery = '''
AppRequests
| where Success == false
| summarize Failures = sum(ItemCount) by Function = Name
'''

// Targets whose registered-IP count reached panorama.capacityWarningIps (the
// aksfw.panorama.capacity_warning gauge, 1 while at or above it, 0 below; set only when the
// setting is). The count is read at least once an hour (the audit): the 2-hour window holds
// a reading whatever the hour.
var capacityQuery = '''
AppMetrics
| where Name == 'aksfw.panorama.capacity_warning'
| extend target = tostring(Properties['target'])
| summarize Over = max(Sum) by target
| where Over > 0
'''

// Targets the timer's canary check found to have lost their registrations (the
// aksfw.panorama.target_forgot counter, exported as deltas); aksfw has repaired them.
var targetForgotQuery = '''
AppMetrics
| where Name == 'aksfw.panorama.target_forgot'
| extend target = tostring(Properties['target'])
| summarize Forgot = sum(Sum) by target
| where Forgot > 0
'''

var rules = [
  {
    name: 'poison-queue'
    displayName: 'aksfw: a poison queue holds messages'
    description: 'Messages that failed maxDequeueCount times (or were refused as untrusted) sit in cluster-resync-poison or panorama-updates-poison. Read them, fix the cause, then move them back or delete them (docs/operations.md).'
    severity: 2
    query: poisonQuery
    aggregation: 'Maximum'
    measure: 'Messages'
    dimensions: [
      {
        name: 'queue'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
    threshold: 0
    frequency: 'PT5M'
    window: 'PT15M'
  }
  {
    name: 'apply-failing'
    displayName: 'aksfw: a cluster\'s IP-tags have not reached a target for ${applyFailingMinutes} minutes'
    description: 'Every apply to this (cluster, target) has failed for longer than ${applyFailingMinutes} minutes: Panorama or the firewalls do not have the current IP-tags. Look at aksfw.failures and AppExceptions for the cluster and target.'
    severity: 1
    query: 'let failingFor = ${applyFailingMinutes}m;\n${applyFailingQuery}'
    aggregation: 'Maximum'
    measure: 'FailingMinutes'
    dimensions: [
      {
        name: 'cluster'
        operator: 'Include'
        values: [
          '*'
        ]
      }
      {
        name: 'target'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
    threshold: 0
    frequency: 'PT5M'
    window: 'PT6H'
  }
  {
    name: 'function-failures'
    displayName: 'aksfw: function invocations fail'
    description: 'More than ${functionFailureThreshold} failed function invocations in 15 minutes. Queue messages are retried and end in a poison queue; Event Grid retries for 24 hours, then dead-letters.'
    severity: 3
    query: functionFailuresQuery
    aggregation: 'Total'
    measure: 'Failures'
    dimensions: [
      {
        name: 'Function'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
    threshold: functionFailureThreshold
    frequency: 'PT5M'
    window: 'PT15M'
  }
  {
    name: 'target-capacity'
    displayName: 'aksfw: a target nears its registered-IP limit'
    description: 'A target holds panorama.capacityWarningIps registered IPs or more, from all sources (never fires without that setting, AKSFW_CAPACITY_WARNING_IPS). Past its model\'s limit it refuses registrations and the Dynamic Address Groups stop following the clusters. Look at the workbook\'s registered IPs per target and the panorama.capacity_warning log line (docs/operations.md, *Capacity*).'
    severity: 2
    query: capacityQuery
    aggregation: 'Maximum'
    measure: 'Over'
    dimensions: [
      {
        name: 'target'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
    threshold: 0
    frequency: 'PT15M'
    window: 'PT2H'
  }
  {
    name: 'target-forgot'
    displayName: 'aksfw: a target lost its registered IP-tags'
    description: 'The canary check found that this target forgot its registrations (a reboot without them, a failover to a peer that never had them, a clear); aksfw audited and repaired it. Find out why it happened: aksfw status shows the target\'s lastAmnesia (docs/operations.md, *A target that forgets*).'
    severity: 3
    query: targetForgotQuery
    aggregation: 'Total'
    measure: 'Forgot'
    dimensions: [
      {
        name: 'target'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-operators'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'aksfw'
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

resource logAlerts 'Microsoft.Insights/scheduledQueryRules@2022-08-01-preview' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: rule.aggregation
          metricMeasureColumn: rule.measure
          dimensions: rule.dimensions
          operator: 'GreaterThan'
          threshold: rule.threshold
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
        actionGroup.id
      ]
    }
  }
}]

output actionGroupId string = actionGroup.id
