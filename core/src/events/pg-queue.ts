import type { Logger } from 'pino'
import { sqlArray, type Database, type Tx } from '../db/database.js'
import { RETRY_DELAY_MS, type JobHandler, type JobQueue, type QueueJob } from './queue.js'

const LEASE_SECONDS = 60

/**
 * The embedded default: a job table claimed with FOR UPDATE SKIP LOCKED, leased so that a
 * crashed worker's jobs run again, polled (and woken at once by adds in this process).
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
    private readonly db: Database,
    private readonly name: string,
    private readonly logger?: Logger,
    private readonly pollMs = 200,
  ) {}

  async add(jobs: QueueJob[], tx?: Tx): Promise<void> {
    if (jobs.length === 0) return
    const insert = (t: Tx) =>
      t.sql(
        `insert into event_jobs (id, queue, name, data, run_at)
         select j.id, ?, j.name, j.data::jsonb, now() + make_interval(secs => j.delay / 1000.0)
           from unnest(?::text[], ?::text[], ?::text[], ?::int[]) as j(id, name, data, delay)
         on conflict (id) do nothing`,
        [this.name, sqlArray(jobs.map((j) => j.id)), sqlArray(jobs.map((j) => j.name)), sqlArray(jobs.map((j) => JSON.stringify(j.data))), sqlArray(jobs.map((j) => String(Math.max(0, Math.round(j.delayMs ?? 0)))))],
      )
    if (tx) await insert(tx)
    else await this.db.inOrg(null, insert, 'trellis_events')
    this.poke()
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
      let jobs: Array<{ id: string; name: string; data: Record<string, unknown>; attempts: number }> = []
      try {
        this.woken = false
        jobs = await this.db.inOrg(
          null,
          (tx) =>
            tx.sql(
              `update event_jobs set locked_until = now() + make_interval(secs => ${LEASE_SECONDS}), attempts = attempts + 1
                where id in (select id from event_jobs where queue = ? and run_at <= now() and (locked_until is null or locked_until < now())
                              order by run_at, seq limit ? for update skip locked)
               returning id, name, data, attempts, seq`,
              [this.name, this.concurrency],
            ),
          'trellis_events',
        )
        jobs.sort((a, b) => Number((a as unknown as { seq: string }).seq) - Number((b as unknown as { seq: string }).seq))
      } catch (err) {
        if (!this.closed) this.logger?.error({ err }, 'claiming jobs failed')
      }
      if (jobs.length === 0) {
        if (this.closed) break
        if (!this.woken) await new Promise<void>((r) => {
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
            if (failed.length) await tx.sql(`update event_jobs set locked_until = null, run_at = now() + make_interval(secs => ${RETRY_DELAY_MS / 1000}) where id = any(?::text[])`, [sqlArray(failed)])
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
