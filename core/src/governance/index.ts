/**
 * Data governance: classified plugin fields encrypted at rest with per-tenant keys wrapped by the
 * platform key, their blind index, and the routes that rotate and re-wrap the keys.
 */
export { GOV } from './errors.js'
export { keyringFor, TenantKeyring, type ActiveKeys, type TenantKeyView } from './tenant-keys.js'
export { ProtectedFields, SEALED_PREFIX } from './protected-fields.js'
export { registerKeyRoutes, type KeyRouteDeps } from './key-routes.js'
export { platformKey } from './platform-key.js'
export { governedStore } from './governed-store.js'
export { registerExportRoutes, exportRouteDeps, type ExportRouteDeps, ARCHIVE_TYPE } from './export-routes.js'
export { exportTenant } from './export.js'
export { restoreTenant, type RestoreDeps, type RestoreReport } from './restore.js'
export { readArchive, verifyArchiveAudit, type TenantArchive, type ArchiveManifest } from './export-archive.js'
export { registerEvidenceRoutes, evidenceRouteDeps, signedEvidence, evidencePeriod } from './evidence-routes.js'
export { verifyEvidence, signEvidence, type SignedEvidence, type EvidenceVerdict } from './evidence-signing.js'
export type { EvidencePack } from './evidence.js'
export { AccessReviewJob, openAccessReview, staleAccess, STALE_DAYS } from './access-review.js'
export { registerAccessReviewRoutes, type AccessReviewRouteDeps } from './access-review-routes.js'
export { registerRetentionRoutes, type RetentionRouteDeps } from './retention-routes.js'
export { registerLegalHoldRoutes, type LegalHoldRouteDeps } from './legal-hold-routes.js'
export { registerErasureRoutes, type ErasureRouteDeps } from './erasure-routes.js'
export {
  RetentionJob,
  purgeTenant,
  listRetentionRuns,
  type RetentionRun,
  type RetentionJobOptions,
} from './retention-job.js'
export { KERNEL_TARGETS, ALL_COLLECTIONS } from './retention-targets.js'
export { eraseSubject, subjectFields, type ErasureReport } from './erasure.js'
