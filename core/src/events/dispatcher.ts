import type { Logger } from 'pino'
import { sqlArray, type TransactionSource } from '../db/database.js'
import type { JobQueue, QueueJob, RunningJob } from './queue.js'
import { deliverJob, type ClaimedDelivery } from './delivery-types.js'
import { NOT_BLOCKED, type WebhookDelivery } from './webhook-delivery.js'
import { WaitForEarlier, type FanOut } from './fan-out.js'
import { OutageLog } from './outage-log.js'

const BATCH = 500
const FAN_OUT_BATCH = 50
const DIRECT_FAN_OUTS = 4
// Committed events waiting to be taken by id; beyond this many, the dispatcher searches instead.
const MAX_FRESH = 10_000

export interface DispatcherOptions {
  /** A dispatched event or a due delivery still not done after this long is queued again. */
  staleMs: number
  /** The queue's workers run in this process. */
  worker: boolean
}

/**
 * The dispatcher: moves committed outbox rows to the queue (woken after each commit that
 * emitted, and by the periodic sweep), or — with the embedded queue and nobody needing each
 * event — fans them out itself. The sweep is the safety net for events nobody woke it for and
 * for deliveries whose job was lost. An outage of the queue or the database is logged once when
 * it starts and once when it ends.
 */
export class Dispatcher {
  private again = false
  /** Events committed since the last pass, by id (see nudge). */
  private fresh: string[] = []
  private searchAll = false
  private running: Promise<void> | undefined
  private scheduled = false
  private closed = false
  private directInFlight = 0
  private readonly outage: OutageLog

  constructor(
    private readonly db: TransactionSource,
    private readonly queue: JobQueue,
    private readonly fanOut: FanOut,
    private readonly delivery: WebhookDelivery,
    private readonly runJob: (job: RunningJob) => Promise<void>,
    /** True when no kernel handler or plugin needs each event (the embedded queue may fan out inline). */
    private readonly inlineAllowed: () => boolean,
    private readonly opts: DispatcherOptions,
    private readonly logger?: Logger,
  ) {
    this.outage = new OutageLog('dispatching events', logger)
  }

  /**
   * Wakes the dispatcher: called after a transaction that emitted has committed, with the ids of
   * the events it wrote when known — those are then taken by id. Without ids (and on the sweep)
   * the dispatcher searches the whole outbox, whose index of pending events also holds every
   * event processed since the last vacuum: under load that search costs far more than the lookup.
   */
  nudge(ids?: readonly string[]): void {
    if (this.closed) return
    if (!ids || this.fresh.length + ids.length > MAX_FRESH) this.searchAll = true
    else this.fresh.push(...ids)
    this.again = true
    if (this.scheduled || this.running) return
    this.scheduled = true
    // A few milliseconds' grace lets commits arriving together share one dispatch.
    setTimeout(() => {
      this.scheduled = false
      void this.pump()
    }, 10)
  }

  private async pump(): Promise<void> {
    if (this.running || this.closed) return
    this.running = (async () => {
      while (this.again && !this.closed) {
        this.again = false
        const fresh = this.fresh.splice(0)
        const searchAll = this.searchAll
        this.searchAll = false
        try {
          let moved = 0
          if (searchAll) for (let n = BATCH; n === BATCH && !this.closed; moved += n) n = await this.dispatchOnce()
          else
            for (let i = 0; i < fresh.length && !this.closed; i += BATCH)
              moved += await this.dispatchOnce(fresh.slice(i, i + BATCH))
          // Only a pass that moved events proves the queue is back.
          if (moved > 0) this.outage.ok()
        } catch (err) {
          // Redis away, database busy: the rows stay in the outbox and the sweep tries again.
          this.outage.failed(err)
        }
      }
    })()
    try {
      await this.running
    } finally {
      this.running = undefined
    }
  }

