import type { Logger } from 'pino'
import type { Database, TransactionSource } from '../db/database.js'
import type { JobQueue, QueueJob } from '../events/queue.js'
import type { Installation } from '../plugins/installations.js'
import type { TenantTx } from '../plugins/tenant-tx.js'
import { systemClock, type WorkflowClock } from './clock.js'
import { createInstance } from './instance-create.js'
import type { InstanceRow } from './instance-row.js'
import { WorkflowSchedules } from './schedules.js'
import { StepRunner } from './step-runner.js'
import { WorkflowSweeper } from './sweeper.js'
import { InstanceTransitions } from './transitions.js'
import { WorkflowEvents } from './workflow-events.js'
import type { WorkflowPlugins } from './workflow-plugins.js'

export type { InstanceRow, Wait } from './instance-row.js'
export type { WorkflowClock } from './clock.js'
export type { WorkflowPlugins } from './workflow-plugins.js'

export interface EngineOptions {
  /** How often timers, timeouts, SLAs, schedules and stalled steps are looked at (ms). */
  sweepMs?: number
  /** A running step silent for this long is scheduled again (its job was lost). */
  stalledMs?: number
  /** How often installations are looked at for schedules they add (default 10 × sweepMs); a known schedule is looked at when due. */
  scheduleScanMs?: number
  concurrency?: number
  /**
   * When timers, event timeouts, SLAs and schedules are due, and what drives the sweeper
   * (default: the system clock). Tests pass a `ManualClock` (./clock.ts) and move it.
   */
  clock?: WorkflowClock
}

/** Exactly what the workflow runtime uses of the kernel. */
export interface WorkflowEngineDeps {
  db: Pick<Database, 'inOrg'>
  /**
   * Where the sweeper's and the schedules' scans run: the background pool (ADR 0098), so that a
   * sweep never takes a connection a request waits for. Defaults to `db`.
   */
  background?: TransactionSource
  logger: Logger
  /** The tenant transaction (seals audit, dispatches emitted events after commit). */
  tenantTx: TenantTx
  /** The queue its step jobs run on. */
  queue: JobQueue
  /** Runs steps; the runtime registers itself for installations' events when it starts. */
  plugins: WorkflowPlugins
}

/**
 * The durable workflow runtime. An instance is a row; each step runs as a job on the queue, as
 * one sandboxed invocation whose writes commit together with the step's record and the
 * instance's next state — so a step either happened once or not at all, and a kernel killed
 * mid-step runs that step again after restart. Waits, timers, SLAs, schedules and lost jobs are
 * found by a sweeper; events reach waiting instances through the plugin host.
 */
export class WorkflowEngine {
  readonly clock: WorkflowClock
  /** Resumes a waiting instance at `step` with `input`, in the caller's transaction (a task decided). */
  readonly resume: InstanceTransitions['resume']
  private readonly transitions: InstanceTransitions
  private readonly steps: StepRunner
  private readonly events: WorkflowEvents
  private readonly sweeper: WorkflowSweeper
  private stops: Array<() => void> = []
  private closed = false

  constructor(
    private readonly deps: WorkflowEngineDeps,
    private readonly opts: EngineOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock
    const clock = this.clock
    const { db, logger, tenantTx, plugins } = deps
    const enqueue = (jobs: QueueJob[]) => this.enqueueAfterCommit(jobs)
    this.transitions = new InstanceTransitions(() => clock.now())
    this.resume = this.transitions.resume.bind(this.transitions)
    this.steps = new StepRunner({ db, tenantTx, plugins, transitions: this.transitions })
    this.events = new WorkflowEvents({ tenantTx, transitions: this.transitions, create: createInstance, enqueue })
    const scans = deps.background ?? db
    const schedules = new WorkflowSchedules({ db: scans, logger, tenantTx, plugins, create: createInstance, enqueue })
    const sweepMs = opts.sweepMs ?? 1000
    this.sweeper = new WorkflowSweeper(
      { db: scans, logger, tenantTx, clock, transitions: this.transitions, schedules, enqueue },
      { stalledMs: opts.stalledMs ?? 30_000, scheduleScanMs: opts.scheduleScanMs ?? sweepMs * 10 },
    )
  }

  /**
   * Receives installations' events, works step jobs, and sweeps every `sweepMs` of its clock —
   * or, with `consume: false` (an API process), only queues the first steps of instances its
   * requests start: worker processes run the steps and the sweeps.
   */
  start(consume = true): void {
    // Kept after close: an event still delivered while the kernel stops starts or resumes its
    // instances durably (their jobs are found again by the stalled-step sweep), rather than
    // being acknowledged without them.
    this.deps.plugins.onPluginEvent(this.events)
    this.deps.plugins.onWorkflowStart((jobs) => this.enqueueAfterCommit(jobs))
    if (!consume) return
    this.deps.queue.work(
      async (job) => {
        await this.enqueueAfterCommit(await this.steps.run(job))
      },
      { concurrency: this.opts.concurrency ?? 4 },
    )
    this.stops.push(this.clock.every(this.opts.sweepMs ?? 1000, () => this.sweeper.sweep()))
  }

  async close(): Promise<void> {
    this.closed = true
    for (const stop of this.stops.splice(0)) stop()
    this.sweeper.close()
    await this.deps.queue.close()
  }

  /** Adds jobs made in a transaction, once it has committed. */
  async enqueueAfterCommit(jobs: QueueJob[]): Promise<void> {
    if (jobs.length && !this.closed) await this.deps.queue.add(jobs)
  }

  /** Starts an instance in its own transaction. */
  async startInstance(
    tenantId: string,
    inst: Installation,
    workflow: string,
    input: unknown,
    startedBy: string,
  ): Promise<InstanceRow> {
    const created = await this.deps.tenantTx(tenantId, async (tx) => {
      const version = await this.deps.plugins.versionOf(tx, inst)
      return createInstance(tx, tenantId, inst, version, workflow, input, startedBy)
    })
    await this.enqueueAfterCommit([created!.job])
    return created!.row
  }

  /** Sweeps now (timers, timeouts, SLAs, lost steps, schedules) and resolves when done. */
  sweep(): Promise<void> {
    return this.sweeper.sweep()
  }
}
