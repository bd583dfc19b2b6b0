import { appendFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import type { Database } from '../db/database.js'
import type { SigningKeys } from '../identity/signing-keys.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'
import { auditedOrganisations } from './verify.js'
import { signCheckpoint, type Checkpoint } from './checkpoint-signing.js'

export interface CheckpointerDeps {
  db: Database
  keys: SigningKeys
  /** Told about the events written, so they leave at once (the dispatcher's sweep finds them anyway). */
  events?: { nudge(ids?: readonly string[]): void }
  /** TRELLIS_AUDIT_CHECKPOINT_DIR: each checkpoint is also appended to `<dir>/<organisation>.jsonl`. */
  dir?: string
  logger?: Logger
}

/**
 * Publishes signed checkpoints of audit chain heads outside the database (ADR 0011): a
 * `kernel.audit.checkpoint` event into the organisation's own stream (its webhooks carry it to
 * its systems) and a line in the checkpoint directory. A chain cut back after a checkpoint, or
 * rewritten, no longer matches it: `trellis audit verify --checkpoints` says so.
 */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined

  constructor(private readonly deps: CheckpointerDeps) {}

  /** Checkpoints every changed chain each `intervalMs` (0: never; on demand only). */
  start(intervalMs: number): void {
    if (intervalMs <= 0 || this.timer) return
    this.timer = setInterval(() => {
      if (this.running) return
      this.running = this.checkpointAll()
        .catch((err) => this.deps.logger?.error({ err }, 'audit checkpoint run failed; the next run tries again'))
        .finally(() => (this.running = undefined))
    }, intervalMs)
    this.timer.unref()
  }

  /**
   * Checkpoints the heads of `orgs` (every organisation with an audit chain by default).
   * `force`: also a head already checkpointed (an on-demand checkpoint always publishes).
   */
  async checkpointAll(opts: { orgs?: string[]; force?: boolean } = {}): Promise<Checkpoint[]> {
    const out: Checkpoint[] = []
    for (const org of opts.orgs ?? (await auditedOrganisations(this.deps.db))) {
      try {
        const cp = await this.checkpoint(org, opts.force ?? false)
        if (cp) out.push(cp)
      } catch (err) {
        if (opts.orgs) throw err
        this.deps.logger?.error({ err, tenantId: org }, 'checkpointing an audit chain failed')
      }
    }
    return out
  }

  /** Signs and publishes one organisation's chain head; undefined when it has none (or it is unchanged and not forced). */
  async checkpoint(orgId: string, force = false): Promise<Checkpoint | undefined> {
    const { db, keys, dir } = this.deps
    const result = await db.inOrg(orgId, async (tx) => {
      // One publisher per organisation at a time, across kernel processes.
      await tx.sql(`select pg_advisory_xact_lock(hashtextextended('trellis.audit.checkpoint.' || ?, 0))`, [orgId])
      const [head] = await tx.sql<{ seq: string; hash: string }>(
        'select seq::text as seq, hash from audit_log where tenant_id = ?::uuid and seq is not null order by seq desc limit 1',
        [orgId],
      )
      if (!head) return undefined
      if (!force) {
        const [last] = await tx.sql<{ seq: string }>(
          'select seq::text as seq from audit_checkpoints where tenant_id = ?::uuid order by seq desc limit 1',
          [orgId],
        )
        if (last?.seq === head.seq) return undefined
      }
      const cp = await signCheckpoint(keys, {
        tenantId: orgId,
        seq: head.seq,
        hash: head.hash,
        at: new Date().toISOString(),
      })
      await tx.sql(
        'insert into audit_checkpoints (id, tenant_id, seq, hash, kid, jws) values (?::uuid, ?::uuid, ?::bigint, ?, ?, ?)',
        [uuidv7(), orgId, cp.seq, cp.hash, cp.kid, cp.jws],
      )
      const ids = await emitEvents(
        tx,
        kernelEvent('kernel.audit.checkpoint', `audit/${orgId}`, {
          seq: cp.seq,
          hash: cp.hash,
          at: cp.at,
          kid: cp.kid,
          jws: cp.jws,
        }),
      )
      // Written before the transaction commits: a checkpoint the directory did not take is not
      // recorded as published, and the next run publishes it again.
      if (dir) {
        await mkdir(dir, { recursive: true })
        await appendFile(join(dir, `${orgId}.jsonl`), `${JSON.stringify(cp)}\n`, { mode: 0o640 })
      }
      return { cp, ids }
    })
    if (!result) return undefined
    this.deps.events?.nudge(result.ids)
    return result.cp
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }
}
