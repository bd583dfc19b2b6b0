import { randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import { AUTH } from '../errors.js'
import { hashToken } from './sessions.js'

/** How long a password reset link works. */
export const PASSWORD_RESET_TTL_MINUTES = 30

const TOKEN = /^trp_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/

/**
 * In a `signInTx`: for an active account with exactly this e-mail, a new reset token (any earlier
 * unused one stops working); only its hash is stored. Undefined when no such account exists.
 */
export async function requestPasswordReset(
  tx: Tx,
  email: string,
): Promise<{ userId: string; token: string } | undefined> {
  const id = uuidv7()
  const secret = randomBytes(32).toString('base64url')
  const [row] = await tx.sql<{ user_id: string }>(
    'select user_id from trellis_password_reset_request(?, ?::uuid, ?, ?)',
    [email, id, hashToken(secret), PASSWORD_RESET_TTL_MINUTES],
  )
  return row ? { userId: row.user_id, token: `trp_${id.replace(/-/g, '')}_${secret}` } : undefined
}

/**
 * In a `signInTx`: spends the token (once, unexpired), sets the new password hash, and ends every
 * session of the account. Returns the account and the session families ended, or throws.
 */
export async function completePasswordReset(
  tx: Tx,
  token: string,
  passwordHash: string,
): Promise<{ userId: string; ended: Array<{ tenant_id: string; family_id: string }> }> {
  const m = TOKEN.exec(token)
  if (!m) throw AUTH.RESET_TOKEN_INVALID()
  const h = m[1]!
  const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
  const [row] = await tx
    .sql<{ user_id: string }>('select user_id from trellis_password_reset_complete(?::uuid, ?, ?)', [
      id,
      hashToken(m[2]!),
      passwordHash,
    ])
    .catch((err: { code?: string }) => {
      // The account was disabled after the link was sent.
      if (err.code === 'P0001') throw AUTH.ACCOUNT_DISABLED()
      throw err
    })
  if (!row) throw AUTH.RESET_TOKEN_INVALID()
  const ended = await endSessionsOf(tx, row.user_id)
  return { userId: row.user_id, ended }
}

/**
 * In a `signInTx`: ends every session of an account in every organisation, except the family
 * `keep` (the session asking, when it changes its own password). Returns what was ended, for
 * `announceRevoked` per organisation.
 */
export async function endSessionsOf(
  tx: Tx,
  userId: string,
  keep?: string,
): Promise<Array<{ tenant_id: string; family_id: string }>> {
  return tx.sql<{ tenant_id: string; family_id: string }>(
    `update sessions set revoked_at = now() where user_id = ?::uuid and revoked_at is null${keep ? ' and family_id <> ?::uuid' : ''} returning tenant_id, family_id`,
    keep ? [userId, keep] : [userId],
  )
}
