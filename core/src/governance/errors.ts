import { defineErrors } from '@trellis/plugin-sdk'

/** Data governance: classified fields, their encryption at rest and the tenant keys. */
export const GOV = defineErrors('GOV', {
  ENCRYPTED_FIELD_QUERY: {
    status: 400,
    title: 'Query not possible on an encrypted field',
    message: (d: { field: string; operation: string }) =>
      `"${d.field}" is encrypted at rest: ${d.operation} is not possible on it (only eq, ne and in, through its blind index)`,
  },
  RESERVED_FIELD: {
    status: 400,
    title: 'Reserved field name',
    message: (d: { field: string }) =>
      `"${d.field}" is reserved for the kernel's ciphertext in a collection with encrypted fields`,
  },
  FIELD_UNREADABLE: {
    status: 500,
    title: 'Encrypted field cannot be read',
    message: (d: { field: string }) =>
      `the stored value of "${d.field}" does not decrypt with this tenant's keys (it was altered or copied from elsewhere)`,
  },
  KEY_UNAVAILABLE: {
    status: 500,
    title: 'Tenant key unavailable',
    message: (d: { keyId: string }) => `tenant key ${d.keyId} is wrapped by a platform key this process does not hold`,
  },
  RETENTION_TARGET_UNKNOWN: {
    status: 404,
    title: 'Unknown retention target',
    message: (d: { target: string }) =>
      `"${d.target}" is neither a kernel record kind (invocation-logs, ai-interactions, webhook-deliveries, audit-payloads) nor a collection of an installed plugin (<plugin>/<collection>)`,
  },
  RETENTION_OUT_OF_BOUNDS: {
    status: 409,
    title: "Retention outside the platform's bounds",
    message: (d: { target: string; days: number; minDays: number | null; maxDays: number | null }) =>
      `${d.days} days for ${d.target} is outside what the platform allows (at least ${d.minDays ?? 1}, at most ${d.maxDays ?? 'unbounded'})`,
  },
  RETENTION_BOUNDS_INVALID: {
    status: 400,
    title: 'Retention bounds are inconsistent',
    message: (d: { reason: string }) => d.reason,
  },
  LEGAL_HOLD_NOT_FOUND: {
    status: 404,
    title: 'Legal hold not found',
    message: (d: { id: string }) => `no active legal hold ${d.id} in this tenant`,
  },
  LEGAL_HOLD_INVALID: {
    status: 400,
    title: 'Legal hold is malformed',
    message: (d: { reason: string }) => d.reason,
  },
  SUBJECT_KIND_UNKNOWN: {
    status: 404,
    title: 'No plugin declares this data subject',
    message: (d: { subjectKind: string }) =>
      `no installed plugin has a collection field that identifies a "${d.subjectKind}" (declare it with "subject" on the field)`,
  },
  ERASURE_NOT_FOUND: {
    status: 404,
    title: 'Erasure not found',
    message: (d: { id: string }) => `no erasure ${d.id} in this tenant`,
  },
  ARCHIVE_INVALID: {
    status: 400,
    title: 'Not a valid tenant archive',
    message: (d: { reason: string; line?: number }) =>
      d.line === undefined ? d.reason : `line ${d.line}: ${d.reason}`,
  },
  ARCHIVE_CHECKSUM: {
    status: 400,
    title: 'Tenant archive altered',
    message: (d: { section: string }) =>
      `the "${d.section}" section does not match the archive's manifest (count or sha256): it was altered or truncated`,
  },
  ARCHIVE_SECRETS_UNREADABLE: {
    status: 422,
    title: 'Sealed settings cannot be opened',
    message: (d: { plugin: string }) =>
      `the secret settings of ${d.plugin} were sealed by another platform key: restore on the platform that exported them (or one holding its TRELLIS_SECRET_KEY)`,
  },
  RESTORE_TARGET_NOT_EMPTY: {
    status: 409,
    title: 'Restore target is not a new tenant',
    message: (d: { reason: string }) => `a tenant archive is restored into a new, empty tenant only: ${d.reason}`,
  },
  EVIDENCE_RANGE: {
    status: 400,
    title: 'Invalid evidence period',
    message: (d: { reason: string }) => d.reason,
  },
  ACCESS_REVIEW_CLOSED: {
    status: 409,
    title: 'Access review already decided',
    message: (d: { id: string }) => `access review ${d.id} is already completed`,
  },
})
