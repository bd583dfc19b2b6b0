import { Secret, TOTP } from 'otpauth'

/** RFC 6238 defaults every authenticator app understands: SHA-1, 6 digits, 30-second steps. */
const PERIOD = 30
const DIGITS = 6

/** A new random secret (160 bits, base32), and the otpauth:// URI an authenticator app scans. */
export function newTotpSecret(account: string): { secret: string; uri: string } {
  const secret = new Secret({ size: 20 })
  const totp = new TOTP({ issuer: 'Trellis', label: account, secret, period: PERIOD, digits: DIGITS })
  return { secret: secret.base32, uri: totp.toString() }
}

/**
 * The time step a code belongs to when it is valid at `now` (one step of clock drift either
 * way), or undefined. The caller refuses a step not later than the last one accepted.
 */
export function totpStep(secret: string, code: string, now: number = Date.now()): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secret),
    period: PERIOD,
    digits: DIGITS,
    timestamp: now,
    window: 1,
  })
  return delta === null ? undefined : TOTP.counter({ period: PERIOD, timestamp: now }) + delta
}
