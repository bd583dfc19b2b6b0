import { Type } from '@sinclair/typebox'
import { compileJsonSchema } from '@trellis/plugin-sdk'
import type { Api } from '../http/types.js'
import type { Tx } from '../db/database.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf } from '../http/guards.js'
import { PageQuery, decodeCursor, toPageOf } from '../http/pagination.js'
import { emitTaskEvent } from './human-tasks.js'
import type { Principal } from '../identity/principal.js'
import { WFL } from './errors.js'
import { TaskView, taskView, type TaskRow } from './task-view.js'
import { workflowMetrics } from './metrics.js'

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

/** The caller's role names in its organisation (tasks are assigned to roles). */
async function rolesOf(tx: Tx, p: Principal): Promise<string[]> {
  if (p.kind !== 'user') return []
  const rows = await tx.sql<{ role_name: string }>(
    'select role_name from trellis_auth_memberships(?::uuid) where tenant_id = ?::uuid',
    [p.userId, p.orgId],
  )
  return rows.map((r) => r.role_name)
}

/** Whether the caller may act on the task: it is assigned to them, or they hold its role. */
function mayAct(t: TaskRow, p: Principal, roles: string[]): boolean {
  if (t.assignee) return p.kind === 'user' && p.userId === t.assignee
  return t.role !== null && roles.includes(t.role)
}

const formValidators = new Map<string, ReturnType<typeof compileJsonSchema>>()

/**
 * Tasks for people: the open ones for my roles (or assigned to me), claim, complete with an
 * outcome and the form's data. Only holders of the task's role act; the data is validated
 * against the form; every decision and who made it is audited.
 */
