import { matchesEventPattern, type PluginManifest, type TrellisEvent } from '@trellis/plugin-sdk'
import type { QueueJob } from '../events/queue.js'
import type { Installation } from '../plugins/installations.js'
import type { PluginEventConsumer } from '../plugins/plugin-events.js'
import type { TenantTx } from '../plugins/tenant-tx.js'
import type { PluginVersion } from '../plugins/versions.js'
import type { EventWait, Wait } from './instance-row.js'
import type { CreateInstance } from './instance-create.js'
import { matches, type InstanceTransitions } from './transitions.js'

export interface WorkflowEventDeps {
  tenantTx: TenantTx
  transitions: InstanceTransitions
  create: CreateInstance
  enqueue(jobs: QueueJob[]): Promise<void>
}

/**
 * The workflow runtime's share of the events an installation receives: the workflows they
 * start, and the instances waiting for them. Registered with the plugin host when the runtime
 * starts.
 */
export class WorkflowEvents implements PluginEventConsumer {
  constructor(private readonly deps: WorkflowEventDeps) {}

  /** The events the version's workflows start on or wait for. */
  wants(manifest: PluginManifest): string[] {
    return Object.values(manifest.workflows ?? {}).flatMap((w) => [...(w.start?.events ?? []), ...(w.waitsFor ?? [])])
  }

  async deliver(tenantId: string, inst: Installation, version: PluginVersion, event: TrellisEvent): Promise<void> {
    const { transitions, create } = this.deps
    const jobs = await this.deps.tenantTx(tenantId, async (tx) => {
      const out: QueueJob[] = []
      for (const [name, wf] of Object.entries(version.manifest.workflows ?? {})) {
        if (!(wf.start?.events ?? []).some((p) => p === event.type || matchesEventPattern(p, event.type))) continue
        if (!inst.capabilities.includes('workflows')) continue
        const by = `event:${event.id}`
        const created = await create(tx, tenantId, inst, version, name, { event }, by, by)
        if (created) out.push(created.job)
      }
      const waiting = await tx.sql<{ id: string; wait: EventWait }>(
        `select id, wait from workflow_instances where installation_id = ?::uuid and status = 'waiting' and wait ->> 'kind' = 'event' and wait ->> 'type' = ?`,
        [inst.id, event.type],
      )
      const data = (event.data ?? {}) as Record<string, unknown>
      const view = { id: event.id, type: event.type, subject: event.subject, data: event.data, time: event.time }
      for (const w of waiting) {
        if (!matches(data, w.wait.match ?? {})) continue
        out.push(
          ...(await transitions.resume(
            tx,
            tenantId,
            w.id,
            (x) => x.kind === 'event',
            (x) => (x as EventWait).next,
            (x: Wait) => ({ event: view, timedOut: false, input: (x as EventWait).input }),
          )),
        )
      }
      return out
    })
    await this.deps.enqueue(jobs)
  }
}
