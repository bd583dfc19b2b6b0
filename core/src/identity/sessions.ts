import { createHash, randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'

export const REFRESH_TOKEN_TTL_DAYS = 30

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** A new session's row write (for composing into an audited write) and its refresh token (shown once; only its hash is stored). */
export function newSession(
  userId: string,
  orgId: string,
  familyId: string = uuidv7(),
): {
  write: { sql: string; params: unknown[] }
  session: { sessionId: string; familyId: string; refreshToken: string }
} {
  const refreshToken = `trr_${randomBytes(32).toString('base64url')}`
  const sessionId = uuidv7()
  return {
    write: {
      sql: `insert into sessions (id, user_id, tenant_id, token_hash, family_id, expires_at) values (?::uuid, ?::uuid, ?::uuid, ?, ?::uuid, now() + interval '${REFRESH_TOKEN_TTL_DAYS} days') returning id`,
      params: [sessionId, userId, orgId, hashToken(refreshToken), familyId],
    },
    session: { sessionId, familyId, refreshToken },
  }
}

/** Creates a refresh token (shown once) and stores only its hash. */
export async function createSession(
  tx: Tx,
  userId: string,
  orgId: string,
  familyId: string = uuidv7(),
): Promise<{ sessionId: string; familyId: string; refreshToken: string }> {
  const { write, session } = newSession(userId, orgId, familyId)
  await tx.sql(write.sql, write.params)
  return session
}
