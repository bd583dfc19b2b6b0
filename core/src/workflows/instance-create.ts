import { v7 as uuidv7 } from 'uuid'
import type { ManifestWorkflow } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'
import type { QueueJob } from '../events/queue.js'
import type { Installation } from '../plugins/installations.js'
import type { PluginVersion } from '../plugins/versions.js'
import { mainSteps } from './directives.js'
import { WFL } from './errors.js'
import { jobOf, type InstanceRow } from './instance-row.js'
import { workflowMetrics } from './metrics.js'

/** The workflow of an installation's version, checking the capability. */
export function workflowOf(inst: Installation, version: PluginVersion, workflow: string): ManifestWorkflow {
  const wf = version.manifest.workflows?.[workflow]
  if (!wf || !Object.hasOwn(version.manifest.workflows!, workflow))
    throw WFL.WORKFLOW_NOT_FOUND({ plugin: inst.plugin, workflow })
  if (!inst.capabilities.includes('workflows')) throw WFL.NOT_GRANTED({ plugin: inst.plugin })
  return wf
}

export type CreateInstance = typeof createInstance

/**
 * Creates an instance in the caller's transaction, pinned to `version`; returns it and the job
 * to add once the transaction has committed. A `startKey` already used (the same event
 * delivered twice, the same scheduled run) starts nothing.
 */
export async function createInstance(
  tx: Tx,
  tenantId: string,
  inst: Installation,
  version: PluginVersion,
  workflow: string,
  input: unknown,
  startedBy: string,
  startKey?: string,
): Promise<{ row: InstanceRow; job: QueueJob } | undefined> {
  const wf = workflowOf(inst, version, workflow)
  const first = mainSteps(wf)[0]!
  const id = uuidv7()
  const [row] = await tx.sql<InstanceRow>(
    `insert into workflow_instances (id, installation_id, plugin, version_id, version, workflow, status, step, step_seq, attempt, input, started_by, start_key)
     values (?::uuid, ?::uuid, ?, ?::uuid, ?, ?, 'running', ?, 1, 0, ?::jsonb, ?, ?)
     on conflict do nothing returning *`,
    [
      id,
      inst.id,
      inst.plugin,
      version.id,
      version.version,
      workflow,
      first,
      JSON.stringify(input ?? null),
      startedBy,
      startKey ?? null,
    ],
  )
  if (!row) return undefined
  await emitEvents(
    tx,
    kernelEvent('workflow.instance.started', `workflow/${id}`, {
      instanceId: id,
      plugin: inst.plugin,
      workflow,
      version: version.version,
    }),
  )
  workflowMetrics.instances.inc({ plugin: inst.plugin, workflow, outcome: 'started' })
  return { row, job: jobOf(tenantId, id, 1, 0) }
}
