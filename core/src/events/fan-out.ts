import { sqlArray, type TransactionSource, type Tx } from '../db/database.js'
import type { EventMetrics } from '../observability/metrics.js'
import { matchesAny, type TrellisEvent } from './catalogue.js'
import type { JobQueue } from './queue.js'
import type { KernelEventHandler, PluginEventSink, PluginSubscription } from './subscribers.js'
import type { ClaimedDelivery } from './delivery-types.js'
import { leaseSeconds, type DeliveryOptions, type WebhookDelivery } from './webhook-delivery.js'

// A time-ordered (UUIDv7-layout) id made in SQL, for rows whose number is known only there.
const UUID7_SQL = `(lpad(to_hex(floor(extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 3) || to_hex(8 + floor(random() * 4)::int) || substr(md5(random()::text), 1, 15))::uuid`

/** An event is waiting for an earlier one about the same subject: its job runs again shortly. */
export class WaitForEarlier extends Error {}

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

function toEvent(r: EventRow): TrellisEvent {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    type: r.type,
    source: r.source,
    subject: r.subject,
    time: new Date(r.time).toISOString(),
    data: r.data,
  }
}

export interface Subscribers {
  handlers: ReadonlyArray<{ patterns: string[]; fn: KernelEventHandler }>
  sink: PluginEventSink | undefined
}

/**
 * Fan-out: an event to its subscribers — kernel handlers, plugins, and a delivery row per
 * matching webhook endpoint. Runs in order per subject (an event waits while an earlier one
 * about its subject is unprocessed) and gives each event its number in its subject's stream.
 * Of the deliveries it creates, those with no earlier delivery about their subject pending at
 * their endpoint are claimed for their first attempt, made right here; the others wait to be
 * released when the one before them finishes.
 */
export class FanOut {
  constructor(
    private readonly db: TransactionSource,
    private readonly queue: JobQueue,
    private readonly delivery: WebhookDelivery,
    private readonly subscribers: Subscribers,
    private readonly metrics: EventMetrics,
    private readonly opts: DeliveryOptions,
  ) {}