  /** Moves up to one batch of outbox rows (those of `ids` when given) to the queue; returns how many. */
  async dispatchOnce(ids?: readonly string[]): Promise<number> {
    if (this.queue.kind === 'postgres' && this.opts.worker && this.inlineAllowed()) return this.dispatchInline(ids)
    const staleSeconds = this.opts.staleMs / 1000
    const [count, direct] = await this.db.inOrg(
      null,
      async (tx) => {
        // Take and stamp in one statement; the queue add below is in the same transaction, so a
        // failed add (Redis away) un-stamps them.
        const rows = await tx.sql<{ id: string; tenant_id: string; type: string }>(
          `update events set dispatched_at = now() where id in (
             select id from events where ${ids ? 'id = any(?::uuid[]) and ' : ''}processed_at is null and (dispatched_at is null or dispatched_at < now() - make_interval(secs => ?::double precision))
              order by id limit ${BATCH} for update skip locked)
           returning id, tenant_id, type`,
          ids ? [sqlArray(ids), staleSeconds] : [staleSeconds],
        )
        rows.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
        if (rows.length === 0) return [0, []] as const
        // One job per tenant and run of events (at most FAN_OUT_BATCH): under load, one fan-out
        // statement serves many events.
        const jobs: QueueJob[] = []
        let current: { tenantId: string; events: Array<{ id: string; type: string }> } | undefined
        for (const r of rows) {
          if (!current || current.tenantId !== r.tenant_id || current.events.length >= FAN_OUT_BATCH) {
            current = { tenantId: r.tenant_id, events: [] }
            jobs.push({ id: `evt_${r.id}`, name: 'events', data: current })
          }
          current.events.push({ id: r.id, type: r.type })
        }
        // The embedded queue lives in this database: while few fan-outs are in flight, this
        // process runs them itself instead of writing, claiming and deleting job rows. Either
        // way the rows stay unprocessed until fanned out, and the sweep re-dispatches them.
        const direct =
          this.queue.kind === 'postgres' && this.opts.worker
            ? jobs.splice(0, Math.max(0, DIRECT_FAN_OUTS - this.directInFlight))
            : []
        await this.queue.add(jobs, tx)
        return [rows.length, direct] as const
      },
      'trellis_events',
    )
    for (const job of direct) {
      this.directInFlight++
      void this.runJob({ id: job.id, name: job.name, data: job.data, attempt: 1 })
        .catch((err) => {
          // Run it again through the queue, which retries: shortly when an earlier event about
          // the same subject is still being fanned out (events committed moments apart are
          // dispatched apart), after a second on any other failure.
          const waiting = err instanceof WaitForEarlier
          if (!waiting) this.logger?.warn({ err }, 'fan-out failed; it runs again from the queue')
          return this.queue.add([{ ...job, id: `${job.id}_r${Date.now()}`, delayMs: waiting ? 100 : 1000 }])
        })
        .catch((err) => this.logger?.warn({ err }, 'queueing a fan-out to run again failed; the sweep retries'))
        .finally(() => this.directInFlight--)
    }
    return count
  }

  /**
   * The embedded queue lives in this database, so when no kernel handler or plugin needs each
   * event, the dispatcher fans events out in its own transaction: no job rows, no second stamp.
   * First attempts of the deliveries it creates are made after commit.
   */
  private async dispatchInline(ids?: readonly string[]): Promise<number> {
    const staleSeconds = this.opts.staleMs / 1000
    const [count, claimed] = await this.db.inOrg(
      null,
      async (tx) => {
        const rows = await tx.sql<{ id: string; tenant_id: string; type: string }>(
          `select id, tenant_id, type from events where ${ids ? 'id = any(?::uuid[]) and ' : ''}processed_at is null and (dispatched_at is null or dispatched_at < now() - make_interval(secs => ?::double precision))
            order by id limit ${BATCH} for update skip locked`,
          ids ? [sqlArray(ids), staleSeconds] : [staleSeconds],
        )
        const groups = new Map<string, Array<{ id: string; type: string }>>()
        for (const r of rows) {
          let g = groups.get(r.tenant_id)
          if (!g) groups.set(r.tenant_id, (g = []))
          g.push({ id: r.id, type: r.type })
        }
        const out: Array<[string, ClaimedDelivery[]]> = []
        for (const [tenantId, events] of groups) {
          await tx.useOrg(tenantId)
          out.push([tenantId, (await this.fanOut.statement(tx, tenantId, events)).filter((d) => d.id)])
        }
        return [rows.length, out] as const
      },
      'trellis_events',
    )
    for (const [tenantId, deliveries] of claimed) {
      for (const d of deliveries) {
        this.directInFlight++
        void this.delivery
          .attempt(tenantId, d)
          .catch((err) => this.logger?.warn({ err }, 'webhook attempt failed; the sweep retries'))
          .finally(() => this.directInFlight--)
      }
    }
    return count
  }

  /**
   * The safety net: undispatched or lost events, due deliveries whose job was lost, and
   * deliveries released by an earlier one whose release was lost (never one that still waits).
   */
  async sweep(): Promise<void> {
    if (this.closed) return
    this.nudge()
    try {
      const due = await this.db.inOrg(
        null,
        (tx) =>
          tx.sql<{ id: string; tenant_id: string; attempts: number }>(
            `select d.id, d.tenant_id, d.attempts from webhook_deliveries d
              where d.status = 'pending' and d.next_attempt_at < now() - make_interval(secs => ?::double precision) and ${NOT_BLOCKED('d')}
              order by d.next_attempt_at limit ${BATCH}`,
            [this.opts.staleMs / 1000],
          ),
        'trellis_events',
      )
      if (due.length) await this.queue.add(due.map((d) => deliverJob(d.id, d.tenant_id, d.attempts + 1)))
    } catch (err) {
      this.logger?.debug({ err }, 'sweeping deliveries failed')
    }
  }

  /** Waits until nothing is being dispatched (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.running || this.scheduled) await (this.running ?? new Promise((r) => setImmediate(r)))
  }

  async close(): Promise<void> {
    this.closed = true
    await this.running
    for (let i = 0; i < 200 && this.directInFlight > 0; i++) await new Promise((r) => setTimeout(r, 10))
  }
}
