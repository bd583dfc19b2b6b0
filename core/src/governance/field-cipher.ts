/**
 * One encrypted field value: AES-256-GCM under a tenant data key, as
 * `f1.<keyId>.<iv>.<tag>.<ciphertext>` (base64url). The key id beside the ciphertext tells which
 * of the tenant's keys decrypts it, so rotated keys keep older values readable. The associated
 * data binds the value to its tenant, plugin, collection, field and record: a ciphertext copied
 * anywhere else does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const PREFIX = 'f1'

/** Encrypts the JSON of `value`. */
export function sealValue(key: { id: string; key: Buffer }, value: unknown, aad: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key.key, iv)
  cipher.setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
  return [
    PREFIX,
    key.id,
    iv.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
    body.toString('base64url'),
  ].join('.')
}

/** The key id of an encrypted value, or undefined when it is not one. */
export function sealedKeyId(sealed: unknown): string | undefined {
  if (typeof sealed !== 'string') return undefined
  const parts = sealed.split('.')
  return parts.length === 5 && parts[0] === PREFIX ? parts[1] : undefined
}

/** Decrypts a value of {@link sealValue}; throws when the key, the associated data or the bytes differ. */
export function openValue(key: Buffer, sealed: string, aad: string): unknown {
  const [, , iv, tag, body] = sealed.split('.')
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'))
  decipher.setAAD(Buffer.from(aad))
  decipher.setAuthTag(Buffer.from(tag!, 'base64url'))
  const text = Buffer.concat([decipher.update(Buffer.from(body!, 'base64url')), decipher.final()]).toString('utf8')
  return JSON.parse(text)
}
