// Managing tenant: the compliance auditor on Azure Functions Flex Consumption.
//
// Deployed by `azd up` (see azure.yaml and docs/deploy.md) into one resource group of the service
// provider's (managing) tenant. Plain `resource` blocks only, no modules: checkov scans every
// resource offline (tools/check_infra.py) and tests/infra/test_bicep.py asserts on the parsed file.
//
// Identity model: two Function Apps from the same package, split by role (AUDITOR_ROLE), each
// with its own user-assigned managed identity, host storage account and Flex plan:
// - the collector (timers and queues) runs as the identity customers delegate to with Azure
//   Lighthouse (infra/lighthouse/delegate-auditor.bicep). It writes the tables, its four queues
//   and the evidence container, and has no HTTP function;
// - the API (HTTP only, internet-facing) runs as an identity no customer delegates to. It reads
//   tables and evidence; its only writes are what POST /reports needs: a message on the report
//   queue and a request record under requests/ in the evidence container.
// Both reach storage and Application Insights through RBAC only (no keys, no connection strings
// with secrets), every role assignment scoped to the one resource it serves. A user-assigned
// identity outlives its app: recreating an app does not break any customer's delegation (the
// collector identity keeps the name the single app's identity had).

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds the unique suffix of every resource name.')
param environmentName string

@description('Region of every resource. Pick a region where Flex Consumption is available.')
param location string = resourceGroup().location

@description('Azure Resource Manager endpoint the auditor calls (the cloud of the customers).')
param armEndpoint string = environment().resourceManager

@description('NCRONTAB (six fields) of the daily snapshot run. Default: 02:00 UTC every day.')
param snapshotSchedule string = '0 0 2 * * *'

@description('NCRONTAB (six fields) of the monthly evidence packs. Default: 04:00 UTC on the 1st.')
param reportSchedule string = '0 0 4 1 * *'

@minLength(3)
@maxLength(56) // the host adds "-poison" (7 characters) and queue names stop at 63
@description('Queue of one-tenant snapshot jobs (its poison queue is created beside it).')
param snapshotQueueName string = 'auditor-snapshots'

@minLength(3)
@maxLength(56)
@description('Queue of evidence-pack jobs (its poison queue is created beside it).')
param reportQueueName string = 'auditor-reports'

@minLength(3)
@maxLength(63)
@description('Write-once blob container of evidence (version-level immutability).')
param evidenceContainerName string = 'evidence'

@minValue(1)
@maxValue(146000)
@description('Days the time-based retention policy keeps every evidence blob version immutable.')
param evidenceRetentionDays int = 2555

@minValue(10)
@maxValue(1800) // host.json functionTimeout is 30 minutes
@description('Upper bound in seconds on one tenant\'s collection (retries and throttling included).')
param collectTimeoutSeconds int = 900

@description('Access policy of the API, as JSON {"grants": [{"principal": ..., "tenants": [...] | "*"}]}. Default: nobody sees any tenant.')
param accessPolicy object = {
  grants: []
}