export function registerTaskRoutes(app: Api, k: KernelContext): void {
  app.get(
    '/tasks',
    {
      schema: {
        tags: ['workflows'],
        summary: 'Tasks for my roles, or assigned to me (default: open and claimed ones)',
        querystring: Type.Intersect([
          Type.Object({
            status: Type.Optional(
              Type.Union([
                Type.Literal('open'),
                Type.Literal('claimed'),
                Type.Literal('completed'),
                Type.Literal('cancelled'),
                Type.Literal('active'),
              ]),
            ),
          }),
          Type.Object(PageQuery),
        ]),
        response: {
          200: Type.Object({ items: Type.Array(TaskView), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const status = request.query.status ?? 'active'
      const limit = request.query.limit ?? 50
      const after = decodeCursor(request.query.cursor)
      const rows = await orgTx(k, p.orgId, async (tx) => {
        const roles = await rolesOf(tx, p)
        return tx.sql<TaskRow>(
          `select * from workflow_tasks
            where (case when ? = 'active' then status in ('open', 'claimed') else status = ? end)
              and ((assignee is null and role = any(?::text[])) or assignee = ?::uuid)
              and (?::uuid is null or id > ?::uuid)
            order by id limit ?`,
          [status, status, roles, p.kind === 'user' ? p.userId : null, after, after, limit + 1],
        )
      })
      return toPageOf(rows, limit, taskView)
    },
  )

  const load = async (tx: Tx, p: Principal, id: string, forUpdate: boolean) => {
    const [t] = await tx.sql<TaskRow>(
      `select * from workflow_tasks where id = ?::uuid${forUpdate ? ' for update' : ''}`,
      [id],
    )
    if (!t) throw KRN.NOT_FOUND({ what: 'task' })
    const roles = await rolesOf(tx, p)
    if (!mayAct(t, p, roles))
      throw WFL.NOT_YOUR_TASK({
        reason: t.assignee ? 'the task is assigned to someone else' : `the task is for the role ${t.role}`,
      })
    return t
  }

  app.get(
    '/tasks/:id',
    { schema: { tags: ['workflows'], summary: 'One task', params: IdParams, response: { 200: TaskView } } },
    async (request) => {
      const p = principalOf(request)
      return taskView(await orgTx(k, p.orgId, (tx) => load(tx, p, request.params.id, false)))
    },
  )

  app.post(
    '/tasks/:id/claim',
    {
      schema: {
        tags: ['workflows'],
        summary: 'Claim a task: others of the role see it as yours',
        params: IdParams,
        response: { 200: TaskView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.kind !== 'user') throw AUTH.FORBIDDEN({ permission: 'a user (not an API key)' })
      const meta = auditMeta(request)
      const row = await orgTx(k, p.orgId, async (tx) => {
        const t = await load(tx, p, request.params.id, true)
        if (t.status !== 'open' && !(t.status === 'claimed' && t.claimed_by === p.userId))
          throw WFL.TASK_NOT_OPEN({ status: t.status === 'claimed' ? 'claimed by someone else' : t.status })
        const [u] = await tx.sql<TaskRow>(
          `update workflow_tasks set status = 'claimed', claimed_by = ?::uuid where id = ?::uuid returning *`,
          [p.userId, t.id],
        )
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'workflow.task.claimed',
          target: { kind: 'workflow_task', id: t.id },
          data: { title: t.title, role: t.role },
        })
        return u!
      })
      return taskView(row)
    },
  )

  app.post(
    '/tasks/:id/complete',
    {
      schema: {
        tags: ['workflows'],
        summary: "Complete a task with an outcome and the form's data; the workflow goes on",
        params: IdParams,
        body: Type.Object(
          { outcome: Type.String({ maxLength: 64 }), data: Type.Optional(Type.Record(Type.String(), Type.Unknown())) },
          { additionalProperties: false },
        ),
        response: { 200: TaskView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.kind !== 'user') throw AUTH.FORBIDDEN({ permission: 'a user (not an API key)' })
      const meta = auditMeta(request)
      const { outcome } = request.body
      const data = request.body.data ?? {}
      const { row, jobs } = await orgTx(k, p.orgId, async (tx) => {
        const t = await load(tx, p, request.params.id, true)
        if (t.status === 'claimed' && t.claimed_by !== p.userId)
          throw WFL.TASK_NOT_OPEN({ status: 'claimed by someone else' })
        if (t.status !== 'open' && t.status !== 'claimed') throw WFL.TASK_NOT_OPEN({ status: t.status })
        if (!t.outcomes.includes(outcome)) throw WFL.OUTCOME_INVALID({ outcome, outcomes: t.outcomes })
        if (t.form) {
          let validate = formValidators.get(t.id)
          if (!validate) formValidators.set(t.id, (validate = compileJsonSchema(t.form)))
          const problems = validate(data)
          if (problems.length)
            throw WFL.FORM_INVALID({
              reason: problems.map((x) => `${x.pointer || '/'} ${x.message}`).join('; '),
              problems,
            })
        }
        const [u] = await tx.sql<TaskRow>(
          `update workflow_tasks set status = 'completed', outcome = ?, result = ?::jsonb, completed_by = ?::uuid, completed_at = now() where id = ?::uuid returning *`,
          [outcome, JSON.stringify(data), p.userId, t.id],
        )
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'workflow.task.completed',
          target: { kind: 'workflow_task', id: t.id },
          data: { title: t.title, role: t.role, outcome, data, instanceId: t.instance_id },
        })
        await emitTaskEvent(tx, 'workflow.task.completed', t, { outcome, by: p.userId })
        const jobs = await k.workflows.resume(
          tx,
          p.orgId,
          t.instance_id,
          (w) => w.kind === 'task' && w.taskId === t.id,
          () => t.next[outcome]!,
          () => ({ outcome, data, by: p.userId, input: t.input }),
        )
        workflowMetrics.tasks.inc({ plugin: t.plugin, workflow: t.workflow, event: 'completed' })
        workflowMetrics.taskWait.observe(
          { plugin: t.plugin, workflow: t.workflow },
          (Date.now() - new Date(t.created_at).getTime()) / 1000,
        )
        return { row: u!, jobs }
      })
      await k.workflows.enqueueAfterCommit(jobs)
      return taskView(row)
    },
  )
}
