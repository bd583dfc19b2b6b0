import { Type } from '@sinclair/typebox'
import { compileJsonSchema } from '@trellis/plugin-sdk'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf } from '../http/guards.js'
import { emitTaskEvent } from './human-tasks.js'
import { WFL } from './errors.js'
import type { WorkflowEngine } from './engine.js'
import { TaskView, taskView, type TaskRow } from './task-view.js'
import { workflowMetrics } from './metrics.js'
import { IdParams, loadTask } from './task-access.js'

const formValidators = new Map<string, ReturnType<typeof compileJsonSchema>>()

/** Deciding a task: the outcome and the form's data, validated and audited; the workflow goes on. */
export function registerTaskDecisionRoutes(
  app: Api,
  deps: { orgTx: OrgTx; workflows: Pick<WorkflowEngine, 'resume' | 'enqueueAfterCommit'> },
): void {
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
      const { row, jobs } = await deps.orgTx(p.orgId, async (tx) => {
        const t = await loadTask(tx, p, request.params.id, true)
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
        const [u] = await auditedWrite<TaskRow>(tx, {
          write: {
            sql: `update workflow_tasks set status = 'completed', outcome = ?, result = ?::jsonb, completed_by = ?::uuid, completed_at = now() where id = ?::uuid returning *`,
            params: [outcome, JSON.stringify(data), p.userId, t.id],
          },
          auditOrg: p.orgId,
          audit: {
            ...meta,
            action: 'workflow.task.completed',
            target: { kind: 'workflow_task', id: t.id },
            data: { title: t.title, role: t.role, outcome, data, instanceId: t.instance_id },
          },
        })
        await emitTaskEvent(tx, 'workflow.task.completed', t, { outcome, by: p.userId })
        const jobs = await deps.workflows.resume(
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
      await deps.workflows.enqueueAfterCommit(jobs)
      return taskView(row)
    },
  )
}
