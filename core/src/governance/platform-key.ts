/**
 * The platform key that wraps every tenant key: derived from TRELLIS_SECRET_KEY with HKDF, so
 * it is never the key that seals other secrets. Its id (a fingerprint) is stored beside each
 * wrapped key, so a process holding the current and the previous secret key can unwrap both
 * while keys are re-wrapped (docs/governance.md, "Rotating the platform key").
 */
import { createHash, hkdfSync } from 'node:crypto'
import { SecretBox } from '../crypto/secret-box.js'

/** One platform key-encryption key. */
export interface PlatformKey {
  /** Fingerprint stored beside what it wraps. */
  id: string
  box: SecretBox
}

/** The key-encryption key of a TRELLIS_SECRET_KEY. */
export function platformKey(secretKey: Buffer): PlatformKey {
  const key = Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), 'trellis/tenant-keys/v1', 32))
  const id = createHash('sha256').update(key).digest('base64url').slice(0, 12)
  return { id, box: new SecretBox(key) }
}

/** Wraps a raw key under `kek`, bound to `purpose` (tenant, kind and key id). */
export function wrapKey(kek: PlatformKey, raw: Buffer, purpose: string): string {
  return kek.box.seal(raw.toString('base64url'), purpose)
}

/** Unwraps a key wrapped by {@link wrapKey} under the same purpose; throws when either differs. */
export function unwrapKey(kek: PlatformKey, wrapped: string, purpose: string): Buffer {
  return Buffer.from(kek.box.open(wrapped, purpose), 'base64url')
}
