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
})
