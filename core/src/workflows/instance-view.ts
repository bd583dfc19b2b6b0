import { Type } from '@sinclair/typebox'
import type { InstanceRow } from './engine.js'
import { TaskView } from './task-view.js'

// A workflow instance as the API shows it, with its step history and tasks.

export const Uuid = Type.String({ format: 'uuid' })
const StepView = Type.Object({
  seq: Type.Integer(),
  step: Type.String(),
  attempt: Type.Integer(),
  status: Type.String(),
  input: Type.Unknown(),
  output: Type.Unknown(),
  error: Type.Unknown(),
  startedAt: Type.String(),
  finishedAt: Type.String(),
  wallMs: Type.Number(),
})
export const InstanceView = Type.Object({
  id: Uuid,
  plugin: Type.String(),
  workflow: Type.String(),
  version: Type.String({ description: 'The plugin version it started on, and finishes on.' }),
  status: Type.String({ description: 'running, waiting, completed, failed, cancelled or compensating' }),
  step: Type.Union([Type.String(), Type.Null()]),
  waitingFor: Type.Unknown({ description: 'event, timer or task it waits for' }),
  input: Type.Unknown(),
  output: Type.Unknown(),
  error: Type.Unknown(),
  startedBy: Type.String(),
  startedAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
})
export const Detail = Type.Intersect([
  InstanceView,
  Type.Object({ history: Type.Array(StepView), tasks: Type.Array(TaskView) }),
])
export const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())

export const instanceView = (r: InstanceRow) => ({
  id: r.id,
  plugin: r.plugin,
  workflow: r.workflow,
  version: r.version,
  status: r.status,
  step: r.step,
  waitingFor: r.wait,
  input: r.input,
  output: r.output,
  error: r.error,
  startedBy: r.started_by,
  startedAt: iso(r.started_at)!,
  finishedAt: iso(r.finished_at),
})
