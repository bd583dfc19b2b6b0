import type { Database } from '../../db/database.js'
import type { AuditSealer } from '../../audit/sealer.js'
import type { SecretBox } from '../../crypto/secret-box.js'
import { AUTH } from '../../errors.js'
import { auditedWrite } from '../../audit/audited-write.js'
import type { AuditRecord } from '../../audit/audit-log.js'
import { signInTx } from '../signin.js'
import type { LoginLimiter } from '../login-limiter.js'
import { factorOf, mfaRequiredIn, useRecoveryCode, useTotpCode } from './factors.js'

export interface SecondFactorDeps {
  db: Database
  secrets: SecretBox
  sealer: Pick<AuditSealer, 'nudge'>
  loginLimiter: LoginLimiter
}

export interface SecondFactorAttempt {
  userId: string
  orgId: string
  email: string
  ip: string
  totpCode?: string
  recoveryCode?: string
  meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>
}

/**
 * The second step of a password sign-in, after the password was right: an account with a
 * confirmed TOTP factor must give a current code (or a recovery code); in an organisation that
 * requires MFA an account without one must enrol first (its first code confirms the factor).
 * Throws what the caller must do next; a wrong code counts as a failed sign-in. Answers how the
 * second factor was given, for the sign-in's audit entry.
 */
export async function checkSecondFactor(
  deps: SecondFactorDeps,
  a: SecondFactorAttempt,
): Promise<'none' | 'totp' | 'recovery'> {
  const factor = await signInTx(deps.db, (tx) => factorOf(tx, a.userId))
  const required = await deps.db.inOrg(a.orgId, async (tx) => {
    // An organisation that signs in only through its identity provider refuses passwords outright.
    const [sso] = await tx.sql('select 1 from sso_providers where tenant_id = ?::uuid and enabled and sso_only', [
      a.orgId,
    ])
    if (sso) throw AUTH.SSO_REQUIRED()
    return mfaRequiredIn(tx, a.orgId)
  })
  if (!factor?.confirmed && !required) return 'none'
  if (!factor?.confirmed && (!factor || a.totpCode === undefined)) throw AUTH.MFA_ENROLMENT_REQUIRED()
  if (a.totpCode === undefined && a.recoveryCode === undefined) throw AUTH.MFA_REQUIRED()
  const how = a.totpCode !== undefined ? 'totp' : 'recovery'
  const ok = await signInTx(deps.db, (tx) =>
    how === 'totp'
      ? useTotpCode(tx, deps.secrets, a.userId, a.totpCode!)
      : useRecoveryCode(tx, a.userId, a.recoveryCode!),
  )
  if (!ok) {
    await deps.loginLimiter.failed(a.email, a.ip)
    await deps.db.inOrg(a.orgId, (tx) =>
      auditedWrite(tx, {
        auditOrg: a.orgId,
        audit: {
          ...a.meta,
          action: 'auth.mfa.failed',
          target: { kind: 'user', id: a.userId },
          data: { method: how },
        },
      }),
    )
    deps.sealer.nudge(a.orgId)
    throw AUTH.MFA_CODE_INVALID()
  }
  return how
}