@allowed([
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
@description('Replication of the data account (tables and evidence): geo-redundant.')
param dataStorageSku string = 'Standard_GRS'

@minValue(1)
@maxValue(1000)
@description('Flex Consumption scale-out ceiling of the API app (HTTP only: it never queries Resource Graph).')
param maximumInstanceCount int = 10

@minValue(1)
@maxValue(10)
@description('Scale-out ceiling of the collector app (queues and timers). Derived in docs/scale.md: 3 instances x 3 messages in hand (host.json batchSize 2 + newBatchThreshold 1) keep the shared Resource Graph quota busy, and the largest tenant the caps allow still reads its pages within its time bound at a ninth of the quota.')
param collectorMaximumInstanceCount int = 3

@description('Resource Graph quota of the collector identity, LIMIT/SECONDS: every instance takes its query slots from one lease in Table Storage (docs/scale.md).')
param argQuota string = '15/5'

@allowed([
  2048
  4096
])
@description('Memory of one Flex Consumption instance (evidence workbooks are built in memory).')
param instanceMemoryMB int = 2048

@description('Zone-redundant Flex Consumption plan. Only in regions that support it; fixed at plan creation.')
param zoneRedundant bool = false

@minValue(30)
@maxValue(730)
@description('Retention in days of the Log Analytics workspace behind Application Insights.')
param logRetentionDays int = 90

@description('Turn on App Service Authentication (Entra ID) in front of the API.')
param enableApiAuth bool = false

@description('Application (client) id of the Entra app registration that represents the API. Required when enableApiAuth is true.')
param apiAuthClientId string = ''

@description('Tenant that issues tokens for the API (normally the managing tenant).')
param apiAuthTenantId string = tenant().tenantId

@description('Let users of customer tenants sign in to the dashboard (tenant:self grants, docs/dashboard.md): App Service Authentication then accepts tokens of every tenant (the common issuer; the app registration must be multi-tenant, consented in each customer tenant), and the app treats any user whose home tenant is not apiAuthTenantId as a customer who sees only their own tenant.')
param customerSignIn bool = false

@description('Extra audiences accepted by the API besides api://<apiAuthClientId> and <apiAuthClientId>.')
param apiAuthExtraAudiences array = []

// Not a hardcoded default: newGuid() draws a new random key at each deployment (Bicep draws
// randomness only in parameter defaults); it goes straight into Key Vault (.checkov.yaml).
@secure()
@description('Key signing the dashboard\'s CSRF tokens (AUDITOR_WEB_SECRET, the Key Vault secret web-secret), shared by every instance of the API app. The default is a new random value at every deployment, so a form left open across a deployment needs a reload.')
@minLength(32)
param webSecret string = newGuid()

@description('E-mail address of the action group the alert rules notify (failed tenants, stale tenants, poison messages). Empty: the rules fire without an e-mail receiver.')
param alertEmail string = ''

@minValue(1)
@maxValue(60)
@description('A tenant is stale in a run\'s digest when none of its last N slots has a complete snapshot.')
param staleSlots int = 3

@description('HTTPS URL receiving each run\'s digest as a signed CloudEvent (docs/notifications.md). Empty: no webhook. Its HMAC key is the Key Vault secret notify-webhook-secret.')
param notifyWebhookUrl string = ''

@description('Post a short message per run to Teams or Slack; the incoming-webhook URL (its credential) is the Key Vault secret notify-chat-url.')
param notifyChat bool = false

@allowed([
  'teams'
  'slack'
])
@description('Format of the chat message: an Adaptive Card (teams) or Slack blocks (slack).')
param notifyChatFormat string = 'teams'

@description('Base URL chat messages link to for the dashboard and diffs. Empty: the API\'s own URL.')
param dashboardUrl string = ''

// ---------------------------------------------------------------------------------------------
// Names and constants
// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  workload: 'compliance-auditor'
}
var identityName = 'id-auditor-${resourceToken}' // the collector's: customers delegate to it
var apiIdentityName = 'id-auditor-api-${resourceToken}'
var functionAppName = 'func-auditor-${resourceToken}' // the API: its URL is the one analysts use
var collectorAppName = 'func-collect-${resourceToken}'
var planName = 'plan-auditor-${resourceToken}'
var apiPlanName = 'plan-auditor-api-${resourceToken}'
var hostStorageName = 'sthost${resourceToken}'
var apiHostStorageName = 'sthostapi${resourceToken}'
var dataStorageName = 'stdata${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var logAnalyticsName = 'log-auditor-${resourceToken}'
var appInsightsName = 'appi-auditor-${resourceToken}'
var eventGridTopicName = 'evgt-auditor-${resourceToken}'
var actionGroupName = 'ag-auditor-${resourceToken}'
var notifyVaultName = 'kv-aud-${resourceToken}'

// Built-in role definition ids.
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'
var storageTableDataReaderRoleId = '76199698-9eea-4c19-bc75-cec21354c6b6'
var storageBlobDataReaderRoleId = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageBlobDelegatorRoleId = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
var storageQueueDataMessageSenderRoleId = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7'
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

// The API may create blobs only under requests/ (the record of a pack request) and may never
// delete or move one: an attribute-based condition on its one blob write role.
var blobWriteAction = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
var blobAddAction = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
var blobDeleteAction = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'
var blobMoveAction = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action'
var blobPathAttribute = '@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]'
var apiRequestsOnlyCondition = '((!(ActionMatches{\'${blobWriteAction}\'}) AND !(ActionMatches{\'${blobAddAction}\'})) OR (${blobPathAttribute} StringStartsWith \'requests/\')) AND (!(ActionMatches{\'${blobDeleteAction}\'}) AND !(ActionMatches{\'${blobMoveAction}\'}))'
// The collector writes anchors and packs, never verify's checkpoints (checkpoints/): those are
// written by whoever runs `verify` with their own identity, so an identity that can edit the
// snapshot tables cannot also vouch for them (docs/evidence.md, "Verify checkpoints").
var collectorNoCheckpointsCondition = '(!(ActionMatches{\'${blobWriteAction}\'}) AND !(ActionMatches{\'${blobAddAction}\'})) OR (${blobPathAttribute} StringNotStartsWith \'checkpoints/\')'

// ---------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------

// The collector's identity: customers delegate Reader and Security Reader to it.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

// The API's identity: reads storage; no customer delegates anything to it.
resource apiIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: apiIdentityName
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// Host storage, one account per app: AzureWebJobsStorage (timer leases, host locks, keys) and
// the Flex deployment package.
// ---------------------------------------------------------------------------------------------

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is the expression 'sthost' + uniqueString() (19 lowercase alphanumerics), which checkov cannot evaluate in Bicep; tests/infra asserts the naming rule on the expression
  // checkov:skip=CKV_AZURE_206: host storage holds only the deployment package and the host's lease blobs, all recreated by the next deployment; it keeps no data worth geo-replication (the data account is geo-redundant)
  // checkov:skip=CKV_AZURE_35: the Flex Consumption app has no VNet integration in this template, so it reaches storage over the public endpoint; a default-deny firewall would cut the host off. Access is Entra ID only (shared keys disabled, RBAC per identity)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: without VNet integration and private endpoints the app can only reach the public endpoint; shared-key access is disabled, so the endpoint accepts Entra ID tokens only
  name: hostStorageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource hostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The API's own host storage: its host never shares a package or lease container with the
// collector's, so the API's identity cannot replace the code the delegated identity runs.
resource apiHostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is the expression 'sthostapi' + uniqueString() (19 lowercase alphanumerics), which checkov cannot evaluate in Bicep; tests/infra asserts the naming rule on the expression
  // checkov:skip=CKV_AZURE_206: host storage holds only the deployment package and the host's lease blobs, all recreated by the next deployment; it keeps no data worth geo-replication (the data account is geo-redundant)
  // checkov:skip=CKV_AZURE_35: the Flex Consumption app has no VNet integration in this template, so it reaches storage over the public endpoint; a default-deny firewall would cut the host off. Access is Entra ID only (shared keys disabled, RBAC per identity)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: without VNet integration and private endpoints the app can only reach the public endpoint; shared-key access is disabled, so the endpoint accepts Entra ID tokens only
  name: apiHostStorageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource apiHostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: apiHostStorage
  name: 'default'
}

