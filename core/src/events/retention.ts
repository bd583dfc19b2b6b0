import type { Logger } from 'pino'
import type { TransactionSource } from '../db/database.js'

/** The smallest UUIDv7 of a millisecond: ids below it were made before it. */
export function uuidv7Floor(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`
}

export interface RetentionOptions {
  /** Processed events older than this are purged (TRELLIS_EVENT_RETENTION_DAYS). */
  eventRetentionDays?: number
  /** Finished deliveries and their attempts older than this are purged (TRELLIS_DELIVERY_RETENTION_DAYS). */
  deliveryRetentionDays?: number
  /** How often the retention job runs (default hourly). */
  retentionIntervalMs?: number
  /** Rows deleted per statement by the retention job. */
  retentionBatch?: number
}

/**
 * The retention job: deletes, in batches, processed events older than the event retention
 * (unless a delivery of theirs is still kept) and finished deliveries older than the delivery
 * retention (their attempts go with them). Unprocessed events and pending deliveries are never
 * touched — the row-level security policies of trellis_events refuse them too. The per-subject
 * sequence counters are kept: a subject's numbers never restart.
 */
export class EventRetention {
  private timer: NodeJS.Timeout | undefined
  private run: Promise<unknown> | undefined
  private closed = false

  constructor(
    private readonly db: TransactionSource,
    private readonly opts: RetentionOptions,
    private readonly logger?: Logger,
  ) {}

  /** Sets the retention from the kernel's configuration unless the options already said. */
  configure(r: { eventRetentionDays: number; deliveryRetentionDays: number }): void {
    this.opts.eventRetentionDays ??= r.eventRetentionDays
    this.opts.deliveryRetentionDays ??= r.deliveryRetentionDays
  }

  start(): void {
    if (
      this.closed ||
      this.timer ||
      this.opts.eventRetentionDays === undefined ||
      this.opts.deliveryRetentionDays === undefined
    )
      return
    const every = this.opts.retentionIntervalMs ?? 3_600_000
    const run = () => {
      if (this.run || this.closed) return
      this.run = this.purge()
        .then((n) => {
          if (n.events || n.deliveries) this.logger?.info(n, 'purged old events and webhook deliveries')
        })
        .catch((err) => this.logger?.warn({ err }, 'purging old events failed; the next run tries again'))
        .finally(() => (this.run = undefined))
    }
    this.timer = setInterval(run, every)
    this.timer.unref()
    // A first run soon after start (not at once: starting should stay quick).
    setTimeout(run, Math.min(every, 60_000)).unref()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    await this.run
  }

  async purge(now: Date = new Date()): Promise<{ events: number; deliveries: number }> {
    const day = 86_400_000
    const batch = this.opts.retentionBatch ?? 1000
    const deliveriesBefore = new Date(now.getTime() - (this.opts.deliveryRetentionDays ?? 30) * day)
    const eventsBefore = new Date(now.getTime() - (this.opts.eventRetentionDays ?? 30) * day)
    const loop = async (statement: string, params: unknown[]) => {
      let total = 0
      for (;;) {
        if (this.closed) return total
        const [r] = await this.db.inOrg(null, (tx) => tx.sql<{ n: number }>(statement, params), 'trellis_events')
        total += r!.n
        if (r!.n < batch) return total
      }
    }
    // Deliveries first: an event whose deliveries are purged may go in the same run.
    const deliveries = await loop(
      `with gone as (
         delete from webhook_deliveries where id in (
           select id from webhook_deliveries where id < ?::uuid and status <> 'pending' and updated_at < ?::timestamptz order by id limit ${batch})
         returning 1)
       select count(*)::int as n from gone`,
      [uuidv7Floor(deliveriesBefore.getTime()), deliveriesBefore.toISOString()],
    )
    const events = await loop(
      `with gone as (
         delete from events where id in (
           select e.id from events e where e.id < ?::uuid and e.time < ?::timestamptz and e.processed_at is not null
              and not exists (select 1 from webhook_deliveries d where d.event_id = e.id)
            order by e.id limit ${batch})
         returning 1)
       select count(*)::int as n from gone`,
      [uuidv7Floor(eventsBefore.getTime()), eventsBefore.toISOString()],
    )
    return { events, deliveries }
  }
}
