// The kernel's extension API: what a package extending the kernel (the marketplace) may use.
// Services are asked for by reference (`coreServices`) and given per extension; extension points
// take what it adds. The helpers below hold no state and need no kernel.
export { defineExtension } from './define.js'
export type {
  BackgroundJob,
  DemoContext,
  DemoResult,
  DemoSeeder,
  Extension,
  ExtensionPoints,
  InstallPolicy,
  ResolvedDeps,
} from './define.js'
export { coreServices } from './services.js'
export type {
  AuditService,
  EventService,
  ExtensionTx,
  InstallRequest,
  PluginService,
  PolicyVersion,
  ServiceOf,
  ServiceRef,
  TransactionService,
} from './services.js'
export type { MembershipService, Organisation, OrganisationKind, OrganisationService } from './organisations.js'
export type {
  ClaimedVersion,
  ListedQuery,
  Review,
  VersionRegistration,
  VersionRegistry,
  VersionState,
  VersionStatus,
} from './version-registry.js'
// Helpers: HTTP guards and the caller, pagination, problems, the platform's id, kernel permissions.
export { auditMeta, principalOf, requirePermission } from '../http/guards.js'
export { PageQuery, decodeCursor, encodeCursor, pageOf, toPage, toPageOf } from '../http/pagination.js'
export { AUTH, KRN } from '../errors.js'
export { PLATFORM_ORG } from '../db/database.js'
export { KERNEL_PERMISSIONS } from '../identity/permissions.js'
export { kernelEvent, type EmitInput } from '../events/outbox.js'
export type { Actor, AuditRecord } from '../audit/audit-log.js'
export type { Principal } from '../identity/principal.js'
export type { Api } from '../http/types.js'
