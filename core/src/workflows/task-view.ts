import { Type } from '@sinclair/typebox'

/** A workflow_tasks row. */
export interface TaskRow {
  id: string
  tenant_id: string
  instance_id: string
  step_seq: number
  plugin: string
  workflow: string
  title: string
  role: string | null
  assignee: string | null
  form: Record<string, unknown> | null
  outcomes: string[]
  next: Record<string, string>
  data: unknown
  input: unknown
  status: 'open' | 'claimed' | 'completed' | 'cancelled'
  claimed_by: string | null
  sla_ms: string | null
  due_at: Date | null
  escalate_to: string | null
  escalated_at: Date | null
  outcome: string | null
  result: unknown
  completed_by: string | null
  completed_at: Date | null
  created_at: Date
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())
const Time = Type.Union([Type.String(), Type.Null()])

/** A task as people see it. */
export const TaskView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  instanceId: Type.String({ format: 'uuid' }),
  plugin: Type.String(),
  workflow: Type.String(),
  title: Type.String(),
  role: Type.Union([Type.String(), Type.Null()], { description: 'Holders of this tenant role may act.' }),
  assignee: Type.Union([Type.String(), Type.Null()], { description: 'Or only this user.' }),
  status: Type.String({ description: 'open, claimed, completed or cancelled' }),
  outcomes: Type.Array(Type.String()),
  form: Type.Unknown({ description: 'JSON Schema of the data to submit with the outcome.' }),
  data: Type.Unknown({ description: 'What the workflow shows with the task.' }),
  claimedBy: Time,
  dueAt: Time,
  escalateTo: Type.Union([Type.String(), Type.Null()]),
  escalatedAt: Time,
  outcome: Type.Union([Type.String(), Type.Null()]),
  result: Type.Unknown(),
  completedBy: Time,
  completedAt: Time,
  createdAt: Type.String(),
})

export const taskView = (t: TaskRow) => ({
  id: t.id,
  instanceId: t.instance_id,
  plugin: t.plugin,
  workflow: t.workflow,
  title: t.title,
  role: t.role,
  assignee: t.assignee,
  status: t.status,
  outcomes: t.outcomes,
  form: t.form,
  data: t.data,
  claimedBy: t.claimed_by,
  dueAt: iso(t.due_at),
  escalateTo: t.escalate_to,
  escalatedAt: iso(t.escalated_at),
  outcome: t.outcome,
  result: t.result,
  completedBy: t.completed_by,
  completedAt: iso(t.completed_at),
  createdAt: iso(t.created_at)!,
})
