import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import { TrellisError, type AiGenerationEventData } from '@trellis/plugin-sdk'
import { emitEvents } from '../events/outbox.js'
import type { JobQueue, QueueJob, RunningJob } from '../events/queue.js'
import type { TenantTx } from '../plugins/tenant-tx.js'
import type { TransactionSource, Tx } from '../db/database.js'
import { AI } from './errors.js'
import {
  claimGeneration,
  finishGeneration,
  type GenerationOutcome,
  queueGeneration,
  sweepGenerations,
} from './generation-store.js'
import type { AiCaller, AiCompleteRequest, AiCompleteResult, AiService } from './service.js'

/** Name of a long generation's job on the AI queue. */
export const GENERATION_JOB = 'ai.generation'

/** What a generation is asked with: who asked, what, and the event its answer arrives as. */
export interface GenerationRequest {
  tenantId: string
  /** The plugin's own declared event. */
  event: string
  /** The plugin that asked: the event's source. */
  plugin: string
  caller: AiCaller
  request: AiCompleteRequest
}

/** What a generation's job carries: only which generation (its row holds the rest). */
export interface GenerationJobData {
  tenantId: string
  generationId: string
}

/** What a plugin is given of a chat answer (`ctx.ai.complete`, and a generation's event). */
export function pluginAnswer(r: AiCompleteResult) {
  return {
    text: r.text,
    model: r.model,
    ...(r.json !== undefined ? { json: r.json } : {}),
    usage: r.usage,
    costMicros: r.costMicros,
    recordId: r.recordId,
  }
}

/** Adds generation jobs (the kernel's AI queue, once it runs). */
export type GenerationJobs = (jobs: QueueJob[]) => Promise<void>

/**
 * A job running generation `generationId`; `n` tells a sweeper's re-queue apart from the first
 * add. (No `:` in the id: BullMQ refuses custom ids with one.)
 */
export function jobOf(tenantId: string, generationId: string, n = 0): QueueJob {
  const data: GenerationJobData = { tenantId, generationId }
  return { id: `ai-generation_${generationId}${n ? `_s${n}` : ''}`, name: GENERATION_JOB, data: { ...data } }
}

/**
 * A new generation (ADR 0087): its row, written in the asking invocation's transaction by
 * `persist`, and its job, to add once that transaction has committed. Should the add never
 * happen (the process died in between), the sweeper queues the row again.
 */
export function generationJob(g: GenerationRequest): {
  job: QueueJob
  generationId: string
  persist: (tx: Tx) => Promise<void>
} {
  const generationId = uuidv7()
  return {
    job: jobOf(g.tenantId, generationId),
    generationId,
    persist: (tx) =>
      queueGeneration(tx, {
        id: generationId,
        installationId: g.caller.installationId ?? null,
        plugin: g.plugin,
        event: g.event,
        caller: g.caller,
        request: g.request,
      }),
  }
}

export interface AiGenerationsOptions {
  /**
   * How long one provider attempt of a long generation may take (default 45 s: above the
   * sandbox's wall clock).
   */
  timeoutMs?: number
  /** Generations run at once in this process (default 2). */
  concurrency?: number
  /** How long a worker holds a generation it runs before another may take it over (default 2 × timeoutMs + 30 s). */
  leaseMs?: number
  /** How long a generation may wait queued, or sit past its lease, before the sweeper queues it again (default 60 s). */
  staleMs?: number
  /** How often workers sweep (default 15 s; 0: never). */
  sweepEveryMs?: number
  /** Attempts after which a generation ends with AI_ERR_GENERATION_ABANDONED (default 3). */
  maxAttempts?: number
  /** The clock leases and sweeps go by (tests move it). */
  now?: () => number
}

/**
 * Long generations (ADR 0066, ADR 0087): the worker side. Each job claims its generation's row
 * (queued → running, with a lease), runs the governed model call — the AI service's own path,
 * so budget reservation and settlement, masking, screening, the record and its audit entry are
 * those of `ctx.ai.complete` — with a longer timeout than an invocation may last, then finishes
 * the row (done or failed, with the answer or the error's code) and writes the plugin's declared
 * event in the same tenant transaction, only if this attempt still held it: the event is
 * written once however often the job runs. A sweeper in worker processes queues again the
 * generations whose job was lost.
 */
