import type { Tx } from '../db/database.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'
import type { QueueJob } from '../events/queue.js'
import type { Next } from './directives.js'
import { openTask } from './human-tasks.js'
import { jobOf, type InstanceRow, type Wait } from './instance-row.js'
import { workflowMetrics } from './metrics.js'

const RUN_NEXT = `update workflow_instances set step = ?, step_seq = ?, attempt = 0, input = ?::jsonb, status = 'running', wait = null, run_at = now(), compensations = ?::jsonb, updated_at = now() where id = ?::uuid`
export type Failure = { code: string; message: string }

/**
 * How an instance moves from state to state, always in the caller's transaction: to its next
 * step, into a wait (event, timer, human task), through compensation, to its end. Each returns
 * the jobs to add once that transaction has committed. Timers, event timeouts and SLAs are due
 * by `now()` of the runtime's clock.
 */
export class InstanceTransitions {
  constructor(private readonly now: () => number) {}

  /** Moves the instance on after a completed step. */
  async apply(tx: Tx, tenantId: string, row: InstanceRow, next: Next, stepStartedAt: Date): Promise<QueueJob[]> {
    const seq = row.step_seq + 1
    const comps = JSON.stringify(row.compensations)
    switch (next.kind) {
      case 'step':
        await tx.sql(RUN_NEXT, [next.step, seq, JSON.stringify(next.input ?? null), comps, row.id])
        return [jobOf(tenantId, row.id, seq, 0)]
      case 'complete':
        await this.finish(tx, row, 'completed', { output: next.output })
        return []
      case 'fail':
        return this.beginFailure(tx, tenantId, row, { code: 'WFL_FAILED', message: next.reason })
      case 'wait': {
        // An event that arrived while the step ran (before the wait existed) still counts.
        const early = await arrivedSince(tx, next.event, next.match, stepStartedAt)
        if (early) {
          const input = { event: early, timedOut: false, input: next.input ?? null }
          await tx.sql(RUN_NEXT, [next.next, seq, JSON.stringify(input), comps, row.id])
          return [jobOf(tenantId, row.id, seq, 0)]
        }
        const { event: type, match, next: step, onTimeout, input } = next
        await this.wait(
          tx,
          row,
          seq,
          { kind: 'event', type, match, next: step, onTimeout, input },
          next.timeoutMs,
          comps,
        )
        return []
      }
      case 'sleep':
        await this.wait(tx, row, seq, { kind: 'timer', next: next.next, input: next.input }, next.ms, comps)
        return []
      case 'task':
        await openTask(tx, row, seq, next.task, comps, this.now())
        return []
    }
  }

  private async wait(tx: Tx, row: InstanceRow, seq: number, wait: Wait, ms: number, comps: string): Promise<void> {
    await tx.sql(
      `update workflow_instances set step = null, step_seq = ?, attempt = 0, status = 'waiting', wait = ?::jsonb, run_at = ?::timestamptz, compensations = ?::jsonb, updated_at = now() where id = ?::uuid`,
      [seq, JSON.stringify(wait), new Date(this.now() + ms).toISOString(), comps, row.id],
    )
  }

  /** Ends an instance (completed, failed or cancelled) and says so. */
  async finish(
    tx: Tx,
    row: InstanceRow,
    status: 'completed' | 'failed' | 'cancelled',
    out: { output?: unknown; error?: unknown },
  ): Promise<void> {
    await tx.sql(
      `update workflow_instances set status = ?, step = null, output = ?::jsonb, error = coalesce(?::jsonb, error), wait = null, compensations = '[]', finished_at = now(), updated_at = now() where id = ?::uuid`,
      [status, JSON.stringify(out.output ?? null), out.error === undefined ? null : JSON.stringify(out.error), row.id],
    )
    await tx.sql(
      `update workflow_tasks set status = 'cancelled' where instance_id = ?::uuid and status in ('open', 'claimed')`,
      [row.id],
    )
    const data = { instanceId: row.id, plugin: row.plugin, workflow: row.workflow, version: row.version }
    if (status === 'completed')
      await emitEvents(tx, kernelEvent('workflow.instance.completed', `workflow/${row.id}`, data))
    else if (status === 'failed')
      await emitEvents(
        tx,
        kernelEvent('workflow.instance.failed', `workflow/${row.id}`, {
          ...data,
          error: (out.error ?? row.error ?? null) as Record<string, unknown> | null,
        }),
      )
    workflowMetrics.instances.inc({ plugin: row.plugin, workflow: row.workflow, outcome: status })
    workflowMetrics.duration.observe(
      { plugin: row.plugin, workflow: row.workflow, outcome: status },
      (this.now() - new Date(row.started_at).getTime()) / 1000,
    )
  }

