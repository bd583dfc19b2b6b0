import { createHash, randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'

export const REFRESH_TOKEN_TTL_DAYS = 30

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Creates a refresh token (shown once) and stores only its hash. */
export async function createSession(
  tx: Tx,
  userId: string,
  orgId: string,
  familyId: string = uuidv7(),
): Promise<{ sessionId: string; familyId: string; refreshToken: string }> {
  const refreshToken = `trr_${randomBytes(32).toString('base64url')}`
  const sessionId = uuidv7()
  await tx.sql(
    `insert into sessions (id, user_id, tenant_id, token_hash, family_id, expires_at) values (?::uuid, ?::uuid, ?::uuid, ?, ?::uuid, now() + interval '${REFRESH_TOKEN_TTL_DAYS} days')`,
    [sessionId, userId, orgId, hashToken(refreshToken), familyId],
  )
  return { sessionId, familyId, refreshToken }
}
