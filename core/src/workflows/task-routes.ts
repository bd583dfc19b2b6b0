import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf } from '../http/guards.js'
import { pageAfterCursor } from '../http/pagination.js'
import { WFL } from './errors.js'
import { systemClock, type WorkflowClock } from './clock.js'
import { TaskView, taskView, type TaskRow } from './task-view.js'
import { IdParams, TaskQuery, loadTask, rolesOf, taskInboxWhere } from './task-access.js'

/**
 * Tasks for people: the open ones for my roles (or assigned to me), filtered by mine, role,
 * plugin and overdue; claim, complete with an outcome and the form's data. Only holders of the
 * task's role act; the data is validated against the form; every decision and who made it is
 * audited. `clock` is the workflow runtime's (what `overdue` compares due times with).
 */
export function registerTaskRoutes(app: Api, deps: { orgTx: OrgTx; clock?: WorkflowClock }): void {
  app.get(
    '/tasks',
    {
      schema: {
        tags: ['workflows'],
        summary: 'Tasks for my roles, or assigned to me (default: open and claimed ones), filtered',
        querystring: TaskQuery,
        response: {
          200: Type.Object({ items: Type.Array(TaskView), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const q = request.query
      const now = (deps.clock ?? systemClock).now()
      return deps.orgTx(p.orgId, async (tx) => {
        const { where, params } = taskInboxWhere(p, await rolesOf(tx, p), q, now)
        return pageAfterCursor(tx, { select: `select * from workflow_tasks ${where}`, params }, q, taskView)
      })
    },
  )

  app.get(
    '/tasks/:id',
    { schema: { tags: ['workflows'], summary: 'One task', params: IdParams, response: { 200: TaskView } } },
    async (request) => {
      const p = principalOf(request)
      return taskView(await deps.orgTx(p.orgId, (tx) => loadTask(tx, p, request.params.id, false)))
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
      const row = await deps.orgTx(p.orgId, async (tx) => {
        const t = await loadTask(tx, p, request.params.id, true)
        if (t.status !== 'open' && !(t.status === 'claimed' && t.claimed_by === p.userId))
          throw WFL.TASK_NOT_OPEN({ status: t.status === 'claimed' ? 'claimed by someone else' : t.status })
        const [u] = await auditedWrite<TaskRow>(tx, {
          write: {
            sql: `update workflow_tasks set status = 'claimed', claimed_by = ?::uuid where id = ?::uuid returning *`,
            params: [p.userId, t.id],
          },
          auditOrg: p.orgId,
          audit: {
            ...meta,
            action: 'workflow.task.claimed',
            target: { kind: 'workflow_task', id: t.id },
            data: { title: t.title, role: t.role },
          },
        })
        return u!
      })
      return taskView(row)
    },
  )
}
