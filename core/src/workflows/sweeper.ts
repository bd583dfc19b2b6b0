import type { Logger } from 'pino'
import type { Database } from '../db/database.js'
import type { QueueJob } from '../events/queue.js'
import type { TenantTx } from '../plugins/tenant-tx.js'
import type { WorkflowClock } from './clock.js'
import { escalateTask } from './human-tasks.js'
import { jobOf, type EventWait } from './instance-row.js'
import type { WorkflowSchedules } from './schedules.js'
import type { InstanceTransitions } from './transitions.js'

export interface SweeperDeps {
  db: Pick<Database, 'inOrg'>
  logger: Logger
  tenantTx: TenantTx
  clock: WorkflowClock
  transitions: InstanceTransitions
  schedules: WorkflowSchedules
  enqueue(jobs: QueueJob[]): Promise<void>
}

export interface SweeperOptions {
  /** A running step silent for this long is scheduled again (its job was lost). */
  stalledMs: number
  /** How often the installations are looked at for new schedules (a known schedule is looked at when it is due). */
  scheduleScanMs: number
}

const at = (ms: number) => new Date(ms).toISOString()

/**
 * What no job wakes: timers that are due, event waits that timed out, tasks past their SLA
 * (by the runtime's clock), steps whose job was lost (by the database's), and schedules.
 * One sweep at a time; a sweep asked for while one runs runs after it.
 */
export class WorkflowSweeper {
  private current: Promise<void> | undefined
  private queued: Promise<void> | undefined
  private nextScheduleCheck = Number.NEGATIVE_INFINITY
  private closed = false

  constructor(
    private readonly deps: SweeperDeps,
    private readonly opts: SweeperOptions,
  ) {}

  /** Sweeps once (after the sweep in progress, if any); resolves when done. */
  sweep(): Promise<void> {
    if (this.queued) return this.queued
    if (!this.current) {
      this.current = this.once().finally(() => (this.current = undefined))
      return this.current
    }
    this.queued = this.current.then(() => {
      this.queued = undefined
      return this.sweep()
    })
    return this.queued
  }

  close(): void {
    this.closed = true
  }

  private async once(): Promise<void> {
    if (this.closed) return
    const now = this.deps.clock.now()
    try {
      await this.dueWaits(now)
      await this.dueTasks(now)
      await this.stalled()
      if (now >= this.nextScheduleCheck) {
        const earliest = await this.deps.schedules.run(now)
        this.nextScheduleCheck = Math.min(now + this.opts.scheduleScanMs, earliest)
      }
    } catch (err) {
      if (!this.closed) this.deps.logger.warn({ err }, 'workflow sweep failed')
    }
  }

  private scan<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.deps.db.inOrg(null, (tx) => tx.sql<T>(sql, params), 'trellis_events')
  }

  /** Timers that are due, and event waits that timed out. */
  private async dueWaits(now: number): Promise<void> {
    const due = await this.scan<{ id: string; tenant_id: string }>(
      `select id, tenant_id from workflow_instances where status = 'waiting' and run_at <= ?::timestamptz and wait ->> 'kind' in ('timer', 'event') order by run_at limit 100`,
      [at(now)],
    )
    for (const d of due) {
      const jobs = await this.deps.tenantTx(d.tenant_id, (tx) =>
        this.deps.transitions.resume(
          tx,
          d.tenant_id,
          d.id,
          (w) => w.kind === 'timer' || w.kind === 'event',
          (w) => (w.kind === 'timer' ? w.next : (w as EventWait).onTimeout),
          (w) => (w.kind === 'timer' ? w.input : { event: null, timedOut: true, input: (w as EventWait).input }),
        ),
      )
      await this.deps.enqueue(jobs)
    }
  }

  /** Tasks past their SLA: escalated to their escalation role (once), and counted as breaches. */
  private async dueTasks(now: number): Promise<void> {
    const due = await this.scan<{ id: string; tenant_id: string }>(
      `select id, tenant_id from workflow_tasks where status in ('open', 'claimed') and escalated_at is null and due_at <= ?::timestamptz order by due_at limit 100`,
      [at(now)],
    )
    for (const d of due) await this.deps.tenantTx(d.tenant_id, (tx) => escalateTask(tx, d.id, now))
  }

  /** Steps whose job was lost (a crash between commit and enqueue, a Redis restart) run again. */
  private async stalled(): Promise<void> {
    const ms = this.opts.stalledMs
    const rows = await this.scan<{ id: string; tenant_id: string; step_seq: number; attempt: number }>(
      `select id, tenant_id, step_seq, attempt from workflow_instances where status in ('running', 'compensating') and run_at <= now() - (? || ' milliseconds')::interval
          and updated_at <= now() - (? || ' milliseconds')::interval order by run_at limit 100`,
      [String(ms), String(ms)],
    )
    const bucket = `.r${Math.floor(Date.now() / ms)}`
    await this.deps.enqueue(rows.map((r) => jobOf(r.tenant_id, r.id, r.step_seq, r.attempt, 0, bucket)))
  }
}
