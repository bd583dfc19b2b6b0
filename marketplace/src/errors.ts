import { defineErrors } from '@trellis/plugin-sdk'

/**
 * Marketplace errors: publishers (scopes, signing keys), publishing (upload, safe unpack, the
 * synchronous checks), automated checks, review and listings. Every code is in docs/errors.md.
 */
export const MKT = defineErrors('MKT', {
  // Publishers
  NOT_A_PUBLISHER: {
    status: 403,
    title: 'Only partners publish',
    message: () =>
      'scopes, signing keys and plugin versions belong to partners; sign in as a partner member with plugins.publish',
  },
  SCOPE_TAKEN: {
    status: 409,
    title: 'Scope already claimed',
    message: (d: { scope: string }) => `${d.scope} is already claimed`,
  },
  SCOPE_RESERVED: {
    status: 403,
    title: 'Scope reserved',
    message: (d: { scope: string }) => `${d.scope} is reserved; a platform admin can assign it to a partner`,
  },
  SCOPE_CONFUSABLE: {
    status: 409,
    title: 'Scope looks like another',
    message: (d: { scope: string; imitates: string }) =>
      `${d.scope} looks like ${d.imitates}; choose a scope that cannot be mistaken for it (a platform admin can assign it if it is genuinely yours)`,
  },
  SCOPE_NOT_OWNED: {
    status: 403,
    title: 'Scope not owned',
    message: (d: { scope: string }) =>
      `your organisation does not own the scope ${d.scope}; claim it first with POST /v1/marketplace/scopes`,
  },
  KEY_INVALID: {
    status: 400,
    title: 'Invalid public key',
    message: (d: { reason: string }) => `the public key is not usable: ${d.reason}`,
  },
  KEY_EXISTS: {
    status: 409,
    title: 'Key already registered',
    message: (d: { fingerprint: string }) => `the key ${d.fingerprint} is already registered`,
  },
  KEY_NOT_FOUND: {
    status: 404,
    title: 'Signing key not found',
    message: () => 'no signing key of your organisation has that id',
  },
  KEY_LIMIT: {
    status: 409,
    title: 'Too many signing keys',
    message: (d: { limit: number }) => `a publisher has at most ${d.limit} active signing keys; revoke one first`,
  },
  // Upload and package
  UPLOAD_INVALID: { status: 400, title: 'Invalid upload', message: (d: { reason: string }) => d.reason },
  PACKAGE_TOO_LARGE: {
    status: 413,
    title: 'Package too large',
    message: (d: { limit: number }) => `the package exceeds ${d.limit} bytes`,
  },
  PACKAGE_CORRUPT: {
    status: 422,
    title: 'Package is not a valid gzipped tarball',
    message: (d: { reason: string }) => `the package cannot be read: ${d.reason}`,
  },
  UNPACKED_TOO_LARGE: {
    status: 413,
    title: 'Package unpacks too large',
    message: (d: { limit: number }) => `the package unpacks to more than ${d.limit} bytes`,
  },
  COMPRESSION_RATIO: {
    status: 413,
    title: 'Compression ratio too high',
    message: (d: { ratio: number; limit: number }) =>
      `the package expands ${d.ratio}× when unpacked; the limit is ${d.limit}×`,
  },
  TOO_MANY_FILES: {
    status: 422,
    title: 'Too many files in package',
    message: (d: { limit: number }) => `the package holds more than ${d.limit} entries`,
  },
  UNSAFE_ENTRY: {
    status: 422,
    title: 'Unsafe archive entry',
    message: (d: { path: string; reason: string }) => `archive entry "${d.path}" is refused: ${d.reason}`,
  },
  PACKAGE_CONTENTS: {
    status: 422,
    title: 'Package contents invalid',
    message: (d: { reason: string; expected: readonly string[] }) =>
      `${d.reason}; a package holds exactly ${d.expected.join(', ')}`,
  },
  CHECKSUMS_MISMATCH: {
    status: 422,
    title: 'SHA256SUMS does not match',
    message: (d: { path: string }) => `SHA256SUMS does not match the package's ${d.path}`,
  },
  SIGNATURE_INVALID: {
    status: 422,
    title: 'Signature invalid',
    message: () =>
      'the signature does not verify over the uploaded bytes with any active signing key of this publisher',
  },
  KEY_REVOKED: {
    status: 422,
    title: 'Signing key revoked',
    message: (d: { fingerprint: string }) =>
      `the package is signed with ${d.fingerprint}, which has been revoked; sign it with an active key`,
  },
  MANIFEST_INVALID: {
    status: 422,
    title: 'Manifest invalid',
    message: (d: { reason: string; problems?: Array<{ pointer: string; message: string }> }) => d.reason,
  },
  NAME_MISMATCH: {
    status: 422,
    title: 'Manifest name does not match',
    message: (d: { manifest: string; url: string }) =>
      `the manifest names ${d.manifest} but the upload is for ${d.url}`,
  },
  VERSION_NOT_MONOTONIC: {
    status: 409,
    title: 'Version not greater than the last',
    message: (d: { version: string; last: string }) => `${d.version} is not greater than ${d.last}, already published`,
  },
  ENGINE_UNSATISFIED: {
    status: 422,
    title: 'Kernel version not supported',
    message: (d: { range: string; kernel: string }) =>
      `engines.trellis ${d.range} is not satisfied by this kernel (${d.kernel})`,
  },
  CAPABILITY_INTERNAL_HOST: {
    status: 422,
    title: 'Fetch capability names an internal host',
    message: (d: { hosts: Array<{ capability: string; host: string; reason: string }> }) =>
      `http:fetch may only name public hosts: ${d.hosts.map((h) => `${h.host} (${h.reason})`).join(', ')}`,
  },
  SUBSCRIPTION_RESERVED: {
    status: 422,
    title: 'Subscription to a reserved event namespace',
    message: (d: { patterns: string[] }) =>
      `plugins do not subscribe to the platform's events: ${d.patterns.join(', ')}`,
  },
  NUL_BYTE: {
    status: 422,
    title: 'NUL byte in the upload',
    message: (d: { where: string }) => `${d.where} contains a NUL byte`,
  },
  NOT_UTF8: {
    status: 422,
    title: 'Not valid UTF-8',
    message: (d: { where: string }) =>
      `${d.where} is not valid UTF-8; the stored text would differ from the signed bytes`,
  },
  // Versions
  VERSION_NOT_FOUND: {
    status: 404,
    title: 'Plugin version not found',
    message: (d: { name: string; version?: string }) => `${d.name}${d.version ? `@${d.version}` : ''} was not found`,
  },
})
