// Customer tenant: delegate read access to the compliance auditor with Azure Lighthouse.
//
// Deployed by the CUSTOMER (an Owner of the subscription, or a principal holding
// Microsoft.ManagedServices/registrationDefinitions/write and registrationAssignments/write), once
// per subscription:
//
//   az deployment sub create --location <region> \
//     --template-file infra/lighthouse/delegate-auditor.bicep \
//     --parameters @infra/lighthouse/delegate-auditor.parameters.example.json
//
// It grants the auditor's managed identity (a service principal of the managing tenant) exactly
// the two built-in roles it needs to read Defender for Cloud compliance through Resource Graph:
//   - Reader: Resource Graph returns only rows the caller can read; Defender for Cloud's
//     regulatory compliance, secure score and assessment resources need Microsoft.Security/*/read
//     together with ordinary read on the subscription's resources. Security Reader alone is not
//     enough to read compliance data.
//   - Security Reader: read security policies, states, alerts and recommendations.
// Neither role has write actions or data actions. See docs/deploy.md.

targetScope = 'subscription'

@description('Tenant id of the service provider (managing tenant) that runs the auditor.')
param managedByTenantId string

@description('Object (principal) id of the auditor\'s managed identity in the managing tenant: output AUDITOR_PRINCIPAL_ID of the managing deployment.')
param auditorPrincipalId string

@description('Name shown to the customer for the auditor\'s principal.')
param auditorPrincipalDisplayName string = 'Defender for Cloud compliance auditor'

@description('Name of the offer shown in the customer\'s "Service providers" blade.')
param offerName string = 'Defender for Cloud compliance auditor (read-only)'

@description('Description of the offer shown to the customer.')
param offerDescription string = 'Read-only access for the service provider\'s compliance auditor: Reader and Security Reader on this subscription, to collect Defender for Cloud regulatory compliance, secure score and recommendations.'

@description('Optional: object id of a group in the managing tenant allowed to remove this delegation from the provider side (role "Managed Services Registration assignment Delete Role"). Empty: only the customer can offboard.')
param offboardingPrincipalId string = ''

@description('Display name of the optional offboarding group.')
param offboardingPrincipalDisplayName string = 'Auditor delegation administrators'

// Built-in role definition ids (identical in every tenant).
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
var securityReaderRoleId = '39bc4728-0917-49c7-9d2c-d95423bc2eb4'
var registrationAssignmentDeleteRoleId = '91c1777a-f3dc-4fae-b103-61d183457e46'

var auditorAuthorizations = [
  {
    principalId: auditorPrincipalId
    principalIdDisplayName: auditorPrincipalDisplayName
    roleDefinitionId: readerRoleId
  }
  {
    principalId: auditorPrincipalId
    principalIdDisplayName: auditorPrincipalDisplayName
    roleDefinitionId: securityReaderRoleId
  }
]

var offboardingAuthorizations = empty(offboardingPrincipalId) ? [] : [
  {
    principalId: offboardingPrincipalId
    principalIdDisplayName: offboardingPrincipalDisplayName
    roleDefinitionId: registrationAssignmentDeleteRoleId
  }
]

// Both names must be GUIDs; deriving them from the managing tenant and the principal makes a
// redeployment update the same delegation instead of adding a second one.
var registrationDefinitionName = guid(managedByTenantId, auditorPrincipalId, 'compliance-auditor-definition')
var registrationAssignmentName = guid(managedByTenantId, auditorPrincipalId, subscription().subscriptionId, 'compliance-auditor-assignment')

resource registrationDefinition 'Microsoft.ManagedServices/registrationDefinitions@2022-10-01' = {
  name: registrationDefinitionName
  properties: {
    registrationDefinitionName: offerName
    description: offerDescription
    managedByTenantId: managedByTenantId
    authorizations: concat(auditorAuthorizations, offboardingAuthorizations)
  }
}

resource registrationAssignment 'Microsoft.ManagedServices/registrationAssignments@2022-10-01' = {
  name: registrationAssignmentName
  properties: {
    registrationDefinitionId: registrationDefinition.id
  }
}

@description('Resource id of the registration definition (the offer).')
output registrationDefinitionId string = registrationDefinition.id

@description('Resource id of the registration assignment: delete it to offboard.')
output registrationAssignmentId string = registrationAssignment.id
