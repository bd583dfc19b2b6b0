import { v7 as uuidv7 } from 'uuid'
import { isTrellisError, matchesEventPattern, type ManifestWorkflow, type TrellisEvent } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'
import type { JobQueue, QueueJob, RunningJob } from '../events/queue.js'
import type { Installation } from '../plugins/installations.js'
import type { PluginVersion } from '../plugins/versions.js'
import { SKIPPED } from '../plugins/plugin-host.js'
import { WFL } from './errors.js'
import { mainSteps, nextAfter, type Next } from './directives.js'
import { workflowMetrics } from './metrics.js'

/** A workflow_instances row. */
export interface InstanceRow {
  id: string
  tenant_id: string
  installation_id: string
  plugin: string
  version_id: string
  version: string
  workflow: string
  status: 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled' | 'compensating'
  step: string | null
  step_seq: number
  attempt: number
  input: unknown
  output: unknown
  error: unknown
  wait: Wait | null
  run_at: Date
  compensations: Array<{ step: string; input: unknown }>
  started_by: string
  started_at: Date
  updated_at: Date
  finished_at: Date | null
}

export type Wait =
  | { kind: 'event'; type: string; match: Record<string, unknown>; next: string; onTimeout: string; input: unknown }
  | { kind: 'timer'; next: string; input: unknown }
  | { kind: 'task'; taskId: string }

export interface EngineOptions {
  /** How often timers, timeouts, SLAs, schedules and stalled steps are looked at (ms). */
  sweepMs?: number
  /** A running step silent for this long is scheduled again (its job was lost). */
  stalledMs?: number
  concurrency?: number
}

// Errors that mean the platform failed, not the step: the job is retried as it is.
// A tenant over its plugin concurrency cap: the step runs again later, it did not fail.
const INFRASTRUCTURE = new Set([
  'SBX_ERR_WORKER_LOST',
  'SBX_ERR_SANDBOX_CLOSED',
  'KRN_ERR_DATABASE_UNAVAILABLE',
  'PLG_ERR_TOO_MANY_INVOCATIONS',
])
// Job ids say which run of which step they are (BullMQ refuses ':' in them).
const jobOf = (tenantId: string, id: string, seq: number, attempt: number, delayMs = 0, suffix = ''): QueueJob => ({
  id: `wf.${id}.${seq}.${attempt}${suffix}`,
  name: 'step',
  data: { tenantId, instanceId: id, seq, attempt },
  ...(delayMs > 0 ? { delayMs } : {}),
})
const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())

/**
 * The durable workflow runtime. An instance is a row; each step runs as a job on the queue, as
 * one sandboxed invocation whose writes commit together with the step's record and the
 * instance's next state — so a step either happened once or not at all, and a kernel killed
 * mid-step runs that step again after restart. Waits, timers, SLAs and lost jobs are found by
 * a sweeper; events reach waiting instances through the plugin host.
 */
export class WorkflowEngine {
  private sweeper: NodeJS.Timeout | undefined
  private sweeping = false
  private sweeps = 0
  private closed = false

  constructor(
    private readonly k: KernelContext,
    private readonly queue: JobQueue,
    private readonly opts: EngineOptions = {},
  ) {}

