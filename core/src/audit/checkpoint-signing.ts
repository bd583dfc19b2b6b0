import { CompactSign, compactVerify, importJWK, type JWK } from 'jose'
import type { Database } from '../db/database.js'
import type { SigningKeys } from '../identity/signing-keys.js'

/** The JWS `typ` of a checkpoint: an access token never carries it, a checkpoint always does. */
export const CHECKPOINT_TYP = 'trellis-audit-checkpoint'

/** What a checkpoint vouches for: an organisation's chain had this entry at its head at `at`. */
export interface CheckpointClaim {
  tenantId: string
  seq: string
  hash: string
  at: string
}

/** One published checkpoint: the claim in clear, and the signed claim (`jws`) that alone is trusted. */
export interface Checkpoint extends CheckpointClaim {
  /** The platform signing key that signed it (kept, retired or not, so old checkpoints still verify). */
  kid: string
  /** Compact JWS (EdDSA) over the claim. */
  jws: string
}

/** Signs a claim with the platform's current signing key (the key ring `trellis keys rotate` rotates). */
export async function signCheckpoint(keys: SigningKeys, claim: CheckpointClaim): Promise<Checkpoint> {
  const key = keys.current()
  if (!key?.privateKey) throw new Error('no signing key loaded')
  const payload = { tenantId: claim.tenantId, seq: claim.seq, hash: claim.hash, at: claim.at }
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: CHECKPOINT_TYP })
    .sign(key.privateKey)
  return { ...payload, kid: key.kid, jws }
}

/**
 * Public keys by kid, every key the platform ever signed with: checkpoints outlive the one-day
 * window in which retired keys still verify access tokens.
 */
export async function checkpointKeys(db: Database): Promise<Map<string, JWK>> {
  const rows = await db.unscoped((tx) =>
    tx.sql<{ kid: string; public_jwk: JWK }>('select kid, public_jwk from signing_keys'),
  )
  return new Map(rows.map((r) => [r.kid, r.public_jwk]))
}

/**
 * Checks a checkpoint's signature and that its clear fields say what was signed. Returns the
 * signed claim, or why the checkpoint cannot be trusted.
 */
export async function verifyCheckpoint(
  cp: Partial<Checkpoint>,
  keys: Map<string, JWK>,
): Promise<{ ok: true; claim: CheckpointClaim } | { ok: false; reason: string }> {
  if (typeof cp.jws !== 'string') return { ok: false, reason: 'no signature' }
  try {
    const { payload, protectedHeader } = await compactVerify(cp.jws, async (header) => {
      const jwk = header.kid ? keys.get(header.kid) : undefined
      if (!jwk) throw new Error(`signed by an unknown key ${header.kid ?? '(none)'}`)
      return importJWK(jwk, 'EdDSA')
    })
    if (protectedHeader.typ !== CHECKPOINT_TYP || protectedHeader.alg !== 'EdDSA')
      return { ok: false, reason: 'not a checkpoint signature' }
    const claim = JSON.parse(new TextDecoder().decode(payload)) as CheckpointClaim
    if (
      typeof claim.tenantId !== 'string' ||
      typeof claim.seq !== 'string' ||
      !/^\d+$/.test(claim.seq) ||
      typeof claim.hash !== 'string' ||
      typeof claim.at !== 'string'
    )
      return { ok: false, reason: 'the signed claim is malformed' }
    for (const field of ['tenantId', 'seq', 'hash', 'at'] as const) {
      if (cp[field] !== undefined && cp[field] !== claim[field])
        return { ok: false, reason: `its ${field} is not what was signed` }
    }
    if (cp.kid !== undefined && cp.kid !== protectedHeader.kid)
      return { ok: false, reason: 'its kid is not the key that signed it' }
    return { ok: true, claim }
  } catch (err) {
    return { ok: false, reason: `the signature does not verify (${(err as Error).message})` }
  }
}
