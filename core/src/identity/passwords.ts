import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { AUTH, KRN } from '../errors.js'

// scrypt (RFC 7914) with OWASP's recommended cost: N=2^17, r=8, p=1 needs 128 MiB, so raise
// maxmem. Parameters are stored with each hash, so they can be raised later, and a hash made at
// another cost still verifies.
export const DEFAULT_PASSWORD_COST = 17
const R = 8
const P = 1
const KEYLEN = 32
const MAXMEM = 256 * 1024 * 1024

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEYLEN, { N: n, r, p, maxmem: MAXMEM }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  )
}

/**
 * log2 of scrypt's N for new hashes: TRELLIS_PASSWORD_COST, 17 (OWASP's recommendation) unless
 * set. Only test and development setups lower it (the suite signs in thousands of times, each at
 * 128 MiB and ~0.4 s of CPU); below 10 or above 20 is refused.
 */
export function passwordCost(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.TRELLIS_PASSWORD_COST?.trim()
  if (!value) return DEFAULT_PASSWORD_COST
  if (!/^\d+$/.test(value) || Number(value) < 10 || Number(value) > 20)
    throw KRN.CONFIG_INVALID({
      variable: 'TRELLIS_PASSWORD_COST',
      reason: `is log2 of scrypt's N, a whole number from 10 to 20 (default ${DEFAULT_PASSWORD_COST})`,
    })
  return Number(value)
}

export const MIN_PASSWORD_LENGTH = 12

export function assertPasswordStrength(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw AUTH.WEAK_PASSWORD()
}

/** `scrypt$N$r$p$salt$hash` */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const n = 2 ** passwordCost()
  const key = await derive(password, salt, n, R, P)
  return ['scrypt', n, R, P, salt.toString('base64url'), key.toString('base64url')].join('$')
}

// Verifying against this when the account does not exist keeps sign-in timing the same.
let decoy: Promise<string> | undefined

export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const target = stored ?? (await (decoy ??= hashPassword(randomBytes(16).toString('hex'))))
  const [alg, n, r, p, salt, hash] = target.split('$')
  if (alg !== 'scrypt' || !salt || !hash) return false
  const expected = Buffer.from(hash, 'base64url')
  const actual = await derive(password, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p))
  return stored != null && actual.length === expected.length && timingSafeEqual(actual, expected)
}
