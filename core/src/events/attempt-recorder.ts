import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import type { TransactionSource, Tx } from '../db/database.js'
import type { EventMetrics } from '../observability/metrics.js'
import { EVENT_COLUMNS, EVENT_VALUES, eventRow, kernelEvent } from './outbox.js'
import { DELIVERY_FAILED, type ClaimedDelivery, type RecordInput } from './delivery-types.js'

/** A PostgreSQL array literal where null stays NULL (and text is quoted). */
function pgArray(values: ReadonlyArray<string | null>): string {
  return `{${values.map((v) => (v === null ? 'NULL' : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)).join(',')}}`
}

// Transactions writing outcomes at once (each takes one pooled connection).
const MAX_FLUSHES = 2

export interface RecorderHooks {
  /** Events were written (delivery_failed news): wake the dispatcher. */
  emitted(count: number): void
  /** Deliveries that waited for an earlier one about their subject may now be attempted. */
  unblocked(tenantId: string, deliveryIds: string[]): void
}

/**
 * Records attempts' outcomes. Outcomes that arrive together are written together: one
 * transaction per tenant for all of them. A delivery that finished (delivered or failed for
 * good) releases the next delivery about its subject to its endpoint, found in the same
 * transaction.
 */
export class AttemptRecorder {
  private records = new Map<string, Array<{ d: ClaimedDelivery; r: RecordInput; done: (err?: unknown) => void }>>()
  /** The next flush, waiting for the current tick's outcomes. */
  private scheduled: Promise<void> | undefined
  private readonly running = new Set<Promise<void>>()

  constructor(
    private readonly db: TransactionSource,
    private readonly metrics: EventMetrics,
    private readonly hooks: RecorderHooks,
    private readonly logger?: Logger,
  ) {}

