import { randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../../db/database.js'
import type { SecretBox } from '../../crypto/secret-box.js'
import { hashToken } from '../sessions.js'
import { newTotpSecret, totpStep } from './totp.js'

/** How many single-use recovery codes an enrolment hands out. */
export const RECOVERY_CODES = 10

const sealedFor = (userId: string) => `mfa-totp:${userId}`

export interface Factor {
  confirmed: boolean
}

/** The account's TOTP factor, if any (in a `signInTx`). */
export async function factorOf(tx: Tx, userId: string): Promise<Factor | undefined> {
  const [row] = await tx.sql<{ confirmed_at: Date | null }>(
    'select confirmed_at from mfa_factors where user_id = ?::uuid',
    [userId],
  )
  return row ? { confirmed: row.confirmed_at !== null } : undefined
}

/**
 * In a `signInTx`: a new, unconfirmed TOTP secret for the account (replacing an unconfirmed
 * one; refused by the caller when a confirmed one exists) and fresh recovery codes. The secret
 * and codes are answered once; the secret is stored sealed, the codes hashed.
 */
export async function enrolTotp(
  tx: Tx,
  box: SecretBox,
  userId: string,
  account: string,
): Promise<{ secret: string; uri: string; recoveryCodes: string[] }> {
  const { secret, uri } = newTotpSecret(account)
  await tx.sql(
    `insert into mfa_factors (user_id, secret_sealed) values (?::uuid, ?)
     on conflict (user_id) do update set secret_sealed = excluded.secret_sealed, created_at = now(), last_step = null
     where mfa_factors.confirmed_at is null`,
    [userId, box.seal(secret, sealedFor(userId))],
  )
  await tx.sql('delete from mfa_recovery_codes where user_id = ?::uuid', [userId])
  const recoveryCodes: string[] = []
  for (let i = 0; i < RECOVERY_CODES; i++) {
    const code = randomBytes(10).toString('hex').match(/.{5}/g)!.join('-')
    recoveryCodes.push(code)
    await tx.sql('insert into mfa_recovery_codes (id, user_id, code_hash) values (?::uuid, ?::uuid, ?)', [
      uuidv7(),
      userId,
      hashToken(code),
    ])
  }
  return { secret, uri, recoveryCodes }
}

/**
 * In a `signInTx`: accepts a TOTP code once — its time step must be later than the last one
 * accepted, set atomically — and confirms a pending factor with it. False for a wrong, stale or
 * replayed code, or when the account has no factor.
 */
export async function useTotpCode(
  tx: Tx,
  box: SecretBox,
  userId: string,
  code: string,
  now = Date.now(),
): Promise<boolean> {
  const [row] = await tx.sql<{ secret_sealed: string }>(
    'select secret_sealed from mfa_factors where user_id = ?::uuid for update',
    [userId],
  )
  if (!row) return false
  const step = totpStep(box.open(row.secret_sealed, sealedFor(userId)), code, now)
  if (step === undefined) return false
  const used = await tx.sql(
    `update mfa_factors set last_step = ?, confirmed_at = coalesce(confirmed_at, now())
      where user_id = ?::uuid and (last_step is null or last_step < ?) returning user_id`,
    [step, userId, step],
  )
  return used.length === 1
}

/** In a `signInTx`: spends one recovery code of an account with a confirmed factor; false when unknown or used. */
export async function useRecoveryCode(tx: Tx, userId: string, code: string): Promise<boolean> {
  const used = await tx.sql(
    `update mfa_recovery_codes set used_at = now()
      where user_id = ?::uuid and code_hash = ? and used_at is null
        and exists (select 1 from mfa_factors f where f.user_id = ?::uuid and f.confirmed_at is not null)
      returning id`,
    [userId, hashToken(code.trim().toLowerCase()), userId],
  )
  return used.length === 1
}

/** In a `signInTx`: removes the account's factor and recovery codes. */
export async function removeTotp(tx: Tx, userId: string): Promise<void> {
  await tx.sql('delete from mfa_recovery_codes where user_id = ?::uuid', [userId])
  await tx.sql('delete from mfa_factors where user_id = ?::uuid', [userId])
}

/** Whether the organisation requires a second factor for password sign-ins (in its own transaction). */
export async function mfaRequiredIn(tx: Tx, orgId: string): Promise<boolean> {
  const [row] = await tx.sql<{ mfa_required: boolean }>(
    'select mfa_required from org_identity_policies where tenant_id = ?::uuid',
    [orgId],
  )
  return row?.mfa_required ?? false
}
