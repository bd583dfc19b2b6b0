import type { Database, Tx } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import type { ResolvedModel } from './providers/types.js'
import type { ChangeFeed } from '../scale/change-feed.js'

/** A row of ai_models. */
export interface ModelRow {
  id: string
  alias: string
  kind: 'chat' | 'embedding'
  provider: 'huggingface' | 'local'
  endpoint_url: string | null
  model_id: string
  credential: string | null
  price_in_micros: string | number
  price_out_micros: string | number
  no_retention: boolean
  region: string | null
  status: 'approved' | 'blocked'
  blocked_reason: string | null
  created_at: string | Date
  updated_at: string | Date
}

/** How the API shows a model: never its credential, only whether one is set. */
export function modelView(r: ModelRow) {
  return {
    id: r.id,
    alias: r.alias,
    kind: r.kind,
    provider: r.provider,
    endpointUrl: r.endpoint_url,
    modelId: r.model_id,
    hasCredential: r.credential !== null,
    priceInPer1k: Number(r.price_in_micros) / 1e6,
    priceOutPer1k: Number(r.price_out_micros) / 1e6,
    noRetention: r.no_retention,
    region: r.region,
    status: r.status,
    blockedReason: r.blocked_reason,
  }
}

export const credentialAad = (modelId: string) => `ai-model-credential:${modelId}`

/**
 * The platform's model registry, read by every call. Each process keeps the list for at most
 * `ttlMs` (default 500 ms): a model the platform blocks stops serving in every process within a
 * second, the way the marketplace kill switch's version status does; this process's own changes
 * take effect at once. With `changes` (Redis), a change announces itself and every process drops
 * its list at once; the TTL is then only the backstop for a lost message.
 */
export class ModelRegistry {
  private cached: { at: number; rows: Promise<ModelRow[]> } | undefined
  /** The last list read in full, for {@link allIn}. */
  private settled: { at: number; rows: ModelRow[] } | undefined

  constructor(
    private readonly db: Pick<Database, 'unscoped'>,
    private readonly secrets: SecretBox,
    private readonly ttlMs = 500,
    private readonly changes?: ChangeFeed,
  ) {
    changes?.listen(() => this.drop())
  }

  private readonly listeners: Array<() => void> = []

  /** `fn` runs whenever the list is dropped: what is cached beside it (tenants' AI settings) goes too. */
  onChange(fn: () => void): void {
    this.listeners.push(fn)
  }

  private drop(): void {
    this.cached = undefined
    for (const fn of this.listeners) fn()
  }

  /**
   * After a change committed — to the models, or to a tenant's or partner's AI settings or
   * budgets: drop this process's copies and tell the others to drop theirs.
   */
  forget(): void {
    this.drop()
    this.changes?.announce()
  }

  all(): Promise<ModelRow[]> {
    const now = Date.now()
    if (!this.cached || now - this.cached.at > this.ttlMs) {
      const rows = this.db.unscoped((tx) => tx.sql<ModelRow>('select * from ai_models order by alias'))
      this.cached = { at: now, rows }
      rows.then(
        (r) => (this.settled = { at: now, rows: r }),
        () => undefined,
      )
      rows.catch(() => {
        if (this.cached?.rows === rows) this.cached = undefined
      })
    }
    return this.cached.rows
  }

  /**
   * The list for a caller that holds the embedded database's only connection: this process's
   * copy when it is fresh and read, else read in `tx` (never waiting on a read that needs the
   * connection `tx` holds).
   */
  async allIn(tx: Tx): Promise<ModelRow[]> {
    if (this.cached && this.settled && Date.now() - this.settled.at <= this.ttlMs) return this.settled.rows
    return tx.sql<ModelRow>('select * from ai_models order by alias')
  }

  async byAlias(alias: string): Promise<ModelRow | undefined> {
    return (await this.all()).find((m) => m.alias === alias)
  }

  resolved(r: ModelRow): ResolvedModel {
    return {
      id: r.id,
      alias: r.alias,
      kind: r.kind,
      provider: r.provider,
      endpointUrl: r.endpoint_url,
      modelId: r.model_id,
      credential: r.credential ? this.secrets.open(r.credential, credentialAad(r.id)) : null,
      priceInMicros: Number(r.price_in_micros),
      priceOutMicros: Number(r.price_out_micros),
    }
  }

  static async get(tx: Tx, id: string, lock = false): Promise<ModelRow | undefined> {
    const [row] = await tx.sql<ModelRow>(`select * from ai_models where id = ?::uuid${lock ? ' for update' : ''}`, [id])
    return row
  }
}
