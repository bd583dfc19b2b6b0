import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import { TrellisError, type AiGenerationEventData } from '@trellis/plugin-sdk'
import { emitEvents } from '../events/outbox.js'
import type { JobQueue, QueueJob, RunningJob } from '../events/queue.js'
import type { TenantTx } from '../plugins/tenant-tx.js'
import type { AiCaller, AiCompleteRequest, AiCompleteResult, AiService } from './service.js'

/** Name of a long generation's job on the AI queue. */
export const GENERATION_JOB = 'ai.generation'

/** What a queued generation carries: who asked, what, and the event its answer arrives as. */
export interface GenerationJobData {
  tenantId: string
  generationId: string
  /** The plugin's own declared event. */
  event: string
  /** The plugin that asked: the event's source. */
  plugin: string
  caller: AiCaller
  request: AiCompleteRequest
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

/** A generation's job, with a fresh id; queued only once the invocation that asked has committed. */
export function generationJob(data: Omit<GenerationJobData, 'generationId'>): {
  job: QueueJob
  generationId: string
} {
  const generationId = uuidv7()
  const full: GenerationJobData = { ...data, generationId }
  return { job: { id: `ai-generation:${generationId}`, name: GENERATION_JOB, data: { ...full } }, generationId }
}

export interface AiGenerationsOptions {
  /**
   * How long one provider attempt of a long generation may take (default 45 s: above the
   * sandbox's wall clock, below the PostgreSQL job table's 60 s lease, which is not renewed).
   */
  timeoutMs?: number
  /** Generations run at once in this process (default 2). */
  concurrency?: number
}

/**
 * Long generations (ADR 0066): the worker side. Each job runs the governed model call — the AI
 * service's own path, so budget reservation and settlement, masking, screening, the record and
 * its audit entry are those of `ctx.ai.complete` — with a longer timeout than an invocation may
 * last, then writes the plugin's declared event with the answer or the error's code, in the
 * tenant's transaction (the outbox delivers it to the installation, and a workflow waiting for
 * it with the generation's id resumes).
 */
export class AiGenerations {
  private readonly timeoutMs: number

  constructor(
    private readonly deps: { ai: AiService; tenantTx: TenantTx; queue: JobQueue; logger: Logger },
    private readonly opts: AiGenerationsOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 45_000
  }

  /** Adds jobs of committed invocations. */
  readonly enqueue: GenerationJobs = async (jobs) => {
    if (jobs.length) await this.deps.queue.add(jobs)
  }

  /** Works the queue (worker processes); API processes only add to it. */
  start(consume = true): void {
    if (consume) this.deps.queue.work((job) => this.run(job), { concurrency: this.opts.concurrency ?? 2 })
  }

  close(): Promise<void> {
    return this.deps.queue.close()
  }

  private async run(job: RunningJob): Promise<void> {
    const d = job.data as unknown as GenerationJobData
    let data: AiGenerationEventData
    try {
      const r = await this.deps.ai.complete(d.caller, d.request, { timeoutMs: this.timeoutMs })
      data = { generationId: d.generationId, answer: pluginAnswer(r) }
    } catch (err) {
      // Typed refusals and provider failures are on record already; anything else is logged.
      if (!(err instanceof TrellisError))
        this.deps.logger.error({ err, generationId: d.generationId }, 'generation failed')
      data = {
        generationId: d.generationId,
        error: { code: err instanceof TrellisError ? err.code : 'AI_ERR_PROVIDER_FAILED' },
      }
    }
    await this.deps.tenantTx(d.tenantId, (tx) =>
      emitEvents(tx, {
        type: d.event,
        subject: `ai.generation/${d.generationId}`,
        data: data as unknown as Record<string, unknown>,
        source: d.plugin,
      }),
    )
  }
}
