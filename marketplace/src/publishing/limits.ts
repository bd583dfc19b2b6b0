/**
 * Publishing limits (documented in docs/plugin-authoring.md, "Publishing"). The package limits
 * match the SDK's own (`SIZE_LIMITS`), so what `trellis-plugin pack` accepts is publishable.
 */
import { SIZE_LIMITS } from '@trellis/plugin-sdk'

export const PUBLISH_LIMITS = Object.freeze({
  /** The uploaded .tgz. */
  uploadBytes: SIZE_LIMITS.packageBytes,
  /** Sum of the files once gunzipped (the tar stream itself). */
  unpackedBytes: SIZE_LIMITS.manifestBytes + SIZE_LIMITS.bundleBytes + SIZE_LIMITS.sourceMapBytes + 64 * 1024,
  /** Unpacked ÷ packed: JavaScript and source maps compress 3–10×; a gzip bomb, hundreds or thousands. */
  compressionRatio: 50,
  /** Archive entries (a package has exactly four). */
  files: 16,
  /** The signature field (base64 of 64 bytes, with room for whitespace). */
  signatureChars: 200,
  /** The changelog field. */
  changelogChars: 20_000,
  /** Active signing keys per publisher. */
  activeKeys: 20,
})

/** Scopes no partner may claim for itself (a platform admin may assign them). */
export const RESERVED_SCOPES: readonly string[] = Object.freeze(['@trellis', '@local', '@platform', '@marketplace'])
