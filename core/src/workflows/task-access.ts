import { Type } from '@sinclair/typebox'
import type { Tx } from '../db/database.js'
import { KRN } from '../errors.js'
import type { Principal } from '../identity/principal.js'
import { WFL } from './errors.js'
import type { TaskRow } from './task-view.js'

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

/** The caller's role names in its organisation (tasks are assigned to roles). */
export async function rolesOf(tx: Tx, p: Principal): Promise<string[]> {
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