resource apiDeploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: apiHostBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// ---------------------------------------------------------------------------------------------
// Data storage: the auditor's tables, job queues and write-once evidence (AUDITOR_STORAGE).
// Separate from the host's account so that the app's data roles never cover host internals and
// the evidence account can carry its own replication, retention and immutability.
// ---------------------------------------------------------------------------------------------

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is the expression 'stdata' + uniqueString() (19 lowercase alphanumerics), which checkov cannot evaluate in Bicep; tests/infra asserts the naming rule on the expression
  // checkov:skip=CKV_AZURE_35: the Flex Consumption app has no VNet integration in this template, so it reaches storage over the public endpoint; a default-deny firewall would cut the auditor off. Access is Entra ID only (shared keys disabled, RBAC per identity)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: without VNet integration and private endpoints the app can only reach the public endpoint; shared-key access is disabled, so the endpoint accepts Entra ID tokens only
  name: dataStorageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: dataStorageSku
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

// Tables: only the table service is declared. The code creates its tables at runtime (names
// derive from AUDITOR_TABLE_PREFIX, default "auditor"), idempotently, with the Storage Table Data
// Contributor role below. Declaring the tables here too would duplicate the code's naming rules
// and drift from them.
resource dataTableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: dataStorage
  name: 'default'
}

resource dataQueueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: dataStorage
  name: 'default'
}

resource snapshotQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: dataQueueService
  name: snapshotQueueName
}

resource snapshotPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: dataQueueService
  name: '${snapshotQueueName}-poison'
}

