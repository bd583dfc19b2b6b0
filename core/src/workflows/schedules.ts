import type { Logger } from 'pino'
import type { Database, Tx } from '../db/database.js'
import type { QueueJob } from '../events/queue.js'
import type { TenantTx } from '../plugins/tenant-tx.js'
import type { PluginVersion } from '../plugins/versions.js'
import type { CreateInstance } from './instance-create.js'
import { iso } from './instance-row.js'
import { scheduleOf, type Schedule } from './schedule-spec.js'
import type { WorkflowPlugins } from './workflow-plugins.js'

export interface ScheduleDeps {
  db: Pick<Database, 'inOrg'>
  logger: Logger
  tenantTx: TenantTx
  plugins: WorkflowPlugins
  create: CreateInstance
  enqueue(jobs: QueueJob[]): Promise<void>
}

interface Scheduled {
  id: string
  tenant_id: string
  manifest: PluginVersion['manifest']
}

/**
 * Workflows with a schedule (`start.everyMs` or `start.cron`) start when it comes due by the
 * runtime's clock — once per due time across processes: the schedule row is locked while it
 * moves on, and the instance's start key is the due time. A kernel that was down over several
 * due times starts one run for them, then follows the schedule from now.
 */
export class WorkflowSchedules {
  private readonly parsed = new Map<string, Schedule | Error>()

  constructor(private readonly deps: ScheduleDeps) {}

  /** Starts what is due at `now`; resolves to the earliest next start known (Infinity: none). */
  async run(now: number): Promise<number> {
    const rows = await this.deps.db.inOrg(
      null,
      (tx) =>
        tx.sql<Scheduled>(
          `select i.id, i.tenant_id, v.manifest from plugin_installations i join plugin_versions v on v.id = i.version_id where i.status = 'active' and v.manifest -> 'workflows' is not null`,
        ),
      'trellis_events',
    )
    let earliest = Number.POSITIVE_INFINITY
    for (const r of rows) {
      for (const [name, wf] of Object.entries(r.manifest.workflows ?? {})) {
        const schedule = this.scheduleOf(r, name, wf.start)
        if (!schedule) continue
        try {
          const { next, jobs } = await this.deps.tenantTx(r.tenant_id, (tx) => this.step(tx, r, name, schedule, now))
          earliest = Math.min(earliest, next)
          await this.deps.enqueue(jobs)
        } catch (err) {
          this.deps.logger.warn({ err, installationId: r.id, workflow: name }, 'scheduled workflow did not start')
        }
      }
    }
    return earliest
  }

  /** One schedule at `now`: created, left alone, or moved on with a run started; resolves to its next start. */
  private async step(
    tx: Tx,
    r: Scheduled,
    name: string,
    schedule: Schedule,
    now: number,
  ): Promise<{ next: number; jobs: QueueJob[] }> {
    const never = { next: Number.POSITIVE_INFINITY, jobs: [] }
    const [s] = await tx.sql<{ next_at: Date }>(
      'select next_at from workflow_schedules where installation_id = ?::uuid and workflow = ? for update',
      [r.id, name],
    )
    if (!s) {
      const first = schedule.next(now)
      if (first === undefined) return never
      await tx.sql(
        'insert into workflow_schedules (installation_id, workflow, next_at) values (?::uuid, ?, ?::timestamptz) on conflict do nothing',
        [r.id, name, iso(first)],
      )
      return { next: first, jobs: [] }
    }
    const due = new Date(s.next_at).getTime()
    if (due > now) return { next: due, jobs: [] }
    const next = schedule.next(now)
    await tx.sql(
      `update workflow_schedules set next_at = ?::timestamptz where installation_id = ?::uuid and workflow = ?`,
      [next === undefined ? 'infinity' : iso(next), r.id, name],
    )
    const jobs: QueueJob[] = []
    const inst = (await this.deps.plugins.installed(r.tenant_id, tx)).byId.get(r.id)
    if (inst) {
      const version = await this.deps.plugins.versionOf(tx, inst)
      const at = iso(due)
      const created = await this.deps.create(
        tx,
        r.tenant_id,
        inst,
        version,
        name,
        { scheduledAt: at },
        'schedule',
        `schedule:${at}`,
      )
      if (created) jobs.push(created.job)
    }
    return { next: next ?? Number.POSITIVE_INFINITY, jobs }
  }

  private scheduleOf(r: Scheduled, name: string, start: Parameters<typeof scheduleOf>[0]): Schedule | undefined {
    if (!start?.cron && !start?.everyMs) return undefined
    const key = JSON.stringify([start.cron, start.timeZone, start.everyMs])
    let s = this.parsed.get(key)
    if (!s) {
      try {
        s = scheduleOf(start) ?? new Error('no schedule')
      } catch (err) {
        s = err as Error
        this.deps.logger.warn({ err, plugin: r.manifest.name, workflow: name }, 'workflow schedule does not parse')
      }
      this.parsed.set(key, s)
    }
    return s instanceof Error ? undefined : s
  }
}
