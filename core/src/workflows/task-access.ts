import { Type } from '@sinclair/typebox'
import type { Tx } from '../db/database.js'
import { KRN } from '../errors.js'
import type { Principal } from '../identity/principal.js'
import { PageQuery } from '../http/pagination.js'
import { WFL } from './errors.js'
import type { TaskRow } from './task-view.js'

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

/** The inbox's query: which tasks (by status), narrowed by filters that combine (all must hold), and a page. */
export const TaskQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Union(
        ['open', 'claimed', 'completed', 'cancelled', 'active'].map((s) => Type.Literal(s)),
        { description: '`active` (the default) is open and claimed ones.' },
      ),
    ),
    assignee: Type.Optional(
      Type.Literal('me', { description: '`me`: only tasks claimed by the caller or assigned to the caller.' }),
    ),
    role: Type.Optional(
      Type.String({
        pattern: '^[a-z][a-z0-9_-]{1,62}$',
        description:
          'Only tasks for this tenant role (among those the caller sees: a role the caller does not hold gives only tasks assigned to the caller).',
      }),
    ),
    plugin: Type.Optional(
      Type.String({
        pattern: '^@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$',
        description: 'Only tasks of workflows of this plugin (`@scope/name`).',
      }),
    ),
    overdue: Type.Optional(
      Type.Boolean({
        description: '`true`: only open or claimed tasks whose SLA due time has passed; `false`: all others.',
      }),
    ),
    ...PageQuery,
  },
  { additionalProperties: false },
)

export interface TaskFilters {
  status?: string
  assignee?: 'me'
  role?: string
  plugin?: string
  overdue?: boolean
}

/**
 * The `where` clause (ending in `and`) and its parameters of the tasks the caller sees — for
 * their roles and not assigned to anyone, or assigned to them — narrowed by `q`'s filters.
 * Filters only narrow: nothing outside what the caller sees unfiltered is ever matched. `now`
 * is the workflow runtime's time (milliseconds), the one SLAs are swept by.
 */
export function taskInboxWhere(p: Principal, roles: string[], q: TaskFilters, now: number) {
  const me = p.kind === 'user' ? p.userId : null
  const status = q.status ?? 'active'
  const overdue = q.overdue ?? null
  return {
    where: `where (case when ? = 'active' then status in ('open', 'claimed') else status = ? end)
        and ((assignee is null and role = any(?::text[])) or assignee = ?::uuid)
        and (?::boolean is not true or assignee = ?::uuid or claimed_by = ?::uuid)
        and (?::text is null or role = ?)
        and (?::text is null or plugin = ?)
        and (?::boolean is null or (status in ('open', 'claimed') and due_at is not null and due_at <= ?::timestamptz) = ?::boolean)
        and`,
    params: [
      status,
      status,
      roles,
      me,
      q.assignee === 'me',
      me,
      me,
      q.role ?? null,
      q.role ?? null,
      q.plugin ?? null,
      q.plugin ?? null,
      overdue,
      new Date(now).toISOString(),
      overdue,
    ],
  }
}

/** The caller's role names in its organisation (tasks are assigned to roles). */
export async function rolesOf(tx: Tx, p: Principal): Promise<string[]> {
  if (p.kind !== 'user') return []
  return memberRoles(tx, p.userId, p.orgId)
}

/** The roles a user holds in an organisation. */
export async function memberRoles(tx: Tx, userId: string, orgId: string): Promise<string[]> {
  const rows = await tx.sql<{ role_name: string }>(
    'select role_name from trellis_auth_memberships(?::uuid) where tenant_id = ?::uuid',
    [userId, orgId],
  )
  return rows.map((r) => r.role_name)
}

/** Whether the caller may act on the task: it is assigned to them, or they hold its role. */
function mayAct(t: TaskRow, p: Principal, roles: string[]): boolean {
  if (t.assignee) return p.kind === 'user' && p.userId === t.assignee
  return t.role !== null && roles.includes(t.role)
}

/** The task, when the caller may act on it (else WFL_ERR_NOT_YOUR_TASK). */
export async function loadTask(tx: Tx, p: Principal, id: string, forUpdate: boolean): Promise<TaskRow> {
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