resource reportQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: dataQueueService
  name: reportQueueName
}

resource reportPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: dataQueueService
  name: '${reportQueueName}-poison'
}

resource dataBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: dataStorage
  name: 'default'
  properties: {
    // Version-level immutability on the evidence container requires versioning on the account.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: 30
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 30
    }
  }
}

resource evidenceContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: dataBlobService
  name: evidenceContainerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: {
      enabled: true
    }
  }
}

// Default time-based retention of every blob version in the evidence container. Deployed
// unlocked: lock it (docs/deploy.md) once the retention period is agreed, because a locked
// policy can only be extended, never shortened or removed.
resource evidenceRetentionPolicy 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  parent: evidenceContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: evidenceRetentionDays
    allowProtectedAppendWrites: false
    allowProtectedAppendWritesAll: false
  }
}

// ---------------------------------------------------------------------------------------------
// Monitoring: Application Insights on a Log Analytics workspace, local auth disabled.
// ---------------------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

// Who read, wrote or deleted evidence: blob data-plane logs of the data account.
resource evidenceAccessLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'evidence-access'
  scope: dataBlobService
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

// ---------------------------------------------------------------------------------------------
// Role assignments, each scoped to the one resource it is needed on.
// ---------------------------------------------------------------------------------------------

// The collector: the tables (created by the code at runtime, so the account is the narrowest
// scope that holds them), its four queues, the evidence container, its host storage, telemetry.
resource dataTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, identity.id, storageTableDataContributorRoleId)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: create its tables and write snapshot entities.'
  }
}

resource snapshotQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(snapshotQueue.id, identity.id, storageQueueDataContributorRoleId)
  scope: snapshotQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: queue and process snapshot jobs (trigger and scale controller).'
  }
}

resource snapshotPoisonQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(snapshotPoisonQueue.id, identity.id, storageQueueDataContributorRoleId)
  scope: snapshotPoisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: queue and process failed snapshot jobs (trigger and scale controller).'
  }
}

resource reportQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportQueue.id, identity.id, storageQueueDataContributorRoleId)
  scope: reportQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: queue and process evidence-pack jobs (trigger and scale controller).'
  }
}

resource reportPoisonQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportPoisonQueue.id, identity.id, storageQueueDataContributorRoleId)
  scope: reportPoisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: queue and process failed evidence-pack jobs (trigger and scale controller).'
  }
}

resource dataBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(evidenceContainer.id, identity.id, storageBlobDataContributorRoleId)
  scope: evidenceContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: write anchors and evidence packs (immutability forbids any change); never checkpoints/.'
    condition: collectorNoCheckpointsCondition
    conditionVersion: '2.0'
  }
}

resource hostBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identity.id, storageBlobDataOwnerRoleId)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector host: AzureWebJobsStorage leases and the Flex deployment package.'
  }
}

resource appInsightsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector host: send telemetry with Entra ID (local auth is disabled).'
  }
}

// ---------------------------------------------------------------------------------------------
// Run digests (docs/notifications.md): an Event Grid custom topic the customer's automation
// subscribes to (CloudEvents, Entra ID only), which only the collector may publish to; alert
// rules on the digest's log records in Application Insights, and the action group they notify.
// ---------------------------------------------------------------------------------------------

resource eventGridTopic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193: the collector (Flex Consumption without VNet integration) publishes over the public endpoint, and the customer's subscribers read through Event Grid itself; local (key and SAS) auth is disabled, so publishing needs an Entra ID token with the EventGrid Data Sender role, which only the collector holds
  name: eventGridTopicName
  location: location
  tags: tags
  identity: {
    type: 'None'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

// Only the collector publishes (it closes runs); the API's identity gets no role on the topic.
resource eventGridSenderRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventGridTopic.id, identity.id, eventGridDataSenderRoleId)
  scope: eventGridTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: publish run digests and tenant.regressed events.'
  }
}

// The sinks' secrets (the webhook's HMAC key, the chat URL) live here, set by the operator
// (docs/notifications.md); the collector reads them through Key Vault references.
resource notifyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the collector (Flex Consumption without VNet integration) resolves its Key Vault references over the public endpoint; access is Entra ID RBAC only, the collector alone holds a secrets role
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: without VNet integration and private endpoints the platform can only reach the public endpoint
  // checkov:skip=CKV2_AZURE_32: no private endpoint for the same reason; see CKV_AZURE_109
  name: notifyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// The dashboard's CSRF signing key: one value for every instance of the API app (a form
