import type { Logger } from 'pino'
import { sqlArray, type TransactionSource, type Tx } from '../db/database.js'
import {
  RETRY_DELAY_MS,
  type AddResult,
  type JobHandler,
  type JobQueue,
  type QueueJob,
  type QueueOptions,
} from './queue.js'

const LEASE_SECONDS = 60

/**
 * The embedded default: a job table claimed with FOR UPDATE SKIP LOCKED, leased so that a
 * crashed worker's jobs run again, polled (and woken at once by adds in this process).
 * Tenants are taken in turn: each job is numbered in its tenant's line when added (`turn`) and
 * claims go by that number, so a quiet tenant's first job comes before a busy tenant's 600th
 * (ADR 0012).
 */
export class PgJobQueue implements JobQueue {
  readonly kind = 'postgres' as const
  private handler: JobHandler | undefined
  private concurrency = 8
  private closed = false
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  private woken = false

  constructor(
    /** Where the queue claims and completes jobs (its polling). */
    private readonly db: TransactionSource,
    private readonly name: string,
    private readonly logger?: Logger,
    private readonly pollMs = 200,
    private readonly opts: QueueOptions & {
      /**
       * Where jobs added outside a transaction are written, when not `db`: a queue polled from the
       * background pool whose jobs are added by requests (a workflow started, a long generation
       * queued) adds them on the request pool, so a request never waits for background work.
       */
      adds?: TransactionSource
    } = {},
  ) {}

  async add(jobs: QueueJob[], tx?: Tx): Promise<AddResult> {
    if (jobs.length === 0) return { refused: [] }
    const cap = this.opts.tenantCap ?? null
    // One statement: the jobs new to the queue, numbered within their tenant, go in while their
    // tenant's queued jobs plus their number stay within the cap; the others are reported. A
    // job's turn is its place in its tenant's line, never before the tenant's earlier jobs.
    const insert = (t: Tx) =>
      t.sql<{ id: string }>(
        `with incoming as (
           select j.id, j.name, j.data::jsonb as data, j.delay, coalesce(j.data::jsonb->>'tenantId', '') as tenant, j.ord
             from unnest(?::text[], ?::text[], ?::text[], ?::int[]) with ordinality as j(id, name, data, delay, ord)
            where not exists (select 1 from event_jobs e where e.id = j.id)),
         numbered as (select i.*, row_number() over (partition by i.tenant order by i.ord) as n from incoming i),
         queued as (
           select e.tenant_id as tenant, count(*) as n, max(e.turn) as top from event_jobs e
            where e.queue = ? and e.tenant_id in (select tenant from incoming) group by 1),
         judged as (
           select x.*, greatest(coalesce(q.n, 0) + x.n, coalesce(q.top, 0)) as turn,
                  ?::int is not null and coalesce(q.n, 0) + x.n > ?::int as over
             from numbered x left join queued q on q.tenant = x.tenant),
         inserted as (
           insert into event_jobs (id, queue, name, data, run_at, tenant_id, turn)
           select id, ?, name, data, now() + make_interval(secs => delay / 1000.0), tenant, turn from judged where not over order by ord
           on conflict (id) do nothing)
         select id from judged where over order by ord`,
        [
          sqlArray(jobs.map((j) => j.id)),
          sqlArray(jobs.map((j) => j.name)),
          sqlArray(jobs.map((j) => JSON.stringify(j.data))),
          sqlArray(jobs.map((j) => String(Math.max(0, Math.round(j.delayMs ?? 0))))),
          this.name,
          cap,
          cap,
          this.name,
        ],
      )
    const refused = tx ? await insert(tx) : await (this.opts.adds ?? this.db).inOrg(null, insert, 'trellis_events')
    if (refused.length)
      this.logger?.warn(
        { queue: this.name, refused: refused.length, cap },
        'tenant at its queue cap: its further work waits in the database',
      )
    this.poke()
    return { refused: refused.map((r) => r.id) }
  }

  work(handler: JobHandler, opts: { concurrency?: number } = {}): void {
    this.handler = handler
    this.concurrency = opts.concurrency ?? 8
    this.loop ??= this.run()
  }

  private poke(): void {
    this.woken = true
    this.wake?.()
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let jobs: Array<{ id: string; name: string; data: Record<string, unknown>; attempts: number; pos: string }> = []
      try {
        this.woken = false
        jobs = await this.db.inOrg(
          null,
          (tx) =>
            tx.sql(
              `with picked as (
                 select id, row_number() over (order by turn, run_at, seq) as pos from event_jobs
                  where queue = ? and run_at <= now() and (locked_until is null or locked_until < now())
                  order by turn, run_at, seq limit ?),
               claimed as (
                 select j.id, p.pos from event_jobs j join picked p on p.id = j.id
                  where j.run_at <= now() and (j.locked_until is null or j.locked_until < now())
                  for update of j skip locked)
               update event_jobs e set locked_until = now() + make_interval(secs => ${LEASE_SECONDS}), attempts = e.attempts + 1
                 from claimed c where e.id = c.id
               returning e.id, e.name, e.data, e.attempts, c.pos::text as pos`,
              [this.name, this.concurrency],
            ),
          'trellis_events',
        )
        // Handlers start in the order claimed: every tenant's next job before anyone's following one.
        jobs.sort((a, b) => Number(a.pos) - Number(b.pos))
      } catch (err) {
        if (!this.closed) this.logger?.error({ err }, 'claiming jobs failed')
      }
      if (jobs.length === 0) {
        if (this.closed) break
        if (!this.woken)
          await new Promise<void>((r) => {
            const t = setTimeout(r, this.pollMs)
            this.wake = () => {
              clearTimeout(t)
              r()
            }
          })
        this.wake = undefined
        continue
      }
      const done: string[] = []
      const failed: string[] = []
      await Promise.all(
        jobs.map(async (j) => {
          try {
            await this.handler!({ id: j.id, name: j.name, data: j.data, attempt: j.attempts })
            done.push(j.id)
          } catch (err) {
            this.logger?.warn({ err, job: j.id }, 'job failed; it runs again')
            failed.push(j.id)
          }
        }),
      )
      try {
        await this.db.inOrg(
          null,
          async (tx) => {
            if (done.length) await tx.sql('delete from event_jobs where id = any(?::text[])', [sqlArray(done)])
            if (failed.length)
              await tx.sql(
                `update event_jobs set locked_until = null, run_at = now() + make_interval(secs => ${RETRY_DELAY_MS / 1000}) where id = any(?::text[])`,
                [sqlArray(failed)],
              )
          },
          'trellis_events',
        )
      } catch (err) {
        // The lease runs out and the jobs run again: at least once.
        if (!this.closed) this.logger?.error({ err }, 'completing jobs failed')
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true
    this.wake?.()
    await this.loop
  }
}
