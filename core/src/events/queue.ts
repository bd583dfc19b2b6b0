import type { Tx } from '../db/database.js'

/** One unit of work: `id` makes adding it again (a re-dispatch) a no-op while it is queued. */
export interface QueueJob {
  id: string
  name: string
  data: Record<string, unknown>
  delayMs?: number
}

export interface RunningJob {
  id: string
  name: string
  data: Record<string, unknown>
  /** 1 on the first run. */
  attempt: number
}

export type JobHandler = (job: RunningJob) => Promise<void>

/**
 * The event queue. Two implementations behind it — BullMQ on Redis and a PostgreSQL job table
 * — pass the same contract suite (core/test/event-queue-contract.test.ts): jobs run at least
 * once, in the order added (when not delayed), a failing job runs again later, a delayed job
 * not before its delay.
 */
export interface JobQueue {
  readonly kind: 'postgres' | 'bullmq'
  /**
   * Adds jobs. `tx` is the transaction the caller is in; the PostgreSQL queue writes the jobs
   * in it (so they commit with it), BullMQ ignores it.
   */
  add(jobs: QueueJob[], tx?: Tx): Promise<void>
  /** Starts running jobs with `handler`, up to `concurrency` at once. */
  work(handler: JobHandler, opts?: { concurrency?: number }): void
  /** Stops taking jobs, waits for running ones, and disconnects. */
  close(): Promise<void>
}

/** How long a failing job waits before it runs again. */
export const RETRY_DELAY_MS = 250