// rendered by one instance posts to another), set by each deployment, read by the API alone.
resource webSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: every deployment writes a new value (param webSecret), so it is rotated with each release; an expiry date would stop the dashboard's forms (the app refuses to start without the key) between releases
  parent: notifyVault
  name: 'web-secret'
  properties: {
    value: webSecret
    contentType: 'text/plain'
  }
}

resource apiWebSecretRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(webSecretValue.id, apiIdentity.id, keyVaultSecretsUserRoleId)
  scope: webSecretValue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API: read the dashboard\'s CSRF signing key (a Key Vault reference), this secret only.'
  }
}

resource notifyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(notifyVault.id, identity.id, keyVaultSecretsUserRoleId)
  scope: notifyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Collector: read the notification sinks\' secrets (Key Vault references).'
  }
}

resource alertActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'auditor'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Each rule reads the digest's figures, which the collector logs when a run closes: one trace
// "run.digest {json}" per run (auditor/services/notify.py MonitorSink).
var digestTraces = 'traces | where message startswith "run.digest {" | extend digest = parse_json(substring(message, 11))'

resource failedTenantsAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-auditor-failed-tenants-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'Auditor: tenants failed in a run'
    description: 'A closed run has failed tenants (or tenants with nothing committed at its close).'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: '${digestTraces} | where toint(digest.failed) + toint(digest.pending) > 0'
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
    actions: {
      actionGroups: [
        alertActionGroup.id
      ]
    }
  }
}

resource staleTenantsAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-auditor-stale-tenants-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'Auditor: stale tenants'
    description: 'A closed run has tenants without a complete snapshot in their last staleSlots slots.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: '${digestTraces} | where toint(digest.stale) > 0'
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
    actions: {
      actionGroups: [
        alertActionGroup.id
      ]
    }
  }
}

resource poisonMessagesAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-auditor-poison-messages-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'Auditor: poison messages'
    description: 'Snapshot jobs were refused or given up on since the previous run.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: '${digestTraces} | where toint(digest.poison) > 0'
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
    actions: {
      actionGroups: [
        alertActionGroup.id
      ]
    }
  }
}

// The API: read-only data roles, plus exactly what POST /reports needs (docs/deploy.md): send
// to the report queue, and create request records under requests/ in the evidence container.
resource apiTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, apiIdentity.id, storageTableDataReaderRoleId)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReaderRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API: read snapshots.'
  }
}

resource apiBlobReadRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(evidenceContainer.id, apiIdentity.id, storageBlobDataReaderRoleId)
  scope: evidenceContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReaderRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API: read evidence packs, manifests and anchors.'
  }
}

resource apiRequestWriteRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(evidenceContainer.id, apiIdentity.id, storageBlobDataContributorRoleId)
  scope: evidenceContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API: create pack request records under requests/ only; never delete or move.'
    condition: apiRequestsOnlyCondition
    conditionVersion: '2.0'
  }
}

resource apiDelegatorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, apiIdentity.id, storageBlobDelegatorRoleId)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegatorRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API: user delegation key for read-only download links (no data access of its own; a link reads only what the blob reader role allows).'
  }
}

resource apiReportQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportQueue.id, apiIdentity.id, storageQueueDataMessageSenderRoleId)
  scope: reportQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSenderRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API: queue evidence-pack requests (send only).'
  }
}

resource apiHostBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(apiHostStorage.id, apiIdentity.id, storageBlobDataOwnerRoleId)
  scope: apiHostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API host: AzureWebJobsStorage keys and locks, and the Flex deployment package.'
  }
}

resource apiAppInsightsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, apiIdentity.id, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'API host: send telemetry with Entra ID (local auth is disabled).'
  }
}

// ---------------------------------------------------------------------------------------------
// Function Apps on Flex Consumption (one plan per app, as Flex requires)
// ---------------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy of a Flex Consumption plan exists only in some regions and is fixed at plan creation; it is the zoneRedundant parameter, off by default so that the template deploys in every Flex Consumption region
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
    zoneRedundant: zoneRedundant
  }
}

