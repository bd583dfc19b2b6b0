import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import { sqlArray, type Database, type Tx } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { EgressGuard } from '../egress/egress-guard.js'
import { egressRequest } from '../egress/http-client.js'
import { matchesAny, type TrellisEvent } from './catalogue.js'
import type { JobQueue, QueueJob, RunningJob } from './queue.js'
import type { KernelEventHandler, PluginEventSink, PluginSubscription } from './subscribers.js'
import { signWebhook } from './signing.js'
import { EVENT_COLUMNS, EVENT_VALUES, eventRow, kernelEvent } from './outbox.js'
import { eventMetrics, type EventMetrics } from '../observability/metrics.js'

const BATCH = 500
const FAN_OUT_BATCH = 50
const DIRECT_FAN_OUTS = 4
// Committed events waiting to be taken by id; beyond this many, the dispatcher searches instead.
const MAX_FRESH = 10_000

// A time-ordered (UUIDv7-layout) id made in SQL, for rows whose number is known only there.
const UUID7_SQL = `(lpad(to_hex(floor(extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 3) || to_hex(8 + floor(random() * 4)::int) || substr(md5(random()::text), 1, 15))::uuid`

export interface EventSystemOptions {
  /** Delay before each webhook retry; after the last, the delivery is dead-lettered. */
  retryScheduleMs: number[]
  /** How often the safety-net sweep runs (outbox rows nobody woke the dispatcher for, lost jobs). */
  sweepMs?: number
  /** A dispatched event or a due delivery still not done after this long is queued again. */
  staleMs?: number
  /** Run the queue's workers in this process. */
  worker?: boolean
  concurrency?: number
  connectTimeoutMs?: number
  totalTimeoutMs?: number
  /** Where the pipeline's Prometheus metrics go (the process's, which /metrics serves, by default). */
  metrics?: EventMetrics
  /** Processed events older than this are purged (TRELLIS_EVENT_RETENTION_DAYS). */
  eventRetentionDays?: number
  /** Finished deliveries and their attempts older than this are purged (TRELLIS_DELIVERY_RETENTION_DAYS). */
  deliveryRetentionDays?: number
  /** How often the retention job runs (default hourly). */
  retentionIntervalMs?: number
  /** Rows deleted per statement by the retention job. */
  retentionBatch?: number
}

/** Why a delivery failed for good. */
export type FailureReason = 'dead_letter' | 'gone' | 'endpoint_disabled'

/** The type of the event that tells a tenant one of its deliveries failed for good. */
export const DELIVERY_FAILED = 'kernel.webhook.delivery_failed'

