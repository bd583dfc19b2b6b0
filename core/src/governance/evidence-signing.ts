/**
 * Signing and verifying evidence packs (ADR 0076): a compact JWS (EdDSA, the platform's token
 * signing key ring — the key that also signs audit checkpoints) over the SHA-256 of the pack's
 * RFC 8785 canonical JSON. Anyone holding the platform's public keys (`/.well-known/jwks.json`, or
 * every key ever used, as the verify endpoint and command read them) can check a pack later; a
 * changed byte in any section changes the digest.
 */
import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import { CompactSign, compactVerify, importJWK, type JWK } from 'jose'
import type { SigningKeys } from '../identity/signing-keys.js'
import { EVIDENCE_FORMAT, type EvidencePack } from './evidence.js'

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

/** The JWS `typ` of an evidence signature: no access token or checkpoint carries it. */
export const EVIDENCE_TYP = 'trellis-evidence-pack'

/** A pack with its signature. */
export interface SignedEvidence {
  pack: EvidencePack
  signature: { alg: 'EdDSA'; kid: string; sha256: string; jws: string }
}

/** SHA-256 (hex) of the pack's canonical JSON. */
export function evidenceDigest(pack: unknown): string {
  return createHash('sha256')
    .update(canonicalize(pack) ?? '')
    .digest('hex')
}

/** Signs a pack with the platform's current signing key. */
export async function signEvidence(keys: SigningKeys, pack: EvidencePack): Promise<SignedEvidence> {
  const key = keys.current()
  if (!key?.privateKey) throw new Error('no signing key loaded')
  const sha256 = evidenceDigest(pack)
  const claim = { sha256, scope: pack.scope.orgId, from: pack.period.from, to: pack.period.to, at: pack.generatedAt }
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(claim)))
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: EVIDENCE_TYP })
    .sign(key.privateKey)
  return { pack, signature: { alg: 'EdDSA', kid: key.kid, sha256, jws } }
}

export type EvidenceVerdict =
  | { valid: true; kid: string; sha256: string; scope: string; generatedAt: string }
  | { valid: false; reason: string }

/**
 * Checks a signed pack: the signature verifies under a platform key, it is an evidence signature,
 * and the pack as given hashes to what was signed (so no section was changed, added or removed).
 */
export async function verifyEvidence(input: unknown, keys: Map<string, JWK>): Promise<EvidenceVerdict> {
  const signed = input as Partial<SignedEvidence> | null
  if (!signed || typeof signed !== 'object' || typeof signed.pack !== 'object' || signed.pack === null)
    return { valid: false, reason: 'not a signed evidence pack (no pack)' }
  if ((signed.pack as { format?: unknown }).format !== EVIDENCE_FORMAT)
    return { valid: false, reason: `not a ${EVIDENCE_FORMAT}` }
  const jws = signed.signature?.jws
  if (typeof jws !== 'string') return { valid: false, reason: 'no signature' }
  let claim: { sha256?: unknown; scope?: unknown; at?: unknown }
  let kid: string
  try {
    const { payload, protectedHeader } = await compactVerify(jws, async (header) => {
      const jwk = header.kid ? keys.get(header.kid) : undefined
      if (!jwk) throw new Error(`signed by an unknown key ${header.kid ?? '(none)'}`)
      return importJWK(jwk, 'EdDSA')
    })
    if (protectedHeader.typ !== EVIDENCE_TYP || protectedHeader.alg !== 'EdDSA')
      return { valid: false, reason: 'not an evidence signature' }
    claim = JSON.parse(new TextDecoder().decode(payload))
    kid = protectedHeader.kid!
  } catch (err) {
    return { valid: false, reason: `the signature does not verify (${(err as Error).message})` }
  }
  const sha256 = evidenceDigest(signed.pack)
  if (claim.sha256 !== sha256) return { valid: false, reason: 'the pack is not what was signed: it was altered' }
  const pack = signed.pack as EvidencePack
  if (claim.scope !== pack.scope?.orgId || claim.at !== pack.generatedAt)
    return { valid: false, reason: 'the signed scope or time is not the pack’s' }
  return { valid: true, kid, sha256, scope: pack.scope.orgId, generatedAt: pack.generatedAt }
}