export class AiGenerations {
  private readonly timeoutMs: number
  private readonly leaseMs: number
  private readonly staleMs: number
  private readonly maxAttempts: number
  private readonly now: () => number
  private timer: NodeJS.Timeout | undefined
  private sweeping: Promise<void> | undefined

  constructor(
    private readonly deps: {
      ai: AiService
      db: TransactionSource
      tenantTx: TenantTx
      queue: JobQueue
      logger: Logger
    },
    private readonly opts: AiGenerationsOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 45_000
    this.leaseMs = opts.leaseMs ?? 2 * this.timeoutMs + 30_000
    this.staleMs = opts.staleMs ?? 60_000
    this.maxAttempts = opts.maxAttempts ?? 3
    this.now = opts.now ?? Date.now
  }

  /** Adds jobs of committed invocations. */
  readonly enqueue: GenerationJobs = async (jobs) => {
    if (jobs.length) await this.deps.queue.add(jobs)
  }

  /** Works the queue and sweeps (worker processes); API processes only add to it. */
  start(consume = true): void {
    if (!consume) return
    this.deps.queue.work((job) => this.run(job), { concurrency: this.opts.concurrency ?? 2 })
    const every = this.opts.sweepEveryMs ?? 15_000
    if (every > 0) {
      this.timer = setInterval(() => {
        this.sweeping ??= this.sweep()
          .then(() => undefined)
          .catch((err) => this.deps.logger.warn({ err }, 'generation sweep failed'))
          .finally(() => {
            this.sweeping = undefined
          })
      }, every)
      this.timer.unref()
    }
  }

  /** Queues again the generations whose job was lost; answers how many. */
  async sweep(): Promise<number> {
    const lost = await sweepGenerations(this.deps.db, this.now(), this.staleMs)
    if (lost.length) {
      this.deps.logger.info({ generations: lost.map((g) => g.id) }, 'generations queued again')
      await this.deps.queue.add(lost.map((g) => jobOf(g.tenant_id, g.id, g.swept)))
    }
    return lost.length
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await this.sweeping
    await this.deps.queue.close()
  }

  private async run(job: RunningJob): Promise<void> {
    const { tenantId, generationId } = job.data as unknown as GenerationJobData
    const claimed = await this.deps.tenantTx(tenantId, (tx) =>
      claimGeneration(tx, generationId, this.now(), this.leaseMs),
    )
    // Finished already, or another worker holds it (its lease running): nothing to do.
    if (!claimed) return
    let data: AiGenerationEventData
    let outcome: GenerationOutcome
    if (claimed.attempt > this.maxAttempts) {
      const code = AI.GENERATION_ABANDONED({ attempts: claimed.attempt - 1 }).code
      data = { generationId, error: { code } }
      outcome = { status: 'failed', result: null, errorCode: code, recordId: null }
    } else
      try {
        const r = await this.deps.ai.complete(claimed.caller, claimed.request, { timeoutMs: this.timeoutMs })
        const answer = pluginAnswer(r)
        data = { generationId, answer }
        outcome = { status: 'done', result: answer, errorCode: null, recordId: r.recordId }
      } catch (err) {
        // Typed refusals and provider failures are on record already; anything else is logged.
        if (!(err instanceof TrellisError)) this.deps.logger.error({ err, generationId }, 'generation failed')
        const code = err instanceof TrellisError ? err.code : 'AI_ERR_PROVIDER_FAILED'
        data = { generationId, error: { code } }
        outcome = { status: 'failed', result: null, errorCode: code, recordId: null }
      }
    await this.deps.tenantTx(tenantId, async (tx) => {
      if (!(await finishGeneration(tx, generationId, claimed.attempt, outcome))) return
      await emitEvents(tx, {
        type: claimed.event,
        subject: `ai.generation/${generationId}`,
        data: data as unknown as Record<string, unknown>,
        source: claimed.plugin,
      })
    })
  }
}
