import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'

type KeyLike = import('node:crypto').webcrypto.CryptoKey
import type { Database } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { KRN } from '../errors.js'

interface KeyEntry {
  kid: string
  publicKey: KeyLike | Uint8Array
  privateKey?: KeyLike | Uint8Array
  createdAt: Date
  retiredAt: Date | null
}

const ALG = 'EdDSA'

/**
 * The access-token key ring: Ed25519 keys whose private halves are stored encrypted under the
 * kernel's secret key. The newest unretired key signs; every key not retired longer than a
 * token's lifetime still verifies, so rotation never signs anybody out. Other kernel processes
 * pick a new key up the first time they see its kid.
 */
export class SigningKeys {
  private keys = new Map<string, KeyEntry>()
  private lastReload = 0

  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  async load(): Promise<void> {
    await this.reload()
    if (!this.current()) await this.rotate()
  }

  current(): KeyEntry | undefined {
    let best: KeyEntry | undefined
    for (const k of this.keys.values())
      if (!k.retiredAt && k.privateKey && (!best || k.createdAt > best.createdAt)) best = k
    return best
  }

  /** The key for verifying a token with this kid, reloading (at most once a second) for kids we have not seen. */
  async verificationKey(kid: string): Promise<KeyLike | Uint8Array | undefined> {
    let key = this.keys.get(kid)
    if (!key && Date.now() - this.lastReload > 1000) {
      await this.reload()
      key = this.keys.get(kid)
    }
    return key?.publicKey
  }

  /** Creates a new signing key and retires the previous ones (they still verify until their tokens expire). */
  async rotate(): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true })
    const kid = `k${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
    const publicJwk = await exportJWK(publicKey)
    const privateJwk = await exportJWK(privateKey)
    await this.db.unscoped(async (tx) => {
      await tx.sql('update signing_keys set retired_at = now() where retired_at is null')
      await tx.sql('insert into signing_keys (kid, alg, public_jwk, private_key_enc) values (?, ?, ?::jsonb, ?)', [
        kid,
        ALG,
        JSON.stringify({ ...publicJwk, kid, alg: ALG }),
        this.box.seal(JSON.stringify(privateJwk), `signing-key:${kid}`),
      ])
    })
    await this.reload()
    return kid
  }

  /** Public keys as a JWKS, for anyone verifying our tokens. */
  jwks(): { keys: JWK[] } {
    return {
      keys: [...this.keys.values()]
        .filter((k) => !k.retiredAt || Date.now() - k.retiredAt.getTime() < 86_400_000)
        .map((k) => this.jwkCache.get(k.kid)!)
        .filter(Boolean),
    }
  }

  private jwkCache = new Map<string, JWK>()

  /** A key sealed under another TRELLIS_SECRET_KEY is a configuration mistake, said in one line. */
  private openPrivateKey(sealed: string, kid: string): string {
    try {
      return this.box.open(sealed, `signing-key:${kid}`)
    } catch {
      throw KRN.CONFIG_INVALID({
        variable: 'TRELLIS_SECRET_KEY',
        reason:
          'does not open the token signing keys stored in this database; start with the key the database was created with',
      })
    }
  }

  private async reload(): Promise<void> {
    this.lastReload = Date.now()
    const rows = await this.db.unscoped((tx) =>
      tx.sql<{ kid: string; public_jwk: JWK; private_key_enc: string; created_at: Date; retired_at: Date | null }>(
        `select kid, public_jwk, private_key_enc, created_at, retired_at from signing_keys where retired_at is null or retired_at > now() - interval '1 day'`,
      ),
    )
    const next = new Map<string, KeyEntry>()
    for (const row of rows) {
      const known = this.keys.get(row.kid)
      const privateJwk = JSON.parse(this.openPrivateKey(row.private_key_enc, row.kid)) as JWK
      next.set(row.kid, {
        kid: row.kid,
        publicKey: known?.publicKey ?? (await importJWK(row.public_jwk, ALG)),
        privateKey: known?.privateKey ?? (await importJWK(privateJwk, ALG)),
        createdAt: new Date(row.created_at),
        retiredAt: row.retired_at ? new Date(row.retired_at) : null,
      })
      this.jwkCache.set(row.kid, row.public_jwk)
    }
    this.keys = next
  }
}