resource apiPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy of a Flex Consumption plan exists only in some regions and is fixed at plan creation; it is the zoneRedundant parameter, off by default so that the template deploys in every Flex Consumption region
  name: apiPlanName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

// Settings the code reads (auditor/settings.py SETTINGS) that both apps share, in their Azure
// form. No connection
// strings with secrets: storage is reached by service URI with the user-assigned identity.
var auditorSettings = [
  {
    name: 'AUDITOR_STORAGE__tableServiceUri'
    value: dataStorage.properties.primaryEndpoints.table
  }
  {
    name: 'AUDITOR_STORAGE__queueServiceUri'
    value: dataStorage.properties.primaryEndpoints.queue
  }
  {
    name: 'AUDITOR_STORAGE__blobServiceUri'
    value: dataStorage.properties.primaryEndpoints.blob
  }
  {
    name: 'AUDITOR_ARM_ENDPOINT'
    value: armEndpoint
  }
  {
    name: 'AUDITOR_SNAPSHOT_SCHEDULE'
    value: snapshotSchedule
  }
  {
    name: 'AUDITOR_REPORT_SCHEDULE'
    value: reportSchedule
  }
  {
    name: 'AUDITOR_SNAPSHOT_QUEUE'
    value: snapshotQueueName
  }
  {
    name: 'AUDITOR_REPORT_QUEUE'
    value: reportQueueName
  }
  {
    name: 'AUDITOR_EVIDENCE_CONTAINER'
    value: evidenceContainerName
  }
  {
    name: 'AUDITOR_EVIDENCE_RETENTION_DAYS'
    value: string(evidenceRetentionDays)
  }
  {
    name: 'AUDITOR_ACCESS_POLICY'
    value: string(accessPolicy)
  }
  {
    name: 'AUDITOR_COLLECT_TIMEOUT_SECONDS'
    value: string(collectTimeoutSeconds)
  }
  // The identity's Resource Graph quota, shared by every instance (docs/scale.md).
  {
    name: 'AUDITOR_ARG_QUOTA'
    value: argQuota
  }
  // Caps on what one collection reads, at the code's defaults (auditor/settings.py).
  {
    name: 'AUDITOR_COLLECT_MAX_RESPONSE_BYTES'
    value: '8388608'
  }
  {
    name: 'AUDITOR_COLLECT_MAX_ROWS_PER_TENANT'
    value: '250000'
  }
  {
    name: 'AUDITOR_COLLECT_MAX_PAGES_PER_QUERY'
    value: '1000'
  }
  {
    name: 'AUDITOR_ALERTS_MAX_PER_TENANT'
    value: '1000'
  }
  {
    name: 'AUDITOR_ALERTS_LOOKBACK_DAYS'
    value: '30'
  }
  {
    name: 'AUDITOR_RECOMMENDATION_MAX_RESOURCES'
    value: '200'
  }
  {
    name: 'AUDITOR_STALE_SLOTS'
    value: string(staleSlots)
  }
  {
    name: 'AUDITOR_DASHBOARD_URL'
    value: empty(dashboardUrl) ? 'https://${functionAppName}.azurewebsites.net' : dashboardUrl
  }
]

// The sinks: only the collector closes runs and sends digests, so only it holds their settings
// (the webhook secret and the chat URL never reach the internet-facing API app).
var notifySettings = [
  {
    name: 'AUDITOR_NOTIFY_WEBHOOK_URL'
    value: notifyWebhookUrl
  }
  {
    name: 'AUDITOR_NOTIFY_WEBHOOK_SECRET'
    value: empty(notifyWebhookUrl) ? '' : '@Microsoft.KeyVault(VaultName=${notifyVaultName};SecretName=notify-webhook-secret)'
  }
  {
    name: 'AUDITOR_NOTIFY_CHAT_URL'
    value: notifyChat ? '@Microsoft.KeyVault(VaultName=${notifyVaultName};SecretName=notify-chat-url)' : ''
  }
  {
    name: 'AUDITOR_NOTIFY_CHAT_FORMAT'
    value: notifyChatFormat
  }
  {
    name: 'AUDITOR_NOTIFY_EVENTGRID_ENDPOINT'
    value: eventGridTopic.properties.endpoint
  }
]

