// The Azure Monitor workbook an operator opens first: per cluster and target the
// event-to-applied lag, the IP-tag pairs held over time, apply outcomes and failures, and
// the queue depths. Its content is workbook.json (the workbook's own JSON format, editable
// in the portal and exported back there); it queries the workspace behind Application
// Insights.

@description('Region.')
param location string

@description('Tags of every resource.')
param tags object

@description('Title shown in the portal.')
param displayName string

@description('Log Analytics workspace the queries run against (AppMetrics, AppTraces, AppRequests).')
param workspaceId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; this one is stable per environment and workspace.
  name: guid(resourceGroup().id, workspaceId, 'aksfw-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    version: 'Notebook/1.0'
    // Lower case, as the portal lists a resource's workbooks by this ID.
    sourceId: toLower(workspaceId)
    serializedData: replace(loadTextContent('workbook.json'), '__AKSFW_WORKSPACE_ID__', toLower(workspaceId))
  }
}

output id string = workbook.id
