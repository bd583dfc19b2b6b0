import { v7 as uuidv7 } from 'uuid'
import { isTrellisError, type ManifestWorkflow } from '@trellis/plugin-sdk'
import type { Database } from '../db/database.js'
import type { QueueJob, RunningJob } from '../events/queue.js'
import { SKIPPED } from '../plugins/invocation-types.js'
import type { TenantTx } from '../plugins/tenant-tx.js'
import { nextAfter } from './directives.js'
import { jobOf, type InstanceRow, type StepJob } from './instance-row.js'
import { workflowMetrics } from './metrics.js'
import type { Failure, InstanceTransitions } from './transitions.js'
import type { WorkflowPlugins } from './workflow-plugins.js'

export interface StepRunnerDeps {
  db: Pick<Database, 'inOrg'>
  tenantTx: TenantTx
  plugins: WorkflowPlugins
  transitions: InstanceTransitions
}

// Errors that mean the platform failed, not the step: the job is retried as it is.
// A tenant over its plugin concurrency cap: the step runs again later, it did not fail.
const INFRASTRUCTURE = new Set([
  'SBX_ERR_WORKER_LOST',
  'SBX_ERR_SANDBOX_CLOSED',
  'KRN_ERR_DATABASE_UNAVAILABLE',
  'PLG_ERR_TOO_MANY_INVOCATIONS',
])

const live = (r: Pick<InstanceRow, 'status'> | undefined) => r?.status === 'running' || r?.status === 'compensating'

/**
 * Runs one attempt of one step as one sandboxed invocation whose writes commit together with
 * the step's record and the instance's next state; a job that is stale (the instance moved
 * on) does nothing. Returns the jobs to add once committed.
 */
export class StepRunner {
  constructor(private readonly deps: StepRunnerDeps) {}

  async run(job: RunningJob): Promise<QueueJob[]> {
    if (job.name !== 'step') return []
    const { tenantId, instanceId, seq, attempt } = job.data as unknown as StepJob
    const [row] = await this.deps.db.inOrg(tenantId, (tx) =>
      tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid', [instanceId]),
    )
    if (!row || !live(row) || row.step_seq !== seq || row.attempt !== attempt || !row.step) return []
    const { plugins, transitions: to } = this.deps
    const inst = (await plugins.installed(tenantId)).byId.get(row.installation_id)
    const version = await plugins.versions.get(tenantId, row.version_id)
    if (!inst || !version) {
      const error = { code: 'PLG_ERR_NOT_INSTALLED', message: `${row.plugin} is no longer installed` }
      await this.deps.tenantTx(tenantId, (tx) => to.finish(tx, row, 'failed', { error }))
      return []
    }
    const wf = version.manifest.workflows?.[row.workflow]
    if (!wf) return []
    const started = performance.now()
    const startedAt = new Date()
    const step = row.step
    const labels = { plugin: row.plugin, workflow: row.workflow, step }
    try {
      const r = await plugins.invoke(
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
            return Boolean(live(cur) && cur!.step_seq === seq && cur!.attempt === attempt)
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
            workflowMetrics.steps.observe({ ...labels, outcome: 'completed' }, wallMs / 1000)
            if (compensating) return to.continueCompensation(tx, tenantId, row, row.compensations)
            const compensations = wf.compensate?.[step]
              ? [...row.compensations, { step: wf.compensate[step]!, input: output ?? null }]
              : row.compensations
            return to.apply(tx, tenantId, { ...row, compensations }, nextAfter(wf, step, output), startedAt)
          },
        },
      )
      return r === SKIPPED ? [] : r
    } catch (err) {
      // The platform failed (a lost sandbox worker, the database): the job runs again as it is.
      if (!isTrellisError(err) || INFRASTRUCTURE.has(err.code)) throw err
      const wallMs = performance.now() - started
      workflowMetrics.steps.observe({ ...labels, outcome: 'failed' }, wallMs / 1000)
      return this.failed(tenantId, row, wf, err, startedAt, wallMs)
    }
  }

  /** A step threw (its writes rolled back): retry with backoff, then fail the workflow. */
  private async failed(
    tenantId: string,
    row: InstanceRow,
    wf: ManifestWorkflow,
    err: unknown,
    startedAt: Date,
    wallMs: number,
  ): Promise<QueueJob[]> {
    const error: Failure = {
      code: isTrellisError(err) ? err.code : 'KRN_ERR_INTERNAL',
      message: (err as Error)?.message ?? String(err),
    }
    const to = this.deps.transitions
    return this.deps.tenantTx(tenantId, async (tx) => {
      const [cur] = await tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid for update', [
        row.id,
      ])
      if (!cur || cur.step_seq !== row.step_seq || cur.attempt !== row.attempt || !live(cur)) return []
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
      if (cur.status === 'compensating') return to.continueCompensation(tx, tenantId, cur, cur.compensations)
      return to.beginFailure(tx, tenantId, cur, error)
    })
  }
}
