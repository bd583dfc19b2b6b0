import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'
import type { TaskSpec } from './directives.js'
import type { InstanceRow } from './instance-row.js'
import { workflowMetrics } from './metrics.js'

const at = (ms: number) => new Date(ms).toISOString()

/** What a task event says of its task (a workflow_tasks row has these columns). */
export interface TaskFields {
  id: string
  instance_id: string
  plugin: string
  workflow: string
  title: string
  role: string | null
}

/** Emits `workflow.task.<what>` about the task, with `extra` fields (the outcome, who decided). */
export async function emitTaskEvent(
  tx: Tx,
  type: 'workflow.task.created' | 'workflow.task.escalated' | 'workflow.task.completed',
  t: TaskFields,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await emitEvents(
    tx,
    kernelEvent(type, `workflow/${t.instance_id}`, {
      taskId: t.id,
      instanceId: t.instance_id,
      plugin: t.plugin,
      workflow: t.workflow,
      title: t.title,
      role: t.role,
      ...extra,
    }),
  )
}

/**
 * Opens a human task for the instance (which now waits for it), due `slaMs` after `now`, and
 * says so with `workflow.task.created`.
 */
export async function openTask(
  tx: Tx,
  row: InstanceRow,
  seq: number,
  t: TaskSpec,
  compensations: string,
  now: number,
): Promise<void> {
  const taskId = uuidv7()
  await tx.sql(
    `insert into workflow_tasks (id, instance_id, step_seq, plugin, workflow, title, role, assignee, form, outcomes, next, data, input, sla_ms, due_at, escalate_to)
     values (?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?::uuid, ?::jsonb, ?::text[], ?::jsonb, ?::jsonb, ?::jsonb, ?, ?::timestamptz, ?)`,
    [
      taskId,
      row.id,
      seq,
      row.plugin,
      row.workflow,
      t.title,
      t.role,
      t.assignee,
      t.form ? JSON.stringify(t.form) : null,
      t.outcomes,
      JSON.stringify(t.next),
      JSON.stringify(t.data ?? null),
      JSON.stringify(t.input ?? null),
      t.slaMs,
      t.slaMs === null ? null : at(now + t.slaMs),
      t.escalateTo,
    ],
  )
  await tx.sql(
    `update workflow_instances set step = null, step_seq = ?, attempt = 0, status = 'waiting', wait = ?::jsonb, run_at = 'infinity', compensations = ?::jsonb, updated_at = now() where id = ?::uuid`,
    [seq, JSON.stringify({ kind: 'task', taskId }), compensations, row.id],
  )
  const task = {
    id: taskId,
    instance_id: row.id,
    plugin: row.plugin,
    workflow: row.workflow,
    title: t.title,
    role: t.role,
  }
  await emitTaskEvent(tx, 'workflow.task.created', task)
  workflowMetrics.tasks.inc({ plugin: row.plugin, workflow: row.workflow, event: 'created' })
}

/**
 * A task past its SLA at `now`: passed to its escalation role (open again, due a new SLA later)
 * once, and counted as a breach; without an escalation role it is only marked escalated.
 */
export async function escalateTask(tx: Tx, taskId: string, now: number): Promise<void> {
  const [t] = await tx.sql<TaskFields>(
    `update workflow_tasks set escalated_at = ?::timestamptz, role = coalesce(escalate_to, role), status = case when escalate_to is null then status else 'open' end,
            claimed_by = case when escalate_to is null then claimed_by else null end,
            due_at = case when escalate_to is null or sla_ms is null then due_at else ?::timestamptz + (sla_ms || ' milliseconds')::interval end
      where id = ?::uuid and escalated_at is null and status in ('open', 'claimed') returning *`,
    [at(now), at(now), taskId],
  )
  if (!t) return
  await emitTaskEvent(tx, 'workflow.task.escalated', t)
  workflowMetrics.tasks.inc({ plugin: t.plugin, workflow: t.workflow, event: 'escalated' })
}
