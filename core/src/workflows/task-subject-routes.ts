import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { PluginHost } from '../plugins/plugin-host.js'
import { AUTH, PLG } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { effectivePermissions } from '../plugins/plugin-routes.js'
import type { TaskRow } from './task-view.js'
import { iso } from './instance-view.js'

const Time = Type.Union([Type.String(), Type.Null()])

/** Where a task stands, without what it shows its deciders (data, form, result). */
export const TaskSummary = Type.Object({
  id: Type.String({ format: 'uuid' }),
  workflow: Type.String(),
  title: Type.String(),
  role: Type.Union([Type.String(), Type.Null()], { description: 'Holders of this tenant role decide.' }),
  status: Type.String({ description: 'open, claimed, completed or cancelled' }),
  dueAt: Time,
  outcome: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  completedAt: Time,
})

export const TaskSubjectQuery = Type.Object(
  {
    plugin: Type.String({
      pattern: '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$',
      description: 'The plugin whose workflows made the tasks (`@scope/name`).',
    }),
    field: Type.String({
      pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$',
      description: 'A top-level field of the tasks’ data naming their subject (`order`).',
    }),
    value: Type.String({ minLength: 1, maxLength: 200, description: 'The subject (`SO-1`).' }),
  },
  { additionalProperties: false },
)

const LIMIT = 50

/**
 * `GET /v1/tasks/about`: the tasks a plugin's workflows opened about one of its records (an
 * order's price approval), for anyone who may work with that plugin — a caller holding one of
 * the permissions it contributes. They see that a task exists, for which role, in which state
 * and by when; what the task shows its deciders stays with the holders of its role (the inbox).
 * Newest first, at most 50. ADR 0067.
 */
export function registerTaskSubjectRoutes(
  app: Api,
  deps: { orgTx: OrgTx; plugins: Pick<PluginHost, 'installed' | 'currentVersion'> },
): void {
  app.get(
    '/tasks/about',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['workflows'],
        summary: "A plugin's tasks about one of its records (their state, not their content)",
        querystring: TaskSubjectQuery,
        response: { 200: Type.Object({ items: Type.Array(TaskSummary) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const q = request.query
      const inst = p.orgKind === 'tenant' ? (await deps.plugins.installed(p.orgId)).byPlugin.get(q.plugin) : undefined
      if (!inst) throw PLG.NOT_INSTALLED({ name: q.plugin })
      const contributed = (await deps.plugins.currentVersion(p.orgId, inst)).manifest.permissions ?? []
      const held = effectivePermissions(p.permissions, contributed)
      if (!contributed.some((c) => held.has(c.name)))
        throw AUTH.FORBIDDEN({ permission: `one of ${q.plugin}'s permissions` })
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<TaskRow>(
          `select * from workflow_tasks where plugin = ? and data ->> ? = ? order by created_at desc, id desc limit ${LIMIT}`,
          [q.plugin, q.field, q.value],
        ),
      )
      return {
        items: rows.map((t) => ({
          id: t.id,
          workflow: t.workflow,
          title: t.title,
          role: t.role,
          status: t.status,
          dueAt: iso(t.due_at),
          outcome: t.outcome,
          createdAt: iso(t.created_at)!,
          completedAt: iso(t.completed_at),
        })),
      }
    },
  )
}
