/**
 * Per-tenant keys of encrypted fields (envelope encryption): a data key that encrypts values and
 * an index key for the blind index, each stored in `tenant_keys` wrapped by the platform key.
 *
 * The active keys are read in the transaction that uses them, and kept for {@link ACTIVE_TTL_MS}
 * per tenant only when that transaction found them already there (committed) — so a key created
 * or rotated in a transaction that rolls back is never used by another, and a rotation committed
 * in another process takes effect here within that time (values written meanwhile under the
 * retired key stay readable: retired keys are never deleted). Unwrapped keys are cached by
 * (tenant, key id); ids are random and never reused. With both caches warm, reading and writing
 * encrypted fields costs no extra round trip.
 */
import { randomBytes } from 'node:crypto'
import type { Tx } from '../db/database.js'
import { GOV } from './errors.js'
import { platformKey, unwrapKey, wrapKey, type PlatformKey } from './platform-key.js'

/** The keys of one tenant a transaction encrypts and indexes with. */
export interface ActiveKeys {
  tenantId: string
  data: { id: string; key: Buffer }
  index: Buffer
}

/** One tenant key as listed (never its material). */
export interface TenantKeyView {
  id: string
  kind: 'data' | 'index'
  status: 'active' | 'retired'
  platformKey: string
  createdAt: string
  retiredAt: string | null
}

interface KeyRow {
  tenant: string
  id: string | null
  kind: 'data' | 'index' | null
  wrapped: string | null
  platform_key: string | null
}

const MAX_CACHED = 10_000

/** How long a process keeps using a tenant's active keys without reading them again (ms). */
export const ACTIVE_TTL_MS = 5000

const purpose = (tenantId: string, kind: string, id: string) => `trellis.tenant-key:${tenantId}:${kind}:${id}`

/**
 * The tenant keyring of one process.
 *
 * @example
 * ```ts
 * const keyring = new TenantKeyring(config.secretKey)
 * await db.inOrg(tenantId, async (tx) => {
 *   const keys = await keyring.active(tx) // created on first use
 * })
 * ```
 */
export class TenantKeyring {
  private readonly current: PlatformKey
  private readonly known: Map<string, PlatformKey>
  private readonly cache = new Map<string, Buffer>()
  private readonly perTx = new WeakMap<Tx, Promise<ActiveKeys>>()
  private readonly activeByTenant = new Map<string, { keys: ActiveKeys; until: number }>()
  /** Transactions that created or rotated keys: what they read is not committed yet. */
  private readonly wroteKeys = new WeakSet<Tx>()

  /** `previousSecretKeys`: earlier TRELLIS_SECRET_KEY values whose wrapped keys are still readable. */
  constructor(secretKey: Buffer, previousSecretKeys: Buffer[] = []) {
    this.current = platformKey(secretKey)
    this.known = new Map([this.current, ...previousSecretKeys.map(platformKey)].map((k) => [k.id, k]))
  }

  /** Id of the platform key new wraps use. */
  get platformKeyId(): string {
    return this.current.id
  }

  /** The tenant a transaction acts for, when it acts for exactly one (no query). */
  tenantOf(tx: Tx): string | undefined {
    return tx.orgs.size === 1 ? tx.orgs.values().next().value : undefined
  }

  /** The transaction's tenant's active keys, created (in the transaction) when it has none yet. */
  active(tx: Tx): Promise<ActiveKeys> {
    let p = this.perTx.get(tx)
    if (!p) {
      const tenant = this.tenantOf(tx)
      const known = tenant === undefined ? undefined : this.activeByTenant.get(tenant)
      p = known && known.until > Date.now() ? Promise.resolve(known.keys) : this.load(tx)
      this.perTx.set(tx, p)
      p.catch(() => this.perTx.delete(tx))
    }
    return p
  }

  /** The data key `id` of the transaction's tenant, or undefined when it has none by that id. */
  async dataKey(tx: Tx, tenantId: string, id: string): Promise<Buffer | undefined> {
    const hit = this.cache.get(`${tenantId}:${id}`)
    if (hit) return hit
    const [row] = await tx.sql<KeyRow>(
      `select trellis_current_tenant()::text as tenant, id, kind, wrapped, platform_key from tenant_keys where id = ? and kind = 'data'`,
      [id],
    )
    if (!row || row.tenant !== tenantId) return undefined
    return this.unwrap(row)
  }

  /**
   * Retires the active data key and makes a new one: new values are encrypted with it, older
   * ones stay readable with theirs (and are re-encrypted when next written). No value is
   * rewritten here, so rotation takes one short transaction and no downtime.
   */
  async rotate(tx: Tx): Promise<{ id: string; retired: string[] }> {
    const { tenantId } = await this.active(tx)
    this.wroteKeys.add(tx)
    this.activeByTenant.delete(tenantId)
    const retired = await tx.sql<{ id: string }>(
      `update tenant_keys set status = 'retired', retired_at = now() where kind = 'data' and status = 'active' returning id`,
    )
    const id = newKeyId()
    await tx.sql(
      `insert into tenant_keys (id, kind, status, wrapped, platform_key) values (?, 'data', 'active', ?, ?)`,
      [id, wrapKey(this.current, randomBytes(32), purpose(tenantId, 'data', id)), this.current.id],
    )
    this.perTx.delete(tx)
    return { id, retired: retired.map((r) => r.id) }
  }

