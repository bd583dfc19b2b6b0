import type { QueueJob } from '../events/queue.js'

/** A workflow_instances row. */
export interface InstanceRow {
  id: string
  tenant_id: string
  installation_id: string
  plugin: string
  version_id: string
  version: string
  workflow: string
  status: 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled' | 'compensating'
  step: string | null
  step_seq: number
  attempt: number
  input: unknown
  output: unknown
  error: unknown
  wait: Wait | null
  run_at: Date
  compensations: Array<{ step: string; input: unknown }>
  started_by: string
  started_at: Date
  updated_at: Date
  finished_at: Date | null
}

/** What a waiting instance waits for. */
export type Wait =
  | { kind: 'event'; type: string; match: Record<string, unknown>; next: string; onTimeout: string; input: unknown }
  | { kind: 'timer'; next: string; input: unknown }
  | { kind: 'task'; taskId: string }

export type EventWait = Extract<Wait, { kind: 'event' }>

/** The data of a step job. */
export interface StepJob {
  tenantId: string
  instanceId: string
  seq: number
  attempt: number
}

/** The job that runs one attempt of one step; its id says which (BullMQ refuses ':' in ids). */
export const jobOf = (
  tenantId: string,
  id: string,
  seq: number,
  attempt: number,
  delayMs = 0,
  suffix = '',
): QueueJob => ({
  id: `wf.${id}.${seq}.${attempt}${suffix}`,
  name: 'step',
  data: { tenantId, instanceId: id, seq, attempt } satisfies StepJob,
  ...(delayMs > 0 ? { delayMs } : {}),
})

export const iso = (d: Date | string | number | null): string | null => (d === null ? null : new Date(d).toISOString())