  start(): void {
    this.k.plugins.onWorkflowEvent = (tenantId, inst, version, event) => this.onEvent(tenantId, inst, version, event)
    this.queue.work((job) => this.runJob(job), { concurrency: this.opts.concurrency ?? 4 })
    this.sweeper = setInterval(() => void this.sweep(), this.opts.sweepMs ?? 1000)
    this.sweeper.unref()
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.sweeper)
    await this.queue.close()
  }

  /** Adds jobs made in a transaction, once it has committed. */
  async enqueueAfterCommit(jobs: QueueJob[]): Promise<void> {
    if (jobs.length && !this.closed) await this.queue.add(jobs)
  }

  private enqueue(jobs: QueueJob[]): Promise<void> {
    return this.enqueueAfterCommit(jobs)
  }

  // --- starting ---------------------------------------------------------------------------

  /** The workflow of an installation's current version, checking the capability. */
  workflowOf(inst: Installation, version: PluginVersion, workflow: string): ManifestWorkflow {
    const wf = version.manifest.workflows?.[workflow]
    if (!wf || !Object.hasOwn(version.manifest.workflows!, workflow))
      throw WFL.WORKFLOW_NOT_FOUND({ plugin: inst.plugin, workflow })
    if (!inst.capabilities.includes('workflows')) throw WFL.NOT_GRANTED({ plugin: inst.plugin })
    return wf
  }

  /**
   * Creates an instance in the caller's transaction, pinned to the installation's current
   * version; returns it and the job to add once the transaction has committed. A `startKey`
   * already used (the same event delivered twice) starts nothing.
   */
  async create(
    tx: Tx,
    tenantId: string,
    inst: Installation,
    version: PluginVersion,
    workflow: string,
    input: unknown,
    startedBy: string,
    startKey?: string,
  ): Promise<{ row: InstanceRow; job: QueueJob } | undefined> {
    const wf = this.workflowOf(inst, version, workflow)
    const first = mainSteps(wf)[0]!
    const id = uuidv7()
    const [row] = await tx.sql<InstanceRow>(
      `insert into workflow_instances (id, installation_id, plugin, version_id, version, workflow, status, step, step_seq, attempt, input, started_by, start_key)
       values (?::uuid, ?::uuid, ?, ?::uuid, ?, ?, 'running', ?, 1, 0, ?::jsonb, ?, ?)
       on conflict do nothing returning *`,
      [
        id,
        inst.id,
        inst.plugin,
        version.id,
        version.version,
        workflow,
        first,
        JSON.stringify(input ?? null),
        startedBy,
        startKey ?? null,
      ],
    )
    if (!row) return undefined
    await emitEvents(
      tx,
      kernelEvent('workflow.instance.started', `workflow/${id}`, {
        instanceId: id,
        plugin: inst.plugin,
        workflow,
        version: version.version,
      }),
    )
    workflowMetrics.instances.inc({ plugin: inst.plugin, workflow, outcome: 'started' })
    return { row, job: jobOf(tenantId, id, 1, 0) }
  }

  /** Starts an instance in its own transaction. */
  async startInstance(
    tenantId: string,
    inst: Installation,
    workflow: string,
    input: unknown,
    startedBy: string,
  ): Promise<InstanceRow> {
    const created = await orgTx(this.k, tenantId, async (tx) => {
      const version = await this.k.plugins.versionOf(tx, inst)
      return this.create(tx, tenantId, inst, version, workflow, input, startedBy)
    })
    await this.enqueue([created!.job])
    return created!.row
  }

  // --- running a step -----------------------------------------------------------------------

  private async runJob(job: RunningJob): Promise<void> {
    if (job.name !== 'step') return
    const { tenantId, instanceId, seq, attempt } = job.data as {
      tenantId: string
      instanceId: string
      seq: number
      attempt: number
    }
    const [row] = await this.k.db.inOrg(tenantId, (tx) =>
      tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid', [instanceId]),
    )
    if (
      !row ||
      (row.status !== 'running' && row.status !== 'compensating') ||
      row.step_seq !== seq ||
      row.attempt !== attempt ||
      !row.step
    )
      return
    const inst = (await this.k.plugins.installed(tenantId)).byId.get(row.installation_id)
    const version = await this.k.plugins.versions.get(tenantId, row.version_id)
    if (!inst || !version) {
      await this.fail(tenantId, row, { code: 'PLG_ERR_NOT_INSTALLED', message: `${row.plugin} is no longer installed` })
      return
    }
    const wf = version.manifest.workflows?.[row.workflow]
    if (!wf) return
    const started = performance.now()
    const startedAt = new Date()
    const step = row.step
    let jobs: QueueJob[] = []
    try {
      const r = await this.k.plugins.invoke(
        {
          tenantId,
          installation: inst,
          entry: { kind: 'workflowStep', name: `${row.workflow}.${step}` },
          input: row.input,
          caller: { kind: 'system', id: `workflow:${row.id}`, permissions: [] },
          versionId: row.version_id,
        },
        {
          before: async (tx) => {
            const [cur] = await tx.sql<InstanceRow>(
              'select status, step_seq, attempt from workflow_instances where id = ?::uuid for update',
              [row.id],
            )
            return Boolean(
              cur &&
                (cur.status === 'running' || cur.status === 'compensating') &&
                cur.step_seq === seq &&
                cur.attempt === attempt,
            )
          },
          after: async (tx, output) => {
            const wallMs = performance.now() - started
            const compensating = row.status === 'compensating'
            await tx.sql(
              `insert into workflow_steps (id, instance_id, seq, step, attempt, status, input, output, started_at, wall_ms) values (?::uuid, ?::uuid, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::timestamptz, ?)`,
              [
                uuidv7(),
                row.id,
                seq,
                step,
                attempt,
                compensating ? 'compensated' : 'completed',
                JSON.stringify(row.input ?? null),
                JSON.stringify(output ?? null),
                startedAt.toISOString(),
                wallMs,
              ],
            )
            workflowMetrics.steps.observe(
              { plugin: row.plugin, workflow: row.workflow, step, outcome: 'completed' },
              wallMs / 1000,
            )
            if (compensating) return this.continueCompensation(tx, tenantId, row, row.compensations)
            const compensations = wf.compensate?.[step]
              ? [...row.compensations, { step: wf.compensate[step]!, input: output ?? null }]
              : row.compensations
            return this.apply(tx, tenantId, { ...row, compensations }, nextAfter(wf, step, output), startedAt)
          },
        },
      )
      if (r !== SKIPPED) jobs = r
    } catch (err) {
      // The platform failed (a lost sandbox worker, the database): the job runs again as it is.
      if (!isTrellisError(err) || INFRASTRUCTURE.has(err.code)) throw err
      const wallMs = performance.now() - started
      workflowMetrics.steps.observe(
        { plugin: row.plugin, workflow: row.workflow, step, outcome: 'failed' },
        wallMs / 1000,
      )
      jobs = await this.stepFailed(tenantId, row, wf, err, startedAt, wallMs)
    }
    await this.enqueue(jobs)
  }

  /** Moves the instance on after a completed step; returns the jobs to add after commit. */
  private async apply(
    tx: Tx,
    tenantId: string,
    row: InstanceRow,
    next: Next,
    stepStartedAt: Date,
  ): Promise<QueueJob[]> {
    const seq = row.step_seq + 1
    const comps = JSON.stringify(row.compensations)
    switch (next.kind) {
      case 'step':
        await tx.sql(
          `update workflow_instances set step = ?, step_seq = ?, attempt = 0, input = ?::jsonb, status = 'running', wait = null, run_at = now(), compensations = ?::jsonb, updated_at = now() where id = ?::uuid`,
          [next.step, seq, JSON.stringify(next.input ?? null), comps, row.id],
        )
        return [jobOf(tenantId, row.id, seq, 0)]
      case 'complete':
        await this.finish(tx, row, 'completed', { output: next.output })
        return []
      case 'fail':
        return this.beginFailure(tx, tenantId, row, { code: 'WFL_FAILED', message: next.reason })
      case 'wait':
      case 'sleep': {
        if (next.kind === 'wait') {
          // An event that arrived while the step ran (before the wait existed) still counts.
          const early = await this.arrivedSince(tx, next.event, next.match, stepStartedAt)
          if (early) {
            await tx.sql(
              `update workflow_instances set step = ?, step_seq = ?, attempt = 0, input = ?::jsonb, status = 'running', wait = null, run_at = now(), compensations = ?::jsonb, updated_at = now() where id = ?::uuid`,
              [
                next.next,
                seq,
                JSON.stringify({ event: early, timedOut: false, input: next.input ?? null }),
                comps,
                row.id,
              ],
            )
            return [jobOf(tenantId, row.id, seq, 0)]
          }
        }
        const wait: Wait =
          next.kind === 'wait'
            ? {
                kind: 'event',
                type: next.event,
                match: next.match,
                next: next.next,
                onTimeout: next.onTimeout,
                input: next.input,
              }
            : { kind: 'timer', next: next.next, input: next.input }
        const ms = next.kind === 'wait' ? next.timeoutMs : next.ms
        await tx.sql(
          `update workflow_instances set step = null, step_seq = ?, attempt = 0, status = 'waiting', wait = ?::jsonb, run_at = now() + (? || ' milliseconds')::interval, compensations = ?::jsonb, updated_at = now() where id = ?::uuid`,
          [seq, JSON.stringify(wait), String(ms), comps, row.id],
        )
        return []
      }
      case 'task': {
        const t = next.task
        const taskId = uuidv7()
        await tx.sql(
          `insert into workflow_tasks (id, instance_id, step_seq, plugin, workflow, title, role, assignee, form, outcomes, next, data, input, sla_ms, due_at, escalate_to)
           values (?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?::uuid, ?::jsonb, ?::text[], ?::jsonb, ?::jsonb, ?::jsonb, ?, case when ?::bigint is null then null else now() + (? || ' milliseconds')::interval end, ?)`,
          [
            taskId,
            row.id,
            seq,
            row.plugin,
            row.workflow,
            t.title,
            t.role,
            t.assignee,
            t.form ? JSON.stringify(t.form) : null,
            t.outcomes,
            JSON.stringify(t.next),
            JSON.stringify(t.data ?? null),
            JSON.stringify(t.input ?? null),
            t.slaMs,
            t.slaMs,
            String(t.slaMs ?? 0),
            t.escalateTo,
          ],
        )
        await tx.sql(
          `update workflow_instances set step = null, step_seq = ?, attempt = 0, status = 'waiting', wait = ?::jsonb, run_at = 'infinity', compensations = ?::jsonb, updated_at = now() where id = ?::uuid`,
          [seq, JSON.stringify({ kind: 'task', taskId }), comps, row.id],
        )
        await emitEvents(
          tx,
          kernelEvent('workflow.task.created', `workflow/${row.id}`, {
            taskId,
            instanceId: row.id,
            plugin: row.plugin,
            workflow: row.workflow,
            title: t.title,
            role: t.role,
          }),
        )
        workflowMetrics.tasks.inc({ plugin: row.plugin, workflow: row.workflow, event: 'created' })
        return []
      }
    }
  }

  /** The tenant's first event of `type` matching `match` written since `since` (less a little clock slack), if any. */
  private async arrivedSince(tx: Tx, type: string, match: Record<string, unknown>, since: Date) {
    const rows = await tx.sql<{ id: string; type: string; subject: string; data: Record<string, unknown>; time: Date }>(
      `select id, type, subject, data, time from events where type = ? and time >= ?::timestamptz order by id limit 200`,
      [type, new Date(since.getTime() - 2000).toISOString()],
    )
    const hit = rows.find((e) =>
      Object.entries(match).every(([key, v]) => JSON.stringify(e.data?.[key] ?? null) === JSON.stringify(v)),
    )
    return hit
      ? { id: hit.id, type: hit.type, subject: hit.subject, data: hit.data, time: new Date(hit.time).toISOString() }
      : undefined
  }

  /** Ends an instance (completed, failed or cancelled) and says so. */
  private async finish(
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
      (Date.now() - new Date(row.started_at).getTime()) / 1000,
    )
  }

  /** The workflow failed: undo what completed steps did (newest first), then end as failed. */
  private async beginFailure(
    tx: Tx,
    tenantId: string,
    row: InstanceRow,
    error: { code: string; message: string },
  ): Promise<QueueJob[]> {
    await tx.sql('update workflow_instances set error = ?::jsonb where id = ?::uuid', [JSON.stringify(error), row.id])
    return this.continueCompensation(tx, tenantId, { ...row, error }, row.compensations)
  }

  private async continueCompensation(
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

  /** A step threw (its writes rolled back): retry with backoff, then fail the workflow. */
  private async stepFailed(
    tenantId: string,
    row: InstanceRow,
    wf: ManifestWorkflow,
    err: unknown,
    startedAt: Date,
    wallMs: number,
  ): Promise<QueueJob[]> {
    const error = {
      code: isTrellisError(err) ? err.code : 'KRN_ERR_INTERNAL',
      message: (err as Error)?.message ?? String(err),
    }
    return orgTx(this.k, tenantId, async (tx) => {
      const [cur] = await tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid for update', [
        row.id,
      ])
      if (
        !cur ||
        cur.step_seq !== row.step_seq ||
        cur.attempt !== row.attempt ||
        (cur.status !== 'running' && cur.status !== 'compensating')
      )
        return []
      await tx.sql(
        `insert into workflow_steps (id, instance_id, seq, step, attempt, status, input, error, started_at, wall_ms) values (?::uuid, ?::uuid, ?, ?, ?, 'failed', ?::jsonb, ?::jsonb, ?::timestamptz, ?)`,
        [
          uuidv7(),
          cur.id,
          cur.step_seq,
          cur.step,
          cur.attempt,
          JSON.stringify(cur.input ?? null),
          JSON.stringify(error),
          startedAt.toISOString(),
          wallMs,
        ],
      )
      const max = wf.retries?.max ?? 2
      if (cur.attempt < max) {
        const delay = (wf.retries?.backoffMs ?? 1000) * 2 ** cur.attempt
        await tx.sql(
          `update workflow_instances set attempt = attempt + 1, run_at = now() + (? || ' milliseconds')::interval, updated_at = now() where id = ?::uuid`,
          [String(delay), cur.id],
        )
        return [jobOf(tenantId, cur.id, cur.step_seq, cur.attempt + 1, delay)]
      }
      // A compensation that keeps failing is skipped: the rest still run.
      if (cur.status === 'compensating') return this.continueCompensation(tx, tenantId, cur, cur.compensations)
      return this.beginFailure(tx, tenantId, cur, error)
    })
  }

  private async fail(tenantId: string, row: InstanceRow, error: { code: string; message: string }): Promise<void> {
    await orgTx(this.k, tenantId, (tx) => this.finish(tx, row, 'failed', { error }))
  }

  // --- resuming -----------------------------------------------------------------------------

  /** Resumes a waiting instance at `step` with `input`, in the caller's transaction. */
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

  /** An event of the tenant for an installation: start the workflows it starts, resume the instances waiting for it. */
  private async onEvent(
    tenantId: string,
    inst: Installation,
    version: PluginVersion,
    event: TrellisEvent,
  ): Promise<void> {
    const jobs = await orgTx(this.k, tenantId, async (tx) => {
      const out: QueueJob[] = []
      for (const [name, wf] of Object.entries(version.manifest.workflows ?? {})) {
        if (!(wf.start?.events ?? []).some((p) => p === event.type || matchesEventPattern(p, event.type))) continue
        if (!inst.capabilities.includes('workflows')) continue
        const created = await this.create(
          tx,
          tenantId,
          inst,
          version,
          name,
          { event },
          `event:${event.id}`,
          `event:${event.id}`,
        )
        if (created) out.push(created.job)
      }
      const waiting = await tx.sql<{ id: string; wait: Wait }>(
        `select id, wait from workflow_instances where installation_id = ?::uuid and status = 'waiting' and wait ->> 'kind' = 'event' and wait ->> 'type' = ?`,
        [inst.id, event.type],
      )
      const data = (event.data ?? {}) as Record<string, unknown>
      for (const w of waiting) {
        const match = (w.wait as Extract<Wait, { kind: 'event' }>).match ?? {}
        if (!Object.entries(match).every(([key, v]) => JSON.stringify(data[key] ?? null) === JSON.stringify(v)))
          continue
        const view = { id: event.id, type: event.type, subject: event.subject, data: event.data, time: event.time }
        out.push(
          ...(await this.resume(
            tx,
            tenantId,
            w.id,
            (x) => x.kind === 'event',
            (x) => (x as Extract<Wait, { kind: 'event' }>).next,
            (x) => ({ event: view, timedOut: false, input: (x as Extract<Wait, { kind: 'event' }>).input }),
          )),
        )
      }
      return out
    })
    await this.enqueue(jobs)
  }

  // --- the sweeper --------------------------------------------------------------------------

  private async sweep(): Promise<void> {
    if (this.sweeping || this.closed) return
    this.sweeping = true
    try {
      await this.dueWaits()
      await this.dueTasks()
      await this.stalled()
      if (this.sweeps++ % 10 === 0) await this.schedules()
    } catch (err) {
      if (!this.closed) this.k.logger.warn({ err }, 'workflow sweep failed')
    } finally {
      this.sweeping = false
    }
  }

  private scan<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.k.db.inOrg(null, (tx) => tx.sql<T>(sql, params), 'trellis_events')
  }

  /** Timers that are due, and event waits that timed out. */
  private async dueWaits(): Promise<void> {
    const due = await this.scan<{ id: string; tenant_id: string }>(
      `select id, tenant_id from workflow_instances where status = 'waiting' and run_at <= now() and wait ->> 'kind' in ('timer', 'event') order by run_at limit 100`,
    )
    for (const d of due) {
      const jobs = await orgTx(this.k, d.tenant_id, (tx) =>
        this.resume(
          tx,
          d.tenant_id,
          d.id,
          (w) => w.kind === 'timer' || w.kind === 'event',
          (w) => (w.kind === 'timer' ? w.next : (w as Extract<Wait, { kind: 'event' }>).onTimeout),
          (w) =>
            w.kind === 'timer'
              ? w.input
              : { event: null, timedOut: true, input: (w as Extract<Wait, { kind: 'event' }>).input },
        ),
      )
      await this.enqueue(jobs)
    }
  }

  /** Tasks past their SLA: escalated to their escalation role (once), and counted as breaches. */
  private async dueTasks(): Promise<void> {
    const due = await this.scan<{ id: string; tenant_id: string }>(
      `select id, tenant_id from workflow_tasks where status in ('open', 'claimed') and escalated_at is null and due_at <= now() order by due_at limit 100`,
    )
    for (const d of due) {
      await orgTx(this.k, d.tenant_id, async (tx) => {
        const [t] = await tx.sql<{
          id: string
          instance_id: string
          plugin: string
          workflow: string
          role: string | null
          escalate_to: string | null
          sla_ms: string | null
          title: string
        }>(
          `update workflow_tasks set escalated_at = now(), role = coalesce(escalate_to, role), status = case when escalate_to is null then status else 'open' end,
                  claimed_by = case when escalate_to is null then claimed_by else null end,
                  due_at = case when escalate_to is null or sla_ms is null then due_at else now() + (sla_ms || ' milliseconds')::interval end
            where id = ?::uuid and escalated_at is null and status in ('open', 'claimed') returning *`,
          [d.id],
        )
        if (!t) return
        await emitEvents(
          tx,
          kernelEvent('workflow.task.escalated', `workflow/${t.instance_id}`, {
            taskId: t.id,
            instanceId: t.instance_id,
            plugin: t.plugin,
            workflow: t.workflow,
            title: t.title,
            role: t.role,
          }),
        )
        workflowMetrics.tasks.inc({ plugin: t.plugin, workflow: t.workflow, event: 'escalated' })
      })
    }
  }

  /** Steps whose job was lost (a crash between commit and enqueue, a Redis restart) run again. */
  private async stalled(): Promise<void> {
    const ms = this.opts.stalledMs ?? 30_000
    const rows = await this.scan<{ id: string; tenant_id: string; step_seq: number; attempt: number }>(
      `select id, tenant_id, step_seq, attempt from workflow_instances where status in ('running', 'compensating') and run_at <= now() - (? || ' milliseconds')::interval
          and updated_at <= now() - (? || ' milliseconds')::interval order by run_at limit 100`,
      [String(ms), String(ms)],
    )
    const bucket = `.r${Math.floor(Date.now() / ms)}`
    await this.enqueue(rows.map((r) => jobOf(r.tenant_id, r.id, r.step_seq, r.attempt, 0, bucket)))
  }

  /** Workflows with `start.everyMs` start on their schedule, once per period across processes. */
  private async schedules(): Promise<void> {
    const rows = await this.scan<{ id: string; tenant_id: string; manifest: PluginVersion['manifest'] }>(
      `select i.id, i.tenant_id, v.manifest from plugin_installations i join plugin_versions v on v.id = i.version_id where i.status = 'active' and v.manifest -> 'workflows' is not null`,
    )
    for (const r of rows) {
      for (const [name, wf] of Object.entries(r.manifest.workflows ?? {})) {
        const every = wf.start?.everyMs
        if (!every) continue
        const jobs = await orgTx(this.k, r.tenant_id, async (tx) => {
          const [s] = await tx.sql<{ next_at: Date }>(
            'select next_at from workflow_schedules where installation_id = ?::uuid and workflow = ? for update',
            [r.id, name],
          )
          if (!s) {
            await tx.sql(
              "insert into workflow_schedules (installation_id, workflow, next_at) values (?::uuid, ?, now() + (? || ' milliseconds')::interval) on conflict do nothing",
              [r.id, name, String(every)],
            )
            return []
          }
          if (new Date(s.next_at).getTime() > Date.now()) return []
          await tx.sql(
            `update workflow_schedules set next_at = now() + (? || ' milliseconds')::interval where installation_id = ?::uuid and workflow = ?`,
            [String(every), r.id, name],
          )
          const inst = (await this.k.plugins.installed(r.tenant_id, tx)).byId.get(r.id)
          if (!inst) return []
          const version = await this.k.plugins.versionOf(tx, inst)
          const created = await this.create(
            tx,
            r.tenant_id,
            inst,
            version,
            name,
            { scheduledAt: iso(s.next_at) },
            'schedule',
            `schedule:${iso(s.next_at)}`,
          )
          return created ? [created.job] : []
        })
        await this.enqueue(jobs)
      }
    }
  }
}
