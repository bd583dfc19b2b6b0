import type { Tx } from '../db/database.js'

/**
 * One unit of work: `id` makes adding it again (a re-dispatch) a no-op while it is queued.
 * `data.tenantId`, when a string, names the tenant the work is for: the queue takes tenants in
 * turn and caps how many jobs one tenant may have queued (ADR 0012). Jobs without one share a
 * single lane of their own.
 */
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

/** What an add did not queue. */
export interface AddResult {
  /**
   * Ids of jobs left out because their tenant already had `tenantCap` jobs queued. Their work
   * is not lost: it waits in PostgreSQL (unprocessed events, pending deliveries), where the
   * dispatcher's sweep finds it again once it is stale.
   */
  refused: string[]
}

export interface QueueOptions {
  /** At most this many queued (waiting, delayed or running) jobs per tenant; unlimited when absent. */
  tenantCap?: number
  /**
   * BullMQ: how long a running job's lock lasts without renewal (default 30 s) — how soon the
   * jobs of a worker that died (SIGKILL, a lost node) run again elsewhere.
   */
  lockMs?: number
}

/**
 * The event queue. Two implementations behind it — BullMQ on Redis and a PostgreSQL job table
 * — pass the same contract suite (core/test/events-queue-contract.test.ts): jobs run at least
 * once, one tenant's jobs in the order added (when not delayed), tenants in turn (a quiet
 * tenant's job is not stuck behind a busy tenant's backlog), a failing job runs again later, a
 * delayed job not before its delay, and a tenant past its cap gets no more jobs queued.
 */
export interface JobQueue {
  readonly kind: 'postgres' | 'bullmq'
  /**
   * Adds jobs. `tx` is the transaction the caller is in; the PostgreSQL queue writes the jobs
   * in it (so they commit with it), BullMQ ignores it.
   */
  add(jobs: QueueJob[], tx?: Tx): Promise<AddResult>
  /** Starts running jobs with `handler`, up to `concurrency` at once. */
  work(handler: JobHandler, opts?: { concurrency?: number }): void
  /** Stops taking jobs, waits for running ones, and disconnects. */
  close(): Promise<void>
}

/** How long a failing job waits before it runs again. */
export const RETRY_DELAY_MS = 250

/** The lane a job is scheduled in: its tenant, or '' for work of no tenant. */
export function tenantOf(job: Pick<QueueJob, 'data'>): string {
  const t = job.data.tenantId
  return typeof t === 'string' ? t : ''
}

/** The per-tenant cap of the event queue when the operator sets none (TRELLIS_QUEUE_TENANT_CAP). */
export const DEFAULT_TENANT_CAP = 1000