// Per app: its role, and its identity for storage, the host and telemetry (DefaultAzureCredential
// picks the user-assigned identity by AZURE_CLIENT_ID).
var collectorSettings = concat(auditorSettings, notifySettings, [
  {
    name: 'AUDITOR_ROLE'
    value: 'collector'
  }
  {
    name: 'AUDITOR_STORAGE__credential'
    value: 'managedidentity'
  }
  {
    name: 'AUDITOR_STORAGE__clientId'
    value: identity.properties.clientId
  }
  {
    name: 'AzureWebJobsStorage__accountName'
    value: hostStorage.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
])

var apiSettings = concat(auditorSettings, [
  {
    name: 'AUDITOR_ROLE'
    value: 'api'
  }
  {
    name: 'AUDITOR_WEB_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${webSecretValue.properties.secretUri})'
  }
  // Empty (unset for the app) unless customers sign in: then every other tenant's user is a
  // customer, granted tenant:self alone.
  {
    name: 'AUDITOR_MANAGING_TENANT_ID'
    value: customerSignIn ? apiAuthTenantId : ''
  }
  {
    name: 'AUDITOR_STORAGE__credential'
    value: 'managedidentity'
  }
  {
    name: 'AUDITOR_STORAGE__clientId'
    value: apiIdentity.properties.clientId
  }
  {
    name: 'AzureWebJobsStorage__accountName'
    value: apiHostStorage.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: apiIdentity.properties.clientId
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: apiIdentity.properties.clientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${apiIdentity.properties.clientId};Authorization=AAD'
  }
])

// The collector: timers and queues, as the identity customers delegate to.
resource collectorApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: the collector has no HTTP function (AUDITOR_ROLE=collector registers timers and queues only), so no caller presents a certificate; its admin endpoints need the master key
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP/FTPS endpoint at all, and it rejects siteConfig.ftpsState (listed in the Flex Consumption deprecations); FTP basic-auth publishing is also disabled below
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales by functionAppConfig.scaleAndConcurrency, not siteConfig.numberOfWorkers, and scales to zero by design
  // checkov:skip=CKV_AZURE_213: health-check eviction protects a standing pool of App Service instances; this Flex Consumption app scales to zero and has no HTTP function a probe could call
  // checkov:skip=CKV_AZURE_222: without VNet integration the platform still needs the public endpoint to deploy the package (azd) and to reach the host's admin API; no HTTP function is registered in the collector role
  // checkov:skip=CKV_AZURE_56: App Service Authentication guards HTTP functions and the collector registers none (AUDITOR_ROLE=collector); its only endpoints are the host's admin API, protected by the master key
  name: collectorAppName
  location: location
  tags: union(tags, {
    'azd-service-name': 'collector'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: collectorSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: collectorMaximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  // The host must find its roles in place when it first starts.
  dependsOn: [
    hostBlobRole
    dataTableRole
    snapshotQueueRole
    snapshotPoisonQueueRole
    reportQueueRole
    reportPoisonQueueRole
    dataBlobRole
    appInsightsRole
    deploymentContainer
  ]
}

// No basic-auth publishing: deployments (azd) use Entra ID tokens.
resource collectorAppFtpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: collectorApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource collectorAppScmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: collectorApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// The API: HTTP only, internet-facing, as an identity that reads storage.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: callers authenticate with Entra ID bearer tokens (App Service Authentication, enableApiAuth) and the API's access policy; incoming client certificates are not part of this API's protocol
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP/FTPS endpoint at all, and it rejects siteConfig.ftpsState (listed in the Flex Consumption deprecations); FTP basic-auth publishing is also disabled below
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales by functionAppConfig.scaleAndConcurrency, not siteConfig.numberOfWorkers, and scales to zero by design
  // checkov:skip=CKV_AZURE_213: health-check eviction protects a standing pool of App Service instances; this Flex Consumption app scales to zero and the platform replaces its instances per event. /api/health needs the function key like every route, so the platform's probe would get 401
  // checkov:skip=CKV_AZURE_222: the API must be reachable by the service provider's analysts without a VNet; it is protected by Entra ID authentication (enableApiAuth) and a deny-all default access policy
  name: functionAppName
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${apiIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: apiPlan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: apiIdentity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: apiSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${apiHostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: apiIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  // The host must find its roles in place when it first starts.
  dependsOn: [
    apiHostBlobRole
    apiTableRole
    apiBlobReadRole
    apiRequestWriteRole
    apiDelegatorRole
    apiReportQueueRole
    apiAppInsightsRole
    apiDeploymentContainer
    apiWebSecretRole
  ]
}

// No basic-auth publishing: deployments (azd) use Entra ID tokens.
resource functionAppFtpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource functionAppScmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// App Service Authentication (Entra ID) in front of the API and the dashboard (the collector
// has no HTTP function): validates bearer tokens and sign-in sessions issued for the API's app
// registration and accepts only the configured audiences (api://<client id>, <client id> and
// apiAuthExtraAudiences). It lets a request without a caller through (AllowAnonymous) so that
// the app decides, as it does for every request: a page redirects to /.auth/login/aad, /api
// answers 401 (and still needs the function key first), nothing names a tenant. The app
// believes the principal header only while this is on (WEBSITE_AUTH_ENABLED). No client
// secret: sign-in uses the ID-token flow (docs/deploy.md). The resource is always declared (every site has an authsettingsV2 document) and switched
// by enableApiAuth, so that a redeployment with the switch off really turns authentication
// off, and so that checkov scans its properties.
resource apiAuth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: this check reads the legacy 'authsettings' (V1) schema (properties.enabled); this resource is 'authsettingsV2', whose switch is platform.enabled, checked by CKV_AZURE_56
  // checkov:skip=CKV_AZURE_63: inspects properties.httpLoggingEnabled of the 'web' config document; 'authsettingsV2' has no such property (requests are logged by Application Insights)
  // checkov:skip=CKV_AZURE_65: inspects properties.detailedErrorLoggingEnabled of the 'web' config document; 'authsettingsV2' has no such property
  // checkov:skip=CKV_AZURE_66: inspects properties.requestTracingEnabled of the 'web' config document; 'authsettingsV2' has no such property
  // checkov:skip=CKV_AZURE_80: inspects the .NET Framework version of the 'web' config document; 'authsettingsV2' has none, and the app runs Python 3.11 (functionAppConfig.runtime)
  // checkov:skip=CKV_AZURE_88: inspects Azure Files mounts ('azurestorageaccounts' config); 'authsettingsV2' has none, and Flex Consumption uses no Azure Files share
  // checkov:skip=CKV_AZURE_222: inspects properties.publicNetworkAccess, a property of the site, not of 'authsettingsV2'; the site's own finding is skipped above with its reason
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: enableApiAuth
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: enableApiAuth
        registration: {
          clientId: apiAuthClientId
          // One tenant's issuer; with customerSignIn, the common endpoint (any tenant's
          // token; the app tells customers apart by their home tenant).
          openIdIssuer: customerSignIn ? '${environment().authentication.loginEndpoint}common/v2.0' : '${environment().authentication.loginEndpoint}${apiAuthTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: empty(apiAuthClientId) ? apiAuthExtraAudiences : concat([
            'api://${apiAuthClientId}'
            apiAuthClientId
          ], apiAuthExtraAudiences)
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment's .env)
// ---------------------------------------------------------------------------------------------

@description('Object id of the collector\'s identity: customers delegate Reader and Security Reader to it.')
output AUDITOR_PRINCIPAL_ID string = identity.properties.principalId

@description('Client id of the collector\'s identity.')
output AUDITOR_CLIENT_ID string = identity.properties.clientId

@description('Object id of the API\'s identity (never delegated to by customers).')
output AUDITOR_API_PRINCIPAL_ID string = apiIdentity.properties.principalId

@description('Managing tenant id: the managedByTenantId of the Lighthouse delegation.')
output AUDITOR_MANAGING_TENANT_ID string = tenant().tenantId

@description('Base URL of the auditor\'s API.')
output AUDITOR_API_BASE_URL string = 'https://${functionApp.properties.defaultHostName}'

output AZURE_FUNCTION_APP_NAME string = functionApp.name
output AUDITOR_COLLECTOR_APP_NAME string = collectorApp.name
output AUDITOR_DATA_STORAGE_ACCOUNT string = dataStorage.name
output AUDITOR_EVIDENCE_CONTAINER string = evidenceContainer.name

@description('Event Grid topic the run digests and tenant.regressed events are published to (subscribe your automation here).')
output AUDITOR_EVENTGRID_TOPIC_ENDPOINT string = eventGridTopic.properties.endpoint