  record(tenantId: string, d: ClaimedDelivery, r: RecordInput): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.records.get(tenantId)
      if (!list) this.records.set(tenantId, (list = []))
      list.push({ d, r, done: (err) => (err ? reject(err) : resolve()) })
      this.schedule()
    })
  }

  /**
   * At most MAX_FLUSHES transactions write outcomes at once; outcomes arriving meanwhile wait
   * for the next, which takes them all. Under load that is one transaction for many outcomes
   * (each flush is five round trips whatever its size) instead of one for each tick's few.
   */
  private schedule(): void {
    if (this.scheduled || this.records.size === 0 || this.running.size >= MAX_FLUSHES) return
    this.scheduled = new Promise<void>((r) => setImmediate(r)).then(() => {
      this.scheduled = undefined
      const run: Promise<void> = this.flush()
        .catch((err) => this.logger?.warn({ err }, 'recording webhook attempts failed'))
        .finally(() => {
          this.running.delete(run)
          this.schedule()
        })
      this.running.add(run)
      return run
    })
  }

  /** Resolves once what was recorded so far is written. */
  async settled(): Promise<void> {
    while (this.scheduled || this.running.size > 0) await Promise.all([this.scheduled, ...this.running])
  }

  private async flush(): Promise<void> {
    const batches = [...this.records]
    this.records.clear()
    let emitted = 0
    await Promise.all(
      batches.map(async ([tenantId, items]) => {
        try {
          const [written, next] = await this.db.inOrg(
            tenantId,
            (tx) => this.write(tx, tenantId, items),
            'trellis_events',
          )
          emitted += written
          for (const i of items) {
            const reason = i.r.failureReason
            if (i.r.status === 'delivered') this.metrics.deliveries.inc({ outcome: 'delivered' })
            else if (reason) {
              this.metrics.deliveries.inc({ outcome: reason })
              this.metrics.deadLetters.inc({ reason })
            }
            i.done()
          }
          if (next.length) this.hooks.unblocked(tenantId, next)
        } catch (err) {
          for (const i of items) i.done(err)
        }
      }),
    )
    if (emitted) this.hooks.emitted(emitted)
  }

  private async write(
    tx: Tx,
    tenantId: string,
    items: Array<{ d: ClaimedDelivery; r: RecordInput }>,
  ): Promise<[number, string[]]> {
    let written = 0
    const retry = (x: RecordInput) => (x.retryInMs === undefined ? null : String(x.retryInMs / 1000))
    // Locked in id order first, as the fan-out locks the deliveries it waits behind: no deadlock.
    await tx.sql('select id from webhook_deliveries where id = any(?::uuid[]) order by id for update', [
      pgArray(items.map((i) => i.d.id)),
    ])
    await tx.sql(
      `with v as (
         select * from unnest(?::uuid[], ?::uuid[], ?::int[], ?::int[], ?::int[], ?::text[], ?::text[], ?::text[], ?::double precision[], ?::text[])
           as v(id, delivery_id, attempt, status_code, duration_ms, error, response, status, retry, failure_reason)
       ), a as (
         insert into webhook_attempts (id, tenant_id, delivery_id, attempt, status_code, duration_ms, error, response)
         select v.id, ?::uuid, v.delivery_id, v.attempt, v.status_code, v.duration_ms, v.error, v.response from v
       )
       update webhook_deliveries d set status = v.status, last_status = v.status_code, updated_at = now(), failure_reason = v.failure_reason,
              next_attempt_at = case when v.retry is null then null else now() + make_interval(secs => v.retry) end
         from v where d.id = v.delivery_id`,
      [
        pgArray(items.map(() => uuidv7())),
        pgArray(items.map((i) => i.d.id)),
        pgArray(items.map((i) => String(i.d.attempts))),
        pgArray(items.map((i) => (i.r.statusCode == null ? null : String(i.r.statusCode)))),
        pgArray(items.map((i) => String(i.r.durationMs))),
        pgArray(items.map((i) => i.r.error ?? null)),
        pgArray(items.map((i) => i.r.response ?? null)),
        pgArray(items.map((i) => i.r.status)),
        pgArray(items.map((i) => retry(i.r))),
        pgArray(items.map((i) => i.r.failureReason ?? null)),
        tenantId,
      ],
    )
    // Tell the tenant, in the same transaction, of each delivery that failed for good — never of
    // a delivery of that same news, so a failing endpoint cannot feed itself.
    const failed = items.filter(
      (i) => (i.r.failureReason === 'dead_letter' || i.r.failureReason === 'gone') && i.d.type !== DELIVERY_FAILED,
    )
    if (failed.length) {
      const rows = failed.map((i) =>
        eventRow(
          kernelEvent(DELIVERY_FAILED, `webhook/${i.d.endpoint_id}`, {
            endpointId: i.d.endpoint_id,
            deliveryId: i.d.id,
            eventId: i.d.event_id,
            eventType: i.d.type,
            reason: i.r.failureReason as 'dead_letter' | 'gone',
            attempts: i.d.attempts,
            lastStatus: i.r.statusCode ?? null,
            error: i.r.error ?? null,
          }),
        ),
      )
      await tx.sql(`insert into events ${EVENT_COLUMNS} values ${rows.map(() => EVENT_VALUES).join(', ')}`, rows.flat())
      written = rows.length
    }
    for (const i of items) {
      if (!i.r.disableEndpoint) continue
      await tx.sql(
        `update webhook_endpoints set status = 'disabled', disabled_reason = ?, updated_at = now() where id = ?::uuid`,
        ['the receiver answered 410 Gone', i.d.endpoint_id],
      )
      this.logger?.warn(
        { tenantId, endpointId: i.d.endpoint_id },
        'webhook endpoint disabled: the receiver answered 410 Gone',
      )
    }
    // The next delivery about each finished delivery's subject to its endpoint, if nothing
    // earlier about that subject is still pending there.
    const finished = items.filter((i) => i.r.status !== 'pending').map((i) => i.d.id)
    if (finished.length === 0) return [written, []]
    const next = await tx.sql<{ id: string }>(
      `select n.id from (select distinct endpoint_id, subject from webhook_deliveries where id = any(?::uuid[]) and order_seq is not null) f
         cross join lateral (
           select w.id, w.attempts from webhook_deliveries w
            where w.endpoint_id = f.endpoint_id and w.subject = f.subject and w.status = 'pending' and w.order_seq is not null
            order by w.order_seq limit 1) n
        where n.attempts = 0 and n.id <> all(?::uuid[])`,
      [pgArray(finished), pgArray(finished)],
    )
    return [written, next.map((n) => n.id)]
  }
}
