/**
 * The kernel's own metrics, over its telemetry (the `kernel_telemetry_records` view: workflow
 * instances, human tasks, webhook deliveries, plugin invocations shaped like plugin records).
 * Every tenant has them, named `kernel.<metric>`, answered like any declared metric.
 */
import type { MetricDeclaration } from './types.js'

/** The source name kernel metrics read from: the view, not `plugin_records`. */
export const KERNEL_SOURCE = 'trellis/kernel'

export const KERNEL_METRICS: Record<string, MetricDeclaration> = {
  workflow_cycle_time: {
    title: 'Workflow cycle time',
    description: 'Average hours from start to completion of completed workflow instances',
    permission: 'workflows.manage',
    collection: 'workflow_instances',
    measure: { avg: 'hours' },
    time: 'finishedAt',
    filter: { status: 'completed' },
    dimensions: { plugin: 'plugin', workflow: 'workflow' },
    decimals: 3,
    unit: 'hours',
  },
  workflow_exceptions: {
    title: 'Workflow exceptions by type',
    description: 'Workflow instances that failed, by the error that failed them',
    permission: 'workflows.manage',
    collection: 'workflow_instances',
    measure: { count: true },
    time: 'finishedAt',
    filter: { status: 'failed' },
    dimensions: { plugin: 'plugin', workflow: 'workflow', error: 'error' },
    unit: 'count',
  },
  sla_breaches: {
    title: 'Task SLA breaches',
    description: 'Human tasks that missed their SLA (escalated), by when they were escalated',
    permission: 'workflows.manage',
    collection: 'workflow_tasks',
    measure: { count: true },
    time: 'escalatedAt',
    dimensions: { plugin: 'plugin', workflow: 'workflow', role: 'role' },
    unit: 'count',
  },
  task_handling_time: {
    title: 'Task handling time',
    description: 'Average hours from a task being opened to its completion',
    permission: 'workflows.manage',
    collection: 'workflow_tasks',
    measure: { avg: 'hours' },
    time: 'completedAt',
    filter: { status: 'completed' },
    dimensions: { plugin: 'plugin', workflow: 'workflow', role: 'role' },
    decimals: 3,
    unit: 'hours',
  },
  webhook_failures: {
    title: 'Webhook failures',
    description: 'Webhook deliveries that failed for good (dead letter, gone, endpoint disabled)',
    permission: 'webhooks.manage',
    collection: 'webhook_deliveries',
    measure: { count: true },
    time: 'createdAt',
    filter: { status: 'failed' },
    dimensions: { eventType: 'eventType', reason: 'reason' },
    unit: 'count',
  },
  plugin_invocation_errors: {
    title: 'Plugin invocation errors',
    description: 'Plugin invocations that ended in an error, by plugin and error code',
    permission: 'plugins.install',
    collection: 'plugin_invocations',
    measure: { count: true },
    time: 'startedAt',
    filter: { outcome: 'error' },
    dimensions: { plugin: 'plugin', kind: 'kind', error: 'error' },
    unit: 'count',
  },
  plugin_cpu: {
    title: 'Plugin CPU time',
    description: 'Milliseconds of CPU plugin invocations used',
    permission: 'plugins.install',
    collection: 'plugin_invocations',
    measure: { sum: 'cpuMs' },
    time: 'startedAt',
    dimensions: { plugin: 'plugin', kind: 'kind' },
    decimals: 3,
    unit: 'ms',
  },
}