/** The smallest UUIDv7 of a millisecond: ids below it were made before it. */
export function uuidv7Floor(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`
}

interface EventRow {
  id: string
  tenant_id: string
  type: string
  source: string
  subject: string
  time: Date | string
  data: Record<string, unknown>
  processed_at: Date | null
  earlier: boolean
}

interface ClaimedDelivery {
  id: string
  attempts: number
  endpoint_id: string
  url: string
  endpoint_status: string
  secret_enc: string
  previous_secret_enc: string | null
  previous_secret_expires_at: Date | null
  event_id: string
  type: string
  source: string
  subject: string
  time: Date | string
  data: Record<string, unknown>
  tenant_id: string
}

interface RecordInput {
  status: 'delivered' | 'failed' | 'pending'
  statusCode?: number | null
  response?: string | null
  error?: string | null
  durationMs: number
  retryInMs?: number
  disableEndpoint?: boolean
  failureReason?: FailureReason
}

/** A PostgreSQL array literal where null stays NULL (and text is quoted). */
function pgArray(values: ReadonlyArray<string | null>): string {
  return `{${values.map((v) => (v === null ? 'NULL' : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)).join(',')}}`
}

/** An event is waiting for an earlier one about the same subject: its job runs again shortly. */
class WaitForEarlier extends Error {}

function toEvent(r: Pick<EventRow, 'id' | 'tenant_id' | 'type' | 'source' | 'subject' | 'time' | 'data'>): TrellisEvent {
  return { id: r.id, tenantId: r.tenant_id, type: r.type, source: r.source, subject: r.subject, time: new Date(r.time).toISOString(), data: r.data }
}

/** The patterns an endpoint may have subscribed with that match `type`: `*`, the type, and each `prefix.*`. */
function patternsMatching(type: string): string[] {
  const parts = type.split('.')
  const out = ['*', type]
  for (let i = 1; i < parts.length; i++) out.push(`${parts.slice(0, i).join('.')}.*`)
  return out
}

export const webhookSecretAd = (endpointId: string) => `webhook-secret:${endpointId}`

/**
 * The event pipeline: outbox → queue → subscribers. The dispatcher moves committed outbox rows
 * to the queue (woken after each commit that emitted, and by a periodic sweep); a worker fans
 * each event out, in order per subject, to in-process handlers, plugin subscribers and the
 * tenant's webhook endpoints; each webhook delivery is its own job with retries.
 * PostgreSQL is the source of truth throughout: the sweep re-queues any event or delivery whose
 * job was lost, and handlers are idempotent, so delivery is at least once.
 */
export class EventSystem {
  private handlers: Array<{ patterns: string[]; fn: KernelEventHandler }> = []
  private sink: PluginEventSink | undefined
  private again = false
  /** Events committed since the last pass, by id (see nudge). */
  private fresh: string[] = []
  private searchAll = false
  private running: Promise<void> | undefined
  private scheduled = false
  private sweepTimer: NodeJS.Timeout | undefined
  private closed = false
  private readonly staleMs: number
  private directInFlight = 0
  readonly metrics: EventMetrics
  private retentionTimer: NodeJS.Timeout | undefined
  private retentionRun: Promise<unknown> | undefined
  private unsetBacklog: (() => void) | undefined

  constructor(
    private readonly db: Database,
    readonly queue: JobQueue,
    private readonly secrets: SecretBox,
    readonly egress: EgressGuard,
    private readonly opts: EventSystemOptions,
    private readonly logger?: Logger,
  ) {
    this.staleMs = opts.staleMs ?? 30_000
    this.metrics = opts.metrics ?? eventMetrics
  }

  /** Runs `fn` (in this process, after commit, at least once) for events matching `patterns`. */
  on(patterns: string | string[], fn: KernelEventHandler): void {
    this.handlers.push({ patterns: Array.isArray(patterns) ? patterns : [patterns], fn })
  }

  /** Where plugin subscribers are reached (the plugin host). */
  setPluginSink(sink: PluginEventSink | undefined): void {
    this.sink = sink
  }

  start(): void {
    if (this.opts.worker ?? true) this.queue.work((job) => this.runJob(job), { concurrency: this.opts.concurrency ?? (this.queue.kind === 'bullmq' ? 64 : 16) })
    this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepMs ?? 1000)
    this.sweepTimer.unref()
    this.unsetBacklog = this.metrics.setBacklogSource(() => this.backlog())
    this.startRetention()
    this.nudge()
  }

  /** What the outbox and the delivery table hold now (the backlog gauges on /metrics). */
  async backlog(): Promise<{ outbox: number; oldestSeconds: number; pendingDeliveries: number }> {
    const [row] = await this.db.inOrg(
      null,
      (tx) =>
        tx.sql<{ outbox: number; oldest: number | null; pending: number }>(
          `select (select count(*) from events where processed_at is null)::int as outbox,
                  extract(epoch from clock_timestamp() - (select time from events where processed_at is null order by id limit 1))::float8 as oldest,
                  (select count(*) from webhook_deliveries where status = 'pending')::int as pending`,
        ),
      'trellis_events',
    )
    return { outbox: row!.outbox, oldestSeconds: Math.max(0, row!.oldest ?? 0), pendingDeliveries: row!.pending }
  }

  /**
   * Sets how long events and deliveries are kept (from the kernel's configuration) unless the
   * options already said, and (re)starts the retention job if the system is running.
   */
  configureRetention(r: { eventRetentionDays: number; deliveryRetentionDays: number }): void {
    this.opts.eventRetentionDays ??= r.eventRetentionDays
    this.opts.deliveryRetentionDays ??= r.deliveryRetentionDays
    if (this.sweepTimer && !this.retentionTimer) this.startRetention()
  }

  private startRetention(): void {
    if (this.closed || this.retentionTimer || this.opts.eventRetentionDays === undefined || this.opts.deliveryRetentionDays === undefined) return
    const every = this.opts.retentionIntervalMs ?? 3_600_000
    const run = () => {
      if (this.retentionRun || this.closed) return
      this.retentionRun = this.purge()
        .then((n) => {
          if (n.events || n.deliveries) this.logger?.info(n, 'purged old events and webhook deliveries')
        })
        .catch((err) => this.logger?.warn({ err }, 'purging old events failed; the next run tries again'))
        .finally(() => (this.retentionRun = undefined))
    }
    this.retentionTimer = setInterval(run, every)
    this.retentionTimer.unref()
    // A first run soon after start (not at once: starting should stay quick).
    setTimeout(run, Math.min(every, 60_000)).unref()
  }

  /**
   * The retention job: deletes, in batches, processed events older than the event retention
   * (unless a delivery of theirs is still kept) and finished deliveries older than the delivery
   * retention (their attempts go with them). Unprocessed events and pending deliveries are never
   * touched — the row-level security policies of trellis_events refuse them too.
   */
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
          if (searchAll) while ((await this.dispatchOnce()) === BATCH && !this.closed);
          else for (let i = 0; i < fresh.length && !this.closed; i += BATCH) await this.dispatchOnce(fresh.slice(i, i + BATCH))
        } catch (err) {
          // Redis away, database busy: the rows stay in the outbox and the sweep tries again.
          this.logger?.warn({ err }, 'dispatching events failed; the sweep retries')
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
    if (this.queue.kind === 'postgres' && (this.opts.worker ?? true) && !this.sink && this.handlers.length === 0) return this.dispatchInline(ids)
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
          ids ? [sqlArray(ids), this.staleMs / 1000] : [this.staleMs / 1000],
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
        const direct = this.queue.kind === 'postgres' && (this.opts.worker ?? true) ? jobs.splice(0, Math.max(0, DIRECT_FAN_OUTS - this.directInFlight)) : []
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
    const [count, claimed] = await this.db.inOrg(
      null,
      async (tx) => {
        const rows = await tx.sql<{ id: string; tenant_id: string; type: string }>(
          `select id, tenant_id, type from events where ${ids ? 'id = any(?::uuid[]) and ' : ''}processed_at is null and (dispatched_at is null or dispatched_at < now() - make_interval(secs => ?::double precision))
            order by id limit ${BATCH} for update skip locked`,
          ids ? [sqlArray(ids), this.staleMs / 1000] : [this.staleMs / 1000],
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
          out.push([tenantId, (await this.fanOutStatement(tx, tenantId, events)).filter((d) => d.id)])
        }
        return [rows.length, out] as const
      },
      'trellis_events',
    )
    for (const [tenantId, deliveries] of claimed) {
      for (const d of deliveries) {
        this.directInFlight++
        void this.attempt(tenantId, d)
          .catch((err) => this.logger?.warn({ err }, 'webhook attempt failed; the sweep retries'))
          .finally(() => this.directInFlight--)
      }
    }
    return count
  }

  /** The safety net: undispatched or lost events, and due deliveries whose job was lost. */
  async sweep(): Promise<void> {
    if (this.closed) return
    this.nudge()
    try {
      const due = await this.db.inOrg(
        null,
        (tx) =>
          tx.sql<{ id: string; tenant_id: string; attempts: number }>(
            `select id, tenant_id, attempts from webhook_deliveries where status = 'pending' and next_attempt_at < now() - make_interval(secs => ?::double precision) order by next_attempt_at limit ${BATCH}`,
            [this.staleMs / 1000],
          ),
        'trellis_events',
      )
      if (due.length) await this.queue.add(due.map((d) => deliverJob(d.id, d.tenant_id, d.attempts + 1)))
    } catch (err) {
      this.logger?.warn({ err }, 'sweeping deliveries failed')
    }
  }

  private async runJob(job: RunningJob): Promise<void> {
    if (job.name === 'event') return this.fanOut(job.data.eventId as string, job.data.tenantId as string, job.data.type as string | undefined)
    if (job.name === 'events') return this.fanOutBatch(job.data.tenantId as string, job.data.events as Array<{ id: string; type: string }>)
    if (job.name === 'deliver') return this.deliver(job.data.deliveryId as string, job.data.tenantId as string, job.data.attempt as number)
    this.logger?.warn({ job: job.id }, 'unknown job dropped')
  }

  /**
   * One event to its subscribers: kernel handlers, plugins, and a delivery row per matching
   * endpoint — whose first attempt is made right here, without another trip through the queue.
   */
  async fanOut(eventId: string, tenantId: string, type?: string, subs?: PluginSubscription[]): Promise<void> {
    const needsEvent =
      type === undefined || (this.sink !== undefined && (subs === undefined || subs.some((s) => matchesAny(type!, s.patterns)))) || this.handlers.some((h) => matchesAny(type!, h.patterns))
    if (needsEvent) {
      const [row] = await this.db.inOrg(
        tenantId,
        (tx) =>
          tx.sql<EventRow>(
            `select e.*, exists (select 1 from events p where p.tenant_id = e.tenant_id and p.subject = e.subject and p.id < e.id and p.processed_at is null) as earlier
               from events e where e.id = ?::uuid and e.tenant_id = ?::uuid`,
            [eventId, tenantId],
          ),
        'trellis_events',
      )
      if (!row || row.processed_at) return
      if (row.earlier) throw new WaitForEarlier(`event ${eventId} waits for an earlier event about ${row.subject}`)
      const event = toEvent(row)
      type = event.type
      for (const h of this.handlers) if (matchesAny(event.type, h.patterns)) await h.fn(event)
      if (this.sink) {
        // Only this tenant's installs are asked, and only matching events handed over.
        for (const s of subs ?? (await this.sink.subscriptions(tenantId))) if (matchesAny(event.type, s.patterns)) await this.sink.deliver(tenantId, s.pluginId, event)
      }
    }
    const leaseSeconds = ((this.opts.totalTimeoutMs ?? 15_000) + 5_000) / 1000
    // One statement: take the event (unless an earlier one about its subject is pending), create
    // its deliveries, already claimed for their first attempt, and mark it processed.
    const rows = await this.db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<ClaimedDelivery & { processed: number; lags: number[] | null }>(
          `with ev as (
             select e.* from events e
              where e.id = ?::uuid and e.processed_at is null
                and not exists (select 1 from events p where p.tenant_id = e.tenant_id and p.subject = e.subject and p.id < e.id and p.processed_at is null)
              for update
           ), ep as (
             select w.id, w.url, w.status, w.secret_enc, w.previous_secret_enc, w.previous_secret_expires_at from webhook_endpoints w
              where w.status = 'active' and w.types && ?::text[] and exists (select 1 from ev)
           ), ins as (
             insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, attempts, next_attempt_at)
             select ${UUID7_SQL}, ?::uuid, ep.id, ev.id, ev.type, 1, now() + make_interval(secs => ?::double precision) from ep cross join ev
             on conflict (endpoint_id, event_id) do nothing
             returning id, endpoint_id
           ), upd as (
             update events set processed_at = now() where id in (select id from ev) returning id, time
           )
           select u.processed, u.lags, x.* from (select count(*)::int as processed, array_agg(extract(epoch from clock_timestamp() - time)::float8) as lags from upd) u left join (
             select ins.id, 1 as attempts, ins.endpoint_id, ep.url, ep.status as endpoint_status, ep.secret_enc, ep.previous_secret_enc, ep.previous_secret_expires_at,
                    ev.id as event_id, ev.type, ev.source, ev.subject, ev.time, ev.data, ev.tenant_id
               from ins join ep on ep.id = ins.endpoint_id cross join ev
           ) x on true`,
          [eventId, sqlArray(patternsMatching(type!)), tenantId, leaseSeconds],
        ),
      'trellis_events',
    )
    if (!rows[0]?.processed) {
      const [state] = await this.db.inOrg(null, (tx) => tx.sql<{ processed_at: Date | null }>('select processed_at from events where id = ?::uuid', [eventId]), 'trellis_events')
      if (!state || state.processed_at) return
      throw new WaitForEarlier(`event ${eventId} waits for an earlier event about its subject`)
    }
    this.observeLags(rows[0]?.lags)
    await Promise.all(rows.filter((d) => d.id).map((d) => this.attempt(tenantId, d)))
  }

  /** Creates the deliveries of a run of one tenant's events, claimed for their first attempt, and marks the events processed. */
  private async fanOutStatement(tx: Tx, tenantId: string, events: Array<{ id: string; type: string }>): Promise<Array<ClaimedDelivery & { processed: string[] | null }>> {
    const leaseSeconds = ((this.opts.totalTimeoutMs ?? 15_000) + 5_000) / 1000
    const ids = sqlArray(events.map((e) => e.id))
    const rows = await tx.sql<ClaimedDelivery & { processed: string[] | null; lags: number[] | null }>(
          `with ev as (
             select e.* from events e
              where e.id = any(?::uuid[]) and e.processed_at is null
                and not exists (select 1 from events p where p.tenant_id = e.tenant_id and p.subject = e.subject and p.id < e.id and p.processed_at is null and p.id <> all(?::uuid[]))
              for update
           ), ep as (
             select ev.id as event_id, w.id, w.url, w.status, w.secret_enc, w.previous_secret_enc, w.previous_secret_expires_at
               from ev join webhook_endpoints w on w.status = 'active'
                and exists (select 1 from unnest(w.types) t where t = '*' or t = ev.type or (right(t, 2) = '.*' and starts_with(ev.type, left(t, -1))))
           ), ins as (
             insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, attempts, next_attempt_at)
             select ${UUID7_SQL}, ?::uuid, ep.id, ev.id, ev.type, 1, now() + make_interval(secs => ?::double precision) from ep join ev on ev.id = ep.event_id
             on conflict (endpoint_id, event_id) do nothing
             returning id, endpoint_id, event_id
           ), upd as (
             update events set processed_at = now() where id in (select id from ev) returning id, time
           )
           select case when coalesce(x.n, 1) = 1 then u.processed end as processed, case when coalesce(x.n, 1) = 1 then u.lags end as lags, x.*
             from (select array_agg(id::text) as processed, array_agg(extract(epoch from clock_timestamp() - time)::float8) as lags from upd) u left join (
             select row_number() over () as n, ins.id, 1 as attempts, ins.endpoint_id, ep.url, ep.status as endpoint_status, ep.secret_enc, ep.previous_secret_enc, ep.previous_secret_expires_at,
                    ev.id as event_id, ev.type, ev.source, ev.subject, ev.time, ev.data, ev.tenant_id
               from ins join ep on ep.id = ins.endpoint_id and ep.event_id = ins.event_id join ev on ev.id = ins.event_id
           ) x on true
           order by x.n`,
          [ids, ids, tenantId, leaseSeconds],
        )
    // Observed when the statement ran; a rolled-back dispatch runs (and is counted) again. The
    // processed ids and lags come on the first row only.
    this.observeLags(rows[0]?.lags)
    return rows
  }

  private observeLags(lags: number[] | null | undefined): void {
    if (!lags) return
    this.metrics.fannedOut.inc(lags.length)
    for (const l of lags) this.metrics.dispatchLag.observe(Math.max(0, l))
  }

  /** Several events of one tenant: one statement for all, unless a kernel handler or plugin needs each. */
  async fanOutBatch(tenantId: string, events: Array<{ id: string; type: string }>): Promise<void> {
    // A plugin subscribed anywhere must not cost every tenant the one-event-at-a-time path:
    // only this tenant's subscriptions, and only matching events, need each event read.
    const subs = this.sink ? await this.sink.subscriptions(tenantId) : []
    if (events.some((e) => subs.some((s) => matchesAny(e.type, s.patterns)) || this.handlers.some((h) => matchesAny(e.type, h.patterns)))) {
      for (const e of events) await this.fanOut(e.id, tenantId, e.type, subs)
      return
    }
    const rows = await this.db.inOrg(tenantId, (tx) => this.fanOutStatement(tx, tenantId, events), 'trellis_events')
    const processed = new Set(rows[0]?.processed ?? [])
    await Promise.all(rows.filter((d) => d.id).map((d) => this.attempt(tenantId, d)))
    const rest = events.filter((e) => !processed.has(e.id))
    if (rest.length) {
      // Waiting for an earlier event about the same subject (or already done elsewhere): try those again shortly.
      const open = await this.db.inOrg(null, (tx) => tx.sql<{ id: string }>('select id from events where id = any(?::uuid[]) and processed_at is null', [sqlArray(rest.map((e) => e.id))]), 'trellis_events')
      const waiting = rest.filter((e) => open.some((o) => o.id === e.id))
      if (waiting.length) await this.queue.add([{ id: `evt_${waiting[0]!.id}_w${Date.now()}`, name: 'events', data: { tenantId, events: waiting }, delayMs: 100 }])
    }
  }

  /** One attempt of one webhook delivery. */
  async deliver(deliveryId: string, tenantId: string, attempt: number): Promise<void> {
    const leaseSeconds = ((this.opts.totalTimeoutMs ?? 15_000) + 5_000) / 1000
    const [d] = await this.db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<ClaimedDelivery>(
          `update webhook_deliveries d set attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ?::double precision), updated_at = now()
             from webhook_endpoints e, events v
            where d.id = ?::uuid and d.status = 'pending' and d.attempts = ? and e.id = d.endpoint_id and v.id = d.event_id
           returning d.id, d.attempts, d.endpoint_id, e.url, e.status as endpoint_status, e.secret_enc, e.previous_secret_enc, e.previous_secret_expires_at,
                     v.id as event_id, v.type, v.source, v.subject, v.time, v.data, v.tenant_id`,
          [leaseSeconds, deliveryId, attempt - 1],
        ),
      'trellis_events',
    )
    if (!d) return // delivered, dead-lettered, or this attempt already ran
    await this.attempt(tenantId, d)
  }

  /** Sends a claimed delivery and records the outcome: delivered, retry later, or dead letter. */
  private async attempt(tenantId: string, d: ClaimedDelivery): Promise<void> {
    if (d.endpoint_status !== 'active') {
      await this.record(tenantId, d, { status: 'failed', error: 'endpoint disabled', durationMs: 0, failureReason: 'endpoint_disabled' })
      return
    }
    const secrets = [this.secrets.open(d.secret_enc, webhookSecretAd(d.endpoint_id))]
    if (d.previous_secret_enc && d.previous_secret_expires_at && new Date(d.previous_secret_expires_at).getTime() > Date.now()) secrets.push(this.secrets.open(d.previous_secret_enc, webhookSecretAd(d.endpoint_id)))
    const event = toEvent(d)
    const body = JSON.stringify({ id: event.id, type: event.type, timestamp: event.time, source: event.source, subject: event.subject, tenantId: event.tenantId, data: event.data })
    const timestamp = Math.floor(Date.now() / 1000)
    const started = performance.now()
    let statusCode: number | null = null
    let response: string | null = null
    let error: string | null = null
    try {
      const res = await egressRequest(this.egress, {
        url: d.url,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Trellis-Webhooks/1',
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(secrets, event.id, timestamp, body),
        },
        body,
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 5_000,
        totalTimeoutMs: this.opts.totalTimeoutMs ?? 15_000,
        maxResponseBytes: 1024,
      })
      statusCode = res.status
      response = res.body.replace(/\0/g, '')
    } catch (err) {
      const e = err as { code?: string; message?: string }
      error = `${e.code ?? 'ERROR'}: ${e.message ?? String(err)}`.slice(0, 500)
    }
    const elapsed = performance.now() - started
    const durationMs = Math.round(elapsed)
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300
    const outcome = ok ? 'success' : statusCode !== null ? 'http_error' : 'network_error'
    this.metrics.attempts.inc({ outcome })
    this.metrics.attemptDuration.observe({ outcome }, elapsed / 1000)
    if (ok) return this.record(tenantId, d, { status: 'delivered', statusCode, response, durationMs })
    if (statusCode === 410) return this.record(tenantId, d, { status: 'failed', statusCode, response, durationMs, disableEndpoint: true, failureReason: 'gone' })
    const schedule = this.opts.retryScheduleMs
    if (d.attempts > schedule.length) {
      this.logger?.warn({ tenantId, deliveryId: d.id, endpointId: d.endpoint_id, eventId: d.event_id, statusCode, error }, 'webhook delivery dead-lettered after its last retry')
      return this.record(tenantId, d, { status: 'failed', statusCode, response, error, durationMs, failureReason: 'dead_letter' })
    }
    // Exponential schedule with ±20 % jitter, so a recovering receiver is not hit by a thundering herd.
    const delay = Math.round(schedule[d.attempts - 1]! * (0.8 + Math.random() * 0.4))
    await this.record(tenantId, d, { status: 'pending', statusCode, response, error, durationMs, retryInMs: delay })
    this.metrics.retries.inc()
    await this.queue.add([{ ...deliverJob(d.id, tenantId, d.attempts + 1), delayMs: delay }]).catch((err) => this.logger?.warn({ err }, 'queueing a retry failed; the sweep retries'))
  }

  private records = new Map<string, Array<{ d: ClaimedDelivery; r: RecordInput; done: (err?: unknown) => void }>>()
  private recordFlush: Promise<void> | undefined

  /**
   * Records an attempt's outcome. Outcomes that arrive together are written together: one
   * transaction per tenant for all of them.
   */
  private record(tenantId: string, d: ClaimedDelivery, r: RecordInput): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.records.get(tenantId)
      if (!list) this.records.set(tenantId, (list = []))
      list.push({ d, r, done: (err) => (err ? reject(err) : resolve()) })
      if (!this.recordFlush) this.recordFlush = new Promise<void>((r) => setImmediate(r)).then(() => this.flushRecords())
    })
  }

  private async flushRecords(): Promise<void> {
    const batches = [...this.records]
    this.records.clear()
    this.recordFlush = undefined
    let emitted = 0
    await Promise.all(
      batches.map(async ([tenantId, items]) => {
        try {
          emitted += await this.db.inOrg(
            tenantId,
            async (tx: Tx) => {
              let written = 0
              const retry = (x: RecordInput) => (x.retryInMs === undefined ? null : String(x.retryInMs / 1000))
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
              // Tell the tenant, in the same transaction, of each delivery that failed for good —
              // never of a delivery of that same news, so a failing endpoint cannot feed itself.
              const failed = items.filter((i) => (i.r.failureReason === 'dead_letter' || i.r.failureReason === 'gone') && i.d.type !== DELIVERY_FAILED)
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
                await tx.sql(`update webhook_endpoints set status = 'disabled', disabled_reason = ?, updated_at = now() where id = ?::uuid`, ['the receiver answered 410 Gone', i.d.endpoint_id])
                this.logger?.warn({ tenantId, endpointId: i.d.endpoint_id }, 'webhook endpoint disabled: the receiver answered 410 Gone')
              }
              return written
            },
            'trellis_events',
          )
          for (const i of items) {
            const reason = i.r.failureReason
            if (i.r.status === 'delivered') this.metrics.deliveries.inc({ outcome: 'delivered' })
            else if (reason) {
              this.metrics.deliveries.inc({ outcome: reason })
              this.metrics.deadLetters.inc({ reason })
            }
            i.done()
          }
        } catch (err) {
          for (const i of items) i.done(err)
        }
      }),
    )
    if (emitted) {
      this.metrics.emitted.inc(emitted)
      this.nudge()
    }
  }

  /** Queues another attempt of a delivery (redelivery from the API). */
  async requeue(deliveryId: string, tenantId: string, attempts: number): Promise<void> {
    await this.queue.add([deliverJob(deliveryId, tenantId, attempts + 1)])
  }

  /** Waits until nothing is being dispatched (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.running || this.scheduled) await (this.running ?? new Promise((r) => setImmediate(r)))
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    if (this.retentionTimer) clearInterval(this.retentionTimer)
    this.unsetBacklog?.()
    await this.retentionRun
    await this.running
    for (let i = 0; i < 200 && this.directInFlight > 0; i++) await new Promise((r) => setTimeout(r, 10))
    await this.queue.close()
    await this.recordFlush
    this.egress.close()
  }
}

function deliverJob(deliveryId: string, tenantId: string, attempt: number): QueueJob {
  return { id: `dlv_${deliveryId}_${attempt}`, name: 'deliver', data: { deliveryId, tenantId, attempt } }
}
