import type { HostOps } from '@trellis/plugin-sdk'
import type { QueueJob } from '../events/queue.js'
import { createInstance } from '../workflows/instance-create.js'
import type { Running } from './host-calls.js'

/** Adds a started instance's first step job to the workflow queue (the runtime registers it when it starts). */
export type WorkflowJobs = (jobs: QueueJob[]) => Promise<void>

/**
 * `ctx.workflows.start`: creates an instance of one of the plugin's own workflows, pinned to
 * the invocation's version, in the invocation's transaction — it exists only if the invocation
 * commits, and its first step is queued after the commit (`tree.afterCommit`). A `startKey`
 * the workflow already started with (an event's delivery uses `event:<event id>`) starts
 * nothing and answers that instance. Who started it is the invocation's caller
 * (`user:<id>`, `event:<id>`, …).
 */
export async function startWorkflow(
  enqueue: WorkflowJobs | undefined,
  run: Running,
  args: HostOps['workflows.start']['args'],
): Promise<HostOps['workflows.start']['result']> {
  const { tree, inst, version } = run
  const startedBy = `${run.caller.kind}:${run.caller.id}`
  return tree.tx.use(async (tx) => {
    const created = await createInstance(
      tx,
      tree.tenantId,
      inst,
      version,
      args.workflow,
      args.input,
      startedBy,
      args.startKey,
    )
    if (created) {
      const { job } = created
      // Without a running workflow runtime, the stalled-step sweep finds the instance once one runs.
      if (enqueue) tree.afterCommit.push(() => enqueue([job]))
      return { instanceId: created.row.id, started: true }
    }
    const [existing] = await tx.sql<{ id: string }>(
      `select id from workflow_instances where installation_id = ?::uuid and workflow = ? and start_key = ?`,
      [inst.id, args.workflow, args.startKey ?? null],
    )
    return { instanceId: existing!.id, started: false }
  })
}
