import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf } from '../http/guards.js'
import { PageQuery, decodeCursor, toPageOf } from '../http/pagination.js'
import { WFL } from './errors.js'
import { TaskView, taskView, type TaskRow } from './task-view.js'
import { IdParams, loadTask, rolesOf } from './task-access.js'

/**
 * Tasks for people: the open ones for my roles (or assigned to me), claim, complete with an
 * outcome and the form's data. Only holders of the task's role act; the data is validated
 * against the form; every decision and who made it is audited.
 */
export function registerTaskRoutes(app: Api, deps: { orgTx: OrgTx }): void {
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
      const rows = await deps.orgTx(p.orgId, async (tx) => {
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