  /** The workflow failed: undo what completed steps did (newest first), then end as failed. */
  async beginFailure(tx: Tx, tenantId: string, row: InstanceRow, error: Failure): Promise<QueueJob[]> {
    await tx.sql('update workflow_instances set error = ?::jsonb where id = ?::uuid', [JSON.stringify(error), row.id])
    return this.continueCompensation(tx, tenantId, { ...row, error }, row.compensations)
  }

  /** Runs the newest remaining compensation, or ends the instance as failed when none remain. */
  async continueCompensation(
    tx: Tx,
    tenantId: string,
    row: InstanceRow,
    remaining: InstanceRow['compensations'],
  ): Promise<QueueJob[]> {
    if (remaining.length === 0) {
      await this.finish(tx, row, 'failed', {})
      return []
    }
    const last = remaining[remaining.length - 1]!
    const seq = row.step_seq + 1
    await tx.sql(
      `update workflow_instances set status = 'compensating', step = ?, step_seq = ?, attempt = 0, input = ?::jsonb, wait = null, run_at = now(), compensations = ?::jsonb, updated_at = now() where id = ?::uuid`,
      [last.step, seq, JSON.stringify(last.input ?? null), JSON.stringify(remaining.slice(0, -1)), row.id],
    )
    return [jobOf(tenantId, row.id, seq, 0)]
  }

  /** Resumes a waiting instance at `step` with `input`. */
  async resume(
    tx: Tx,
    tenantId: string,
    instanceId: string,
    expect: (w: Wait) => boolean,
    step: (w: Wait) => string,
    input: (w: Wait) => unknown,
  ): Promise<QueueJob[]> {
    const [cur] = await tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid for update', [
      instanceId,
    ])
    if (cur?.status !== 'waiting' || !cur.wait || !expect(cur.wait)) return []
    await tx.sql(
      `update workflow_instances set status = 'running', step = ?, attempt = 0, input = ?::jsonb, wait = null, run_at = now(), updated_at = now() where id = ?::uuid`,
      [step(cur.wait), JSON.stringify(input(cur.wait) ?? null), cur.id],
    )
    return [jobOf(tenantId, cur.id, cur.step_seq, 0)]
  }
}

/** The tenant's first event of `type` matching `match` written since `since` (less a little clock slack), if any. */
async function arrivedSince(tx: Tx, type: string, match: Record<string, unknown>, since: Date) {
  const rows = await tx.sql<{ id: string; type: string; subject: string; data: Record<string, unknown>; time: Date }>(
    `select id, type, subject, data, time from events where type = ? and time >= ?::timestamptz order by id limit 200`,
    [type, new Date(since.getTime() - 2000).toISOString()],
  )
  const hit = rows.find((e) => matches(e.data, match))
  return hit
    ? { id: hit.id, type: hit.type, subject: hit.subject, data: hit.data, time: new Date(hit.time).toISOString() }
    : undefined
}

/** Whether an event's data has every key of `match` with the same (JSON) value. */
export function matches(data: Record<string, unknown> | null | undefined, match: Record<string, unknown>): boolean {
  return Object.entries(match).every(([key, v]) => JSON.stringify(data?.[key] ?? null) === JSON.stringify(v))
}
