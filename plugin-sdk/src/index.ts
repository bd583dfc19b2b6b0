/**
 * `@trellis/plugin-sdk`: everything a plugin author, the marketplace and the kernel import.
 * Inside a plugin bundle only the isolate-safe subset (./plugin.ts) is available.
 */
export * from './plugin.js'
export {
  validateManifest,
  lintPlugin,
  manifestSchema,
  pointerSegment,
  compileJsonSchema,
  validateHostCall,
  SIZE_LIMITS,
} from './manifest.js'
export { HOST_OP_SCHEMAS } from './host-op-schemas.js'
export { describeSchemaProblem, schemaProblemOf } from './schema-problems.js'
export { CsvSyntaxError, parseCsv, parseCsvRecords } from './csv.js'
export type { CsvOptions } from './csv.js'
export type { SchemaIssue, SchemaProblem } from './schema-problems.js'
export {
  CLASSIFICATIONS,
  ENCRYPTED_FIELD_OPERATORS,
  classificationProblems,
  classificationSummary,
  encryptedFields,
  encryptedQueryRefusal,
  fieldClassifications,
  isClassification,
  isEncryptedClassification,
  SUBJECT_KIND,
} from './classification.js'
export type {
  Classification,
  ClassificationProblem,
  ClassificationSummary,
  EncryptedQueryRefusal,
} from './classification.js'
export { renderPrompt, promptSlots } from './prompts.js'
export type { ManifestPrompt } from './prompts.js'
export {
  internalFetchTarget,
  internalFetchTargets,
  parseIpv4,
  subscriptionFindings,
  ownEventNamespace,
  RESERVED_EVENT_NAMESPACES,
  KERNEL_SUBSCRIBABLE_NAMESPACES,
} from './capability-policy.js'
export type { InternalFetchTarget, SubscriptionFinding } from './capability-policy.js'
export type { LintInput, ManifestIssue, ManifestValidation } from './manifest.js'
export { createTestHost } from './testing.js'
export type { TestHost, TestHostOptions, RecordedHostCall } from './testing.js'
export { buildPlugin, readEntries } from './build.js'
export type { BuildOptions, BuildResult } from './build.js'
export {
  PACKAGE_FILES,
  packageFileName,
  sha256sums,
  keyFingerprint,
  verifyPackageSignature,
  generateSigningKeys,
  packPlugin,
} from './pack.js'
export type { PackResult, SigningKeyFiles } from './pack.js'
export type {
  DevBundle,
  DevEvent,
  DevInvocation,
  DevKernel,
  DevKernelOptions,
  DevResponse,
  PlatformImport,
  StartDevKernel,
} from './dev-kernel.js'
export { loadDevKernel } from './dev-kernel.js'
