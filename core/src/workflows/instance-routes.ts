import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { PluginHost } from '../plugins/plugin-host.js'
import type { WorkflowEngine } from './engine.js'
import { PLG } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, decodeCursor, toPageOf } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { WFL } from './errors.js'
import type { InstanceRow } from './engine.js'
import { taskView, type TaskRow } from './task-view.js'
import { Detail, InstanceView, Uuid, instanceView, iso } from './instance-view.js'
import { workflowMetricsFor } from './tenant-metrics.js'

/** Starting, following and cancelling workflow instances; the tenant's workflow metrics. */
export interface InstanceRouteDeps {
  orgTx: OrgTx
  plugins: Pick<PluginHost, 'installed'>
  workflows: Pick<WorkflowEngine, 'startInstance'>
}

export function registerInstanceRoutes(app: Api, deps: InstanceRouteDeps): void {
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
      const inst = (await deps.plugins.installed(p.orgId)).byPlugin.get(request.body.plugin)
      if (!inst) throw PLG.NOT_INSTALLED({ name: request.body.plugin })
      const row = await deps.workflows.startInstance(
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
      const rows = await deps.orgTx(p.orgId, (tx) =>
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
      const { row, steps, tasks } = await deps.orgTx(p.orgId, async (tx) => {
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
      const row = await deps.orgTx(p.orgId, async (tx) => {
        const [cur] = await tx.sql<InstanceRow>('select * from workflow_instances where id = ?::uuid for update', [
          request.params.id,
        ])
        if (!cur) throw WFL.WORKFLOW_NOT_FOUND({ plugin: 'instance', workflow: request.params.id })
        if (!['running', 'waiting'].includes(cur.status)) throw WFL.NOT_CANCELLABLE({ status: cur.status })
        // Its open tasks first: the instance's own row, audit entry and the rest in one statement after.
        await tx.sql(
          `update workflow_tasks set status = 'cancelled' where instance_id = ?::uuid and status in ('open', 'claimed')`,
          [cur.id],
        )
        const [row] = await auditedWrite<InstanceRow>(tx, {
          write: {
            sql: `update workflow_instances set status = 'cancelled', step = null, wait = null, finished_at = now(), updated_at = now() where id = ?::uuid returning *`,
            params: [cur.id],
          },
          auditOrg: p.orgId,
          audit: {
            ...meta,
            action: 'workflow.instance.cancelled',
            target: { kind: 'workflow_instance', id: cur.id },
            data: { plugin: cur.plugin, workflow: cur.workflow },
          },
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
    async (request) => ({ workflows: await deps.orgTx(principalOf(request).orgId, (tx) => workflowMetricsFor(tx)) }),
  )
}