  /**
   * Re-wraps every key of the transaction's tenant that another platform key wraps under the
   * current one (after TRELLIS_SECRET_KEY changed, the old value given as a previous key).
   * The key material does not change, so no value is re-encrypted. Returns how many it re-wrapped.
   */
  async rewrap(tx: Tx): Promise<number> {
    const rows = await tx.sql<KeyRow>(
      `select trellis_current_tenant()::text as tenant, id, kind, wrapped, platform_key from tenant_keys where platform_key <> ? for update`,
      [this.current.id],
    )
    for (const row of rows) {
      const raw = this.unwrap(row)
      await tx.sql('update tenant_keys set wrapped = ?, platform_key = ? where id = ?', [
        wrapKey(this.current, raw, purpose(row.tenant, row.kind!, row.id!)),
        this.current.id,
        row.id,
      ])
    }
    return rows.length
  }

  /** The tenant's keys, newest first (no key material). */
  async list(tx: Tx): Promise<TenantKeyView[]> {
    const rows = await tx.sql<{
      id: string
      kind: 'data' | 'index'
      status: 'active' | 'retired'
      platform_key: string
      created_at: Date | string
      retired_at: Date | string | null
    }>('select id, kind, status, platform_key, created_at, retired_at from tenant_keys order by created_at desc, id')
    const iso = (t: Date | string) => new Date(t).toISOString()
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      status: r.status,
      platformKey: r.platform_key,
      createdAt: iso(r.created_at),
      retiredAt: r.retired_at === null ? null : iso(r.retired_at),
    }))
  }

  private async load(tx: Tx): Promise<ActiveKeys> {
    const read = () =>
      tx.sql<KeyRow>(
        `select trellis_current_tenant()::text as tenant, k.id, k.kind, k.wrapped, k.platform_key
           from (values (1)) one left join tenant_keys k on k.status = 'active'`,
      )
    let rows = await read()
    const tenantId = rows[0]?.tenant
    if (!tenantId) throw new TypeError('encrypted fields need a tenant transaction')
    const missing = (['data', 'index'] as const).filter((kind) => !rows.some((r) => r.kind === kind))
    if (missing.length) {
      this.wroteKeys.add(tx)
      for (const kind of missing) {
        const id = newKeyId()
        // A concurrent first use of the tenant's keys wins the partial unique index; the other is read back.
        await tx.sql(
          `insert into tenant_keys (id, kind, status, wrapped, platform_key) values (?, ?, 'active', ?, ?) on conflict do nothing`,
          [id, kind, wrapKey(this.current, randomBytes(32), purpose(tenantId, kind, id)), this.current.id],
        )
      }
      rows = await read()
    }
    const data = rows.find((r) => r.kind === 'data')!
    const index = rows.find((r) => r.kind === 'index')!
    const keys = { tenantId, data: { id: data.id!, key: this.unwrap(data) }, index: this.unwrap(index) }
    if (!this.wroteKeys.has(tx) && this.tenantOf(tx) === tenantId) {
      if (this.activeByTenant.size >= MAX_CACHED) this.activeByTenant.delete(this.activeByTenant.keys().next().value!)
      this.activeByTenant.set(tenantId, { keys, until: Date.now() + ACTIVE_TTL_MS })
    }
    return keys
  }

  private unwrap(row: KeyRow): Buffer {
    const cacheKey = `${row.tenant}:${row.id}`
    const hit = this.cache.get(cacheKey)
    if (hit) return hit
    const kek = this.known.get(row.platform_key!)
    if (!kek) throw GOV.KEY_UNAVAILABLE({ keyId: row.id! })
    const raw = unwrapKey(kek, row.wrapped!, purpose(row.tenant, row.kind!, row.id!))
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!)
    this.cache.set(cacheKey, raw)
    return raw
  }
}

function newKeyId(): string {
  return randomBytes(9).toString('base64url')
}

const keyrings = new WeakMap<Buffer, TenantKeyring>()

/**
 * The keyring of one kernel's secret key (the same `Buffer` its configuration holds): the data
 * host and the key routes share it, so a rotation through the API is seen at once by the
 * process that made it. Two kernels in one process have two configurations, hence two keyrings.
 */
export function keyringFor(secretKey: Buffer, previousSecretKeys: Buffer[] = []): TenantKeyring {
  let k = keyrings.get(secretKey)
  if (!k) keyrings.set(secretKey, (k = new TenantKeyring(secretKey, previousSecretKeys)))
  return k
}
