/**
 * The keyed blind index of an encrypted field: an HMAC-SHA256 of the value's canonical JSON
 * under the tenant's index key, scoped to plugin, collection and field. Equal values give equal
 * tokens within one tenant's field (so `eq`, `ne`, `in` and unique indexes work on it); without
 * the key a token says nothing about the value, and the same value gives unrelated tokens in
 * another tenant or another field.
 */
import { createHmac } from 'node:crypto'
import canonicalizeModule from 'canonicalize'

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

/** Prefix of every token, so a token is never mistaken for a plaintext value. */
export const TOKEN_PREFIX = 'bi1.'

/** The blind-index token of `value` (128 bits, base64url). */
export function blindToken(indexKey: Buffer, scope: string, value: unknown): string {
  const mac = createHmac('sha256', indexKey)
    .update(scope)
    .update('\u0000')
    .update(canonicalize(value) ?? 'null')
    .digest()
  return `${TOKEN_PREFIX}${mac.subarray(0, 16).toString('base64url')}`
}
