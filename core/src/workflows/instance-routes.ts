import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { PLG } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, decodeCursor, toPageOf } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { WFL } from './errors.js'
import type { InstanceRow } from './engine.js'
import { TaskView, taskView, type TaskRow } from './task-view.js'
import { workflowMetricsFor } from './tenant-metrics.js'

const Uuid = Type.String({ format: 'uuid' })
const StepView = Type.Object({
  seq: Type.Integer(),
  step: Type.String(),
  attempt: Type.Integer(),
  status: Type.String(),
  input: Type.Unknown(),
  output: Type.Unknown(),
  error: Type.Unknown(),
  startedAt: Type.String(),
  finishedAt: Type.String(),
  wallMs: Type.Number(),
})
const InstanceView = Type.Object({
  id: Uuid,
  plugin: Type.String(),
  workflow: Type.String(),
  version: Type.String({ description: 'The plugin version it started on, and finishes on.' }),
  status: Type.String({ description: 'running, waiting, completed, failed, cancelled or compensating' }),
  step: Type.Union([Type.String(), Type.Null()]),
  waitingFor: Type.Unknown({ description: 'event, timer or task it waits for' }),
  input: Type.Unknown(),
  output: Type.Unknown(),
  error: Type.Unknown(),
  startedBy: Type.String(),
  startedAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
})
const Detail = Type.Intersect([
  InstanceView,
  Type.Object({ history: Type.Array(StepView), tasks: Type.Array(TaskView) }),
])
const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())

const instanceView = (r: InstanceRow) => ({
  id: r.id,
  plugin: r.plugin,
  workflow: r.workflow,
  version: r.version,
  status: r.status,
  step: r.step,
  waitingFor: r.wait,
  input: r.input,
  output: r.output,
  error: r.error,
  startedBy: r.started_by,
  startedAt: iso(r.started_at)!,
  finishedAt: iso(r.finished_at),
})

/** Starting, following and cancelling workflow instances; the tenant's workflow metrics. */
export function registerInstanceRoutes(app: Api, k: KernelContext): void {
  app.post(
    '/workflows/instances',
    {
      preHandler: requirePermission(P.workflowsManage),
      schema: {
        tags: ['workflows'],
        summary: 'Start a workflow of an installed plugin',
        body: Type.Object(
          {
            plugin: Type.String({ pattern: '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$' }),
            workflow: Type.String({ maxLength: 64 }),
            input: Type.Optional(Type.Unknown()),
          },
          { additionalProperties: false },
        ),
        response: { 201: InstanceView },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const inst = (await k.plugins.installed(p.orgId)).byPlugin.get(request.body.plugin)
      if (!inst) throw PLG.NOT_INSTALLED({ name: request.body.plugin })
      const row = await k.workflows.startInstance(
        p.orgId,
        inst,
        request.body.workflow,
        request.body.input ?? null,
        `${p.kind}:${p.id}`,
      )
      reply.code(201)
      return instanceView(row)
    },
  )

  app.get(
    '/workflows/instances',
    {
      preHandler: requirePermission(P.workflowsManage),
      schema: {
        tags: ['workflows'],
        summary: 'Workflow instances, newest first',
        querystring: Type.Intersect([
          Type.Object({
            plugin: Type.Optional(Type.String()),
            workflow: Type.Optional(Type.String()),
            status: Type.Optional(Type.String()),
          }),
          Type.Object(PageQuery),
        ]),
        response: {
          200: Type.Object({ items: Type.Array(InstanceView), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const q = request.query
      const limit = q.limit ?? 50
      const before = decodeCursor(q.cursor)
      const rows = await orgTx(k, p.orgId, (tx) =>
        tx.sql<InstanceRow>(
          `select * from workflow_instances where (?::text is null or plugin = ?) and (?::text is null or workflow = ?) and (?::text is null or status = ?) and (?::uuid is null or id < ?::uuid) order by id desc limit ?`,
          [
            q.plugin ?? null,
            q.plugin ?? null,
            q.workflow ?? null,
            q.workflow ?? null,
            q.status ?? null,
            q.status ?? null,
            before,
            before,
            limit + 1,
          ],
        ),
      )
      return toPageOf(rows, limit, instanceView)
    },
  )

  app.get(
    '/workflows/instances/:id',
    {
      preHandler: requirePermission(P.workflowsManage),
      schema: {
        tags: ['workflows'],
        summary: 'An instance with its step history and tasks',
        params: Type.Object({ id: Uuid }),
        response: { 200: Detail },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { row, steps, tasks } = await orgTx(k, p.orgId, async (tx) => {
        const [row] = await tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid', [
          request.params.id,
        ])
        if (!row) throw WFL.WORKFLOW_NOT_FOUND({ plugin: 'instance', workflow: request.params.id })
        const steps = await tx.sql<Record<string, unknown>>(
          'select * from workflow_steps where instance_id = ?::uuid order by seq, attempt',
          [row.id],
        )
        const tasks = await tx.sql<TaskRow>('select * from workflow_tasks where instance_id = ?::uuid order by id', [
          row.id,
        ])
        return { row, steps, tasks }
      })
      return {
        ...instanceView(row),
        history: steps.map((s) => ({
          seq: s.seq as number,
          step: s.step as string,
          attempt: s.attempt as number,
          status: s.status as string,
          input: s.input,
          output: s.output,
          error: s.error,
          startedAt: iso(s.started_at as Date)!,
          finishedAt: iso(s.finished_at as Date)!,
          wallMs: Number(s.wall_ms),
        })),
        tasks: tasks.map(taskView),
      }
    },
  )

  app.post(
    '/workflows/instances/:id/cancel',
    {
      preHandler: requirePermission(P.workflowsManage),
      schema: {
        tags: ['workflows'],
        summary: 'Cancel a running or waiting instance (its open tasks are cancelled)',
        params: Type.Object({ id: Uuid }),
        response: { 200: InstanceView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const meta = auditMeta(request)
      const row = await orgTx(k, p.orgId, async (tx) => {
        const [cur] = await tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid for update', [
          request.params.id,
        ])
        if (!cur) throw WFL.WORKFLOW_NOT_FOUND({ plugin: 'instance', workflow: request.params.id })
        if (!['running', 'waiting'].includes(cur.status)) throw WFL.NOT_CANCELLABLE({ status: cur.status })
        const [row] = await tx.sql<InstanceRow>(
          `update workflow_instances set status = 'cancelled', step = null, wait = null, finished_at = now(), updated_at = now() where id = ?::uuid returning *`,
          [cur.id],
        )
        await tx.sql(
          `update workflow_tasks set status = 'cancelled' where instance_id = ?::uuid and status in ('open', 'claimed')`,
          [cur.id],
        )
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'workflow.instance.cancelled',
          target: { kind: 'workflow_instance', id: cur.id },
          data: { plugin: cur.plugin, workflow: cur.workflow },
        })
        return row!
      })
      return instanceView(row)
    },
  )

  app.get(
    '/workflows/metrics',
    {
      preHandler: requirePermission(P.workflowsManage),
      schema: {
        tags: ['workflows'],
        summary:
          'Per workflow and step: count, latency p50/p95, failures, exceptions, human hand-offs, time waiting on people, SLA breaches',
        response: { 200: Type.Object({ workflows: Type.Array(Type.Record(Type.String(), Type.Unknown())) }) },
      },
    },
    async (request) => ({ workflows: await orgTx(k, principalOf(request).orgId, (tx) => workflowMetricsFor(tx)) }),
  )
}
