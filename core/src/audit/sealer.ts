import type { Logger } from 'pino'
import { sqlArray, type TransactionSource } from '../db/database.js'
import { chainHash, GENESIS_HASH, payloadDigest, type AuditRow } from './chain.js'

const BATCH = 500
const YIELD_EVERY = 50

/**
 * Seals audit entries into each organisation's hash chain shortly after they commit. Writers
 * only append; one sealer at a time per organisation (a transaction-scoped advisory lock, so
 * several kernel processes can run sealers) numbers the unsealed entries in id order and links
 * them to the chain head.
 */
export class AuditSealer {
  private pending = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private sweep: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private closed = false
  private passive = false

  private lastFlushAt = 0

  /**
   * `delayMs`: how long after a commit its entries are sealed when the sealer was idle.
   * `intervalMs`: under a steady stream of writes, at most one pass per this long — sealing
   * each commit's few entries as they come cost PostgreSQL ~200 µs per audited write under load
   * (measured with `npm run bench -- kernel`), sealing a second's worth at once next to nothing.
   */
  constructor(
    /** The kernel passes its background pool: requests never wait for a connection behind sealing (ADR 0055). */
    private readonly db: TransactionSource,
    private readonly logger?: Logger,
    private readonly delayMs = 50,
    private readonly intervalMs = 1000,
  ) {}

  /** Periodically seals whatever another process (or a crash) left unsealed. */
  start(sweepMs = 5000): void {
    this.sweep = setInterval(
      () => void this.sealAll().catch((err) => this.logger?.error({ err }, 'audit sweep failed')),
      sweepMs,
    )
    this.sweep.unref()
  }

  /** An API process (TRELLIS_ROLE=api) seals nothing itself: worker processes' sweeps seal what it wrote. */
  leaveToWorkers(): void {
    this.passive = true
  }

  /** Asks for the organisation's new entries to be sealed soon. */
  nudge(tenantId: string): void {
    if (this.closed || this.passive) return
    this.pending.add(tenantId)
    if (!this.timer) {
      this.timer = setTimeout(
        () => void this.flush(),
        Math.max(this.delayMs, this.intervalMs - (Date.now() - this.lastFlushAt)),
      )
      this.timer.unref()
    }
  }

  /** Seals every nudged organisation now; resolves when done. */
  async flush(): Promise<void> {
    this.timer = undefined
    while (this.running) await this.running
    const tenants = [...this.pending]
    this.pending.clear()
    if (tenants.length === 0) return
    this.lastFlushAt = Date.now()
    this.running = (async () => {
      for (const tenantId of tenants) {
        try {
          await this.sealTenant(tenantId)
        } catch (err) {
          this.logger?.error({ err, tenantId }, 'sealing audit entries failed; the sweep retries')
        }
      }
    })()
    try {
      await this.running
    } finally {
      this.running = undefined
    }
  }

  /** Seals all unsealed entries of every organisation. */
  async sealAll(): Promise<void> {
    const rows = await this.db.inOrg(
      null,
      (tx) => tx.sql<{ tenant_id: string }>('select distinct tenant_id from audit_log where hash is null'),
      'trellis_auditor',
    )
    for (const r of rows) this.pending.add(r.tenant_id)
    await this.flush()
  }

  /** Returns how many entries were sealed; 0 when another sealer holds the organisation. */
  async sealTenant(tenantId: string): Promise<number> {
    let total = 0
    for (;;) {
      const sealed = await this.db.inOrg(
        tenantId,
        async (tx) => {
          const [lock] = await tx.sql<{ ok: boolean }>(
            `select pg_try_advisory_xact_lock(hashtextextended('trellis.audit.' || ?, 0)) as ok`,
            [tenantId],
          )
          if (!lock?.ok) return 0
          const [head] = await tx.sql<{ head_seq: string; hash: string }>(
            'select a.seq::text as head_seq, a.hash from audit_log a where a.tenant_id = ?::uuid and a.seq is not null order by a.seq desc limit 1',
            [tenantId],
          )
          const rows = await tx.sql<AuditRow>(
            `select * from audit_log where tenant_id = ?::uuid and hash is null order by id limit ${BATCH}`,
            [tenantId],
          )
          if (rows.length === 0) return 0
          let seq = BigInt(head?.head_seq ?? '0')
          let prev = head?.hash ?? GENESIS_HASH
          const ids: string[] = []
          const seqs: string[] = []
          const prevs: string[] = []
          const hashes: string[] = []
          const digests: string[] = []
          for (const [i, row] of rows.entries()) {
            // Hashing a full batch is tens of milliseconds of CPU: let requests in between.
            if (i > 0 && i % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r))
            seq += 1n
            row.data_digest = payloadDigest(row.data)
            digests.push(row.data_digest)
            const hash = chainHash(prev, row, seq.toString())
            ids.push(row.id)
            seqs.push(seq.toString())
            prevs.push(prev)
            hashes.push(hash)
            prev = hash
          }
          await tx.sql(
            `update audit_log a set seq = v.seq, prev_hash = v.prev_hash, hash = v.hash, data_digest = v.data_digest
               from (select unnest(?::uuid[]) as id, unnest(?::bigint[]) as seq, unnest(?::text[]) as prev_hash, unnest(?::text[]) as hash,
                            unnest(?::text[]) as data_digest) v
              where a.id = v.id`,
            [sqlArray(ids), sqlArray(seqs), sqlArray(prevs), sqlArray(hashes), sqlArray(digests)],
          )
          return rows.length
        },
        'trellis_auditor',
      )
      total += sealed
      if (sealed < BATCH) return total
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.sweep) clearInterval(this.sweep)
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.flush()
  }
}
