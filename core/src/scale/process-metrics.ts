import { Counter, Gauge, type Metric } from 'prom-client'
import type { JobQueue } from '../events/queue.js'
import type { ProcessRole } from '../config.js'

/**
 * What proves which process did what: jobs run per queue (an API process's stay at zero), the
 * process's role, and whether it is draining. Registered on `/metrics` of every role.
 */
class ProcessMetrics {
  private readonly registers: [] = []
  readonly jobs = new Counter({
    name: 'trellis_jobs_processed_total',
    help: 'Queue jobs this process ran, by queue (events, workflows); zero on an API process',
    labelNames: ['queue'],
    registers: this.registers,
  })
  readonly role = new Gauge({
    name: 'trellis_process_role',
    help: 'The role this process runs (TRELLIS_ROLE): 1 for its role',
    labelNames: ['role'],
    registers: this.registers,
  })
  readonly draining = new Gauge({
    name: 'trellis_draining',
    help: '1 while the process drains after SIGTERM (readyz answers 503)',
    registers: this.registers,
  })

  metrics(): Metric[] {
    return [this.jobs, this.role, this.draining]
  }

  setRole(role: ProcessRole): void {
    this.role.reset()
    this.role.set({ role }, 1)
  }
}

export const processMetrics = new ProcessMetrics()

/** The queue, counting every job its workers run in `trellis_jobs_processed_total{queue}`. */
export function countingQueue(queue: JobQueue, label: string): JobQueue {
  return new Proxy(queue, {
    get(target, prop, receiver) {
      if (prop === 'work')
        return (handler: Parameters<JobQueue['work']>[0], opts?: Parameters<JobQueue['work']>[1]) =>
          target.work(async (job) => {
            processMetrics.jobs.inc({ queue: label })
            await handler(job)
          }, opts)
      const v = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
}
