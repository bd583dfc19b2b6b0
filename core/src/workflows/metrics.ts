import { Counter, Histogram, Registry } from 'prom-client'

/**
 * Prometheus metrics of the workflow runtime, labelled by plugin, workflow and step — never by
 * tenant. Per-tenant figures (latency percentiles, time waiting on people, SLA breaches) are at
 * GET /v1/workflows/metrics.
 */
export class WorkflowMetrics {
  readonly registry = new Registry()
  private readonly registers = [this.registry]
  readonly instances = new Counter({
    name: 'trellis_workflow_instances_total',
    help: 'Workflow instances by outcome: started, completed, failed, cancelled',
    labelNames: ['plugin', 'workflow', 'outcome'],
    registers: this.registers,
  })
  readonly duration = new Histogram({
    name: 'trellis_workflow_instance_duration_seconds',
    help: 'Time from start to end of workflow instances, by outcome',
    labelNames: ['plugin', 'workflow', 'outcome'],
    buckets: [0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400, 604800],
    registers: this.registers,
  })
  readonly steps = new Histogram({
    name: 'trellis_workflow_step_duration_seconds',
    help: 'Workflow step runs by outcome (completed, failed)',
    labelNames: ['plugin', 'workflow', 'step', 'outcome'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: this.registers,
  })
  readonly tasks = new Counter({
    name: 'trellis_workflow_tasks_total',
    help: 'Human tasks by event: created, completed, escalated (an SLA breach)',
    labelNames: ['plugin', 'workflow', 'event'],
    registers: this.registers,
  })
  readonly taskWait = new Histogram({
    name: 'trellis_workflow_task_wait_seconds',
    help: 'Time human tasks waited from creation to completion',
    labelNames: ['plugin', 'workflow'],
    buckets: [1, 10, 60, 300, 1800, 3600, 14400, 86400, 604800],
    registers: this.registers,
  })

  metrics() {
    return [this.instances, this.duration, this.steps, this.tasks, this.taskWait]
  }
}

/** The process's workflow metrics (shown at /metrics). */
export const workflowMetrics = new WorkflowMetrics()