  /** One event, read and handed to kernel handlers and plugins when any needs it. */
  async fanOut(eventId: string, tenantId: string, type?: string, subs?: PluginSubscription[]): Promise<void> {
    const { handlers, sink } = this.subscribers
    const needsEvent =
      type === undefined ||
      (sink !== undefined && (subs === undefined || subs.some((s) => matchesAny(type!, s.patterns)))) ||
      handlers.some((h) => matchesAny(type!, h.patterns))
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
      for (const h of handlers) if (matchesAny(event.type, h.patterns)) await h.fn(event)
      if (sink) {
        // Only this tenant's installs are asked, and only matching events handed over.
        for (const s of subs ?? (await sink.subscriptions(tenantId)))
          if (matchesAny(event.type, s.patterns)) await sink.deliver(tenantId, s.pluginId, event)
      }
    }
    const rows = await this.db.inOrg(
      tenantId,
      (tx) => this.statement(tx, tenantId, [{ id: eventId, type: type! }]),
      'trellis_events',
    )
    if (!rows[0]?.processed?.includes(eventId)) {
      const [state] = await this.db.inOrg(
        null,
        (tx) => tx.sql<{ processed_at: Date | null }>('select processed_at from events where id = ?::uuid', [eventId]),
        'trellis_events',
      )
      if (!state || state.processed_at) return
      throw new WaitForEarlier(`event ${eventId} waits for an earlier event about its subject`)
    }
    await this.attemptAll(tenantId, rows)
  }

  /** Several events of one tenant: one statement for all, unless a kernel handler or plugin needs each. */
  async fanOutBatch(tenantId: string, events: Array<{ id: string; type: string }>): Promise<void> {
    const { handlers, sink } = this.subscribers
    // A plugin subscribed anywhere must not cost every tenant the one-event-at-a-time path:
    // only this tenant's subscriptions, and only matching events, need each event read.
    const subs = sink ? await sink.subscriptions(tenantId) : []
    if (
      events.some(
        (e) => subs.some((s) => matchesAny(e.type, s.patterns)) || handlers.some((h) => matchesAny(e.type, h.patterns)),
      )
    ) {
      for (const e of events) await this.fanOut(e.id, tenantId, e.type, subs)
      return
    }
    const rows = await this.db.inOrg(tenantId, (tx) => this.statement(tx, tenantId, events), 'trellis_events')
    const processed = new Set(rows[0]?.processed ?? [])
    await this.attemptAll(tenantId, rows)
    const rest = events.filter((e) => !processed.has(e.id))
    if (rest.length) {
      // Waiting for an earlier event about the same subject (or already done elsewhere): try those again shortly.
      const open = await this.db.inOrg(
        null,
        (tx) =>
          tx.sql<{ id: string }>('select id from events where id = any(?::uuid[]) and processed_at is null', [
            sqlArray(rest.map((e) => e.id)),
          ]),
        'trellis_events',
      )
      const waiting = rest.filter((e) => open.some((o) => o.id === e.id))
      if (waiting.length)
        await this.queue.add([
          {
            id: `evt_${waiting[0]!.id}_w${Date.now()}`,
            name: 'events',
            data: { tenantId, events: waiting },
            delayMs: 100,
          },
        ])
    }
  }

  /** First attempts of the deliveries a fan-out claimed. */
  attemptAll(tenantId: string, rows: ReadonlyArray<Partial<ClaimedDelivery>>): Promise<unknown> {
    return Promise.all(rows.filter((d) => d.id).map((d) => this.delivery.attempt(tenantId, d as ClaimedDelivery)))
  }

  /**
   * One statement: take the events (each unless an earlier one about its subject, outside this
   * run, is unprocessed), number them in their subjects' streams, create their deliveries —
   * at the endpoints found by each event's patterns in an index, not by testing every endpoint
   * of the tenant (ADR 0105) — claimed for the first attempt where nothing earlier about the subject is pending at that
   * endpoint — and mark them processed. Returns the claimed deliveries; the processed ids and
   * the dispatch lags come on the first row only.
   */
  async statement(
    tx: Tx,
    tenantId: string,
    events: Array<{ id: string; type: string }>,
  ): Promise<Array<ClaimedDelivery & { processed: string[] | null }>> {
    const ids = sqlArray(events.map((e) => e.id))
    const rows = await tx.sql<ClaimedDelivery & { processed: string[] | null; lags: number[] | null }>(
      `with ev0 as (
         select e.* from events e
          where e.id = any(?::uuid[]) and e.processed_at is null
            and not exists (select 1 from events p where p.tenant_id = e.tenant_id and p.subject = e.subject and p.id < e.id and p.processed_at is null and p.id <> all(?::uuid[]))
          for update
       ), cnt as (
         insert into event_subject_seqs as c (tenant_id, subject, seq)
         select ?::uuid, subject, count(*) from ev0 group by subject
         on conflict (tenant_id, subject) do update set seq = c.seq + excluded.seq
         returning c.subject, c.seq as last
       ), ev as (
         select ev0.*, cnt.last - count(*) over (partition by ev0.subject) + row_number() over (partition by ev0.subject order by ev0.id) as nseq
           from ev0 join cnt on cnt.subject = ev0.subject
       ), ep as (
         select ev.id as event_id, ev.subject, ev.nseq, w.id, w.url, w.status, w.secret_enc, w.previous_secret_enc, w.previous_secret_expires_at
           from ev join trellis_event_endpoints((select array_agg(distinct ev.type) from ev)) m on m.event_type = ev.type
           join webhook_endpoints w on w.id = m.endpoint_id and w.status = 'active'
       ), blockers as (
         -- Pending deliveries about these subjects at these endpoints, locked: one being recorded
         -- as finished right now is seen finished (after its commit) rather than still pending,
         -- and one locked here is recorded only after this commit, when its transaction sees
         -- the deliveries waiting behind it and releases the next. Locked in id order, as the
         -- recorder locks, so the two cannot deadlock.
         select p.endpoint_id, p.subject from webhook_deliveries p
          where p.status = 'pending' and p.order_seq is not null and (p.endpoint_id, p.subject) in (select ep.id, ep.subject from ep)
          order by p.id for share
       ), cand as (
         select ep.*, (row_number() over (partition by ep.id, ep.subject order by ep.nseq) = 1
                and not exists (select 1 from blockers b where b.endpoint_id = ep.id and b.subject = ep.subject)) as head
           from ep
       ), ins as (
         insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, subject, order_seq, attempts, next_attempt_at)
         select ${UUID7_SQL}, ?::uuid, cand.id, ev.id, ev.type, ev.subject, ev.nseq, case when cand.head then 1 else 0 end,
                case when cand.head then now() + make_interval(secs => ?::double precision) else now() end
           from cand join ev on ev.id = cand.event_id
         on conflict (endpoint_id, event_id) do nothing
         returning id, endpoint_id, event_id, attempts
       ), upd as (
         update events e set processed_at = now(), seq = ev.nseq from ev where e.id = ev.id returning e.id, e.time
       )
       select case when coalesce(x.n, 1) = 1 then u.processed end as processed, case when coalesce(x.n, 1) = 1 then u.lags end as lags, x.*
         from (select array_agg(id::text) as processed, array_agg(extract(epoch from clock_timestamp() - time)::float8) as lags from upd) u left join (
         select row_number() over () as n, ins.id, 1 as attempts, ins.endpoint_id, cand.url, cand.status as endpoint_status, cand.secret_enc, cand.previous_secret_enc, cand.previous_secret_expires_at,
                ev.id as event_id, ev.type, ev.source, ev.subject, ev.nseq as seq, ev.time, ev.data, ev.tenant_id
           from ins join cand on cand.id = ins.endpoint_id and cand.event_id = ins.event_id join ev on ev.id = ins.event_id
          where ins.attempts = 1
       ) x on true
       order by x.n`,
      [ids, ids, tenantId, tenantId, leaseSeconds(this.opts)],
    )
    // Observed when the statement ran; a rolled-back fan-out runs (and is counted) again.
    this.observeLags(rows[0]?.lags)
    return rows
  }

  private observeLags(lags: number[] | null | undefined): void {
    if (!lags) return
    this.metrics.fannedOut.inc(lags.length)
    for (const l of lags) this.metrics.dispatchLag.observe(Math.max(0, l))
  }
}
