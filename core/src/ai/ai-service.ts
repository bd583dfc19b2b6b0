import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import type { Database, Tx } from '../db/database.js'
import { attemptProvider, providerError, type ProviderLimits } from './provider-calls.js'
import { parseJson, StructuredOutput } from './structured-output.js'
import { DEFAULT_CHAT, DEFAULT_EMBED, offeredModels, readTenantAi, type TenantAi } from './tenant-ai.js'
import type { EgressGuard } from '../egress/index.js'
import { TrellisError } from '@trellis/plugin-sdk'
import type { TenantTx } from '../plugins/tenant-tx.js'
import { AI } from './errors.js'
import {
  budgetsFor,
  charge,
  reserve,
  reserveBeforeModel,
  settle,
  splitSettlement,
  type Reservation,
} from './budgets.js'
import { screen } from './injection.js'
import { mask, newRedaction, unmask, unmaskJson, type Redaction } from './redaction.js'
import { writeRecord, type CallRecord } from './records.js'
import { ModelRegistry, type ModelRow } from './model-registry.js'
import { TenantAiCache } from './tenant-ai-cache.js'
import type { ChangeFeed } from '../scale/change-feed.js'
import { localProvider } from './providers/local.js'
import { huggingfaceProvider } from './providers/huggingface.js'
import type { ChatAnswer, Provider } from './providers/types.js'
import { costMicros, periodOf, tokenBound, tokensOf } from './usage-period.js'
import { LEXICAL_DIMS } from './local/lexical-embedder.js'
import type {
  AiCallOptions,
  AiCaller,
  AiCompleteRequest,
  AiCompleteResult,
  AiEmbedResult,
  AiService,
  AiWithin,
} from './service.js'

export interface AiServiceOptions {
  /** How long one provider attempt may take (default 30 s). */
  timeoutMs?: number
  /** Further attempts after a connection failure, a 429 or a 5xx (default 1). */
  retries?: number
  /** Output tokens reserved when a call names no maxTokens (default 1024). */
  defaultMaxTokens?: number
  /** How long each process keeps the model list (default 500 ms; 5 s when `modelChanges` announces changes). */
  registryTtlMs?: number
  /** The clock budgets are kept by (tests move it). */
  now?: () => number
}

export interface AiServiceDeps {
  db: Database
  tenantTx: TenantTx
  secrets: ConstructorParameters<typeof ModelRegistry>[1]
  egress: EgressGuard
  logger: Logger
  /** Model registry changes fanned out to every process (Redis); see core/src/scale/change-feed.ts. */
  modelChanges?: ChangeFeed
}

/**
 * The kernel's governed AI: every call resolves the model the tenant may use, reserves budget,
 * masks personal data, screens for prompt injection, calls the provider with a timeout and
 * bounded retries, validates structured output, settles the budget and writes the call record
 * with its audit entry — all in transactions of its own, never the caller's.
 */
export class KernelAiService implements AiService {
  readonly registry: ModelRegistry
  /** Tenants' settings and whether a budget applies, briefly (dropped with the registry's list). */
  private readonly tenants: TenantAiCache
  private readonly providers: Record<'local' | 'huggingface', Provider>
  private readonly output = new StructuredOutput()
  private readonly limits: ProviderLimits
  private readonly defaultMaxTokens: number
  readonly now: () => number

  constructor(
    private readonly deps: AiServiceDeps,
    options: AiServiceOptions = {},
  ) {
    const ttl = options.registryTtlMs ?? (deps.modelChanges ? 5000 : 500)
    this.registry = new ModelRegistry(deps.db, deps.secrets, ttl, deps.modelChanges)
    this.tenants = new TenantAiCache(deps.db, ttl)
    this.registry.onChange(() => this.tenants.forget())
    this.providers = { local: localProvider, huggingface: huggingfaceProvider(deps.egress) }
    this.limits = { timeoutMs: options.timeoutMs ?? 30_000, retries: options.retries ?? 1 }
    this.defaultMaxTokens = options.defaultMaxTokens ?? 1024
    this.now = options.now ?? Date.now
  }

  /** The model a call uses: the one asked for, or the tenant's choice, or the local default. */
  private pick(models: ModelRow[], s: TenantAi, kind: 'chat' | 'embedding', asked?: string): ModelRow {
    const alias =
      asked ?? (kind === 'chat' ? s.chatModel : s.embedModel) ?? (kind === 'chat' ? DEFAULT_CHAT : DEFAULT_EMBED)
    const m = models.find((x) => x.alias === alias)
    if (!m) throw asked ? AI.MODEL_NOT_FOUND({ model: alias }) : AI.MODEL_NOT_OFFERED({ model: alias })
    if (m.status === 'blocked') throw AI.MODEL_BLOCKED({ model: alias })
    if (m.kind !== kind) throw AI.MODEL_KIND_MISMATCH({ model: alias, kind })
    if (!offeredModels([m], s).length) throw AI.MODEL_NOT_OFFERED({ model: alias })
    return m
  }

  /** Settings, model and budget reservation, committed before the provider is called. */
  private async prepare(
    caller: AiCaller,
    kind: 'chat' | 'embedding',
    asked: string | undefined,
    estimate: (m: ModelRow) => { tokens: number; micros: number },
    period: string,
    within?: AiWithin,
  ) {
    const decide = async (tx: Tx, models: ModelRow[]) => {
      const s = await readTenantAi(tx, caller.tenantId)
      if (!s.enabled) throw AI.DISABLED()
      const m = this.pick(models, s, kind, asked)
      const est = estimate(m)
      const budgets = await budgetsFor(tx, caller.tenantId, s.partnerId, caller.installationId)
      const reservations = budgets.length
        ? await reserve(tx, caller.tenantId, budgets, period, (u) => (u === 'tokens' ? est.tokens : est.micros))
        : []
      return { s, m, reservations }
    }
    // An invocation's transaction was opened for an active organisation.
    if (within) return within.run(async (tx) => decide(tx, await this.registry.allIn(tx)))
    // Read before the transaction: on the embedded database a second connection would wait for this one.
    const models = await this.registry.all()
    // The tenant's settings and budgets as this process knows them (ADR 0087): with no budget,
    // no transaction before the model; with budgets, one that only reserves.
    const known = await this.tenants.get(caller.tenantId, caller.installationId)
    if (!known.active) throw AI.DISABLED(undefined, { cause: 'organisation not active' })
    if (!known.settings.enabled) throw AI.DISABLED()
    const m = this.pick(models, known.settings, kind, asked)
    if (known.budgets.length === 0) return { s: known.settings, m, reservations: [] as Reservation[] }
    const est = estimate(m)
    const reservations = await reserveBeforeModel(this.deps.db, caller.tenantId, known.budgets, period, (u) =>
      u === 'tokens' ? est.tokens : est.micros,
    )
    return { s: known.settings, m, reservations }
  }

  private async finish(
    caller: AiCaller,
    reservations: Reservation[],
    period: string,
    used: { tokens: number; micros: number },
    rec: Omit<CallRecord, 'caller'>,
    within?: AiWithin,
  ): Promise<string> {
    const actual = (u: Reservation['budget']['unit']) => (u === 'tokens' ? used.tokens : used.micros)
    // The caller's own budgets settle in the record's statement; a partner's in its organisation.
    const { own, others } = splitSettlement(caller.tenantId, reservations, actual)
    if (!within)
      return this.deps.tenantTx(caller.tenantId, async (tx) => {
        if (others.length) await settle(tx, caller.tenantId, others, period, actual)
        return writeRecord(tx, { caller, ...rec }, undefined, { period, rows: own })
      })
    const id = uuidv7()
    within.onRollback(() =>
      this.deps.tenantTx(caller.tenantId, async (tx) => {
        await charge(tx, caller.tenantId, reservations, period, actual)
        await writeRecord(tx, { caller, ...rec }, id)
      }),
    )
    return within.run(async (tx) => {
      if (others.length) await settle(tx, caller.tenantId, others, period, actual)
      return writeRecord(tx, { caller, ...rec }, id, { period, rows: own })
    })
  }

  /** A refusal before any text left the kernel: recorded, then thrown. */
  private async refused(caller: AiCaller, alias: string, err: unknown, within?: AiWithin): Promise<never> {
    if (err instanceof TrellisError && err.code.startsWith('AI_ERR_')) {
      await this.finish(
        caller,
        [],
        '',
        { tokens: 0, micros: 0 },
        {
          modelAlias: alias,
          modelId: alias,
          provider: 'none',
          outcome: 'refused',
          errorCode: err.code,
          prompt: null,
          answer: null,
          inputTokens: 0,
          outputTokens: 0,
          costMicros: 0,
          latencyMs: 0,
          chunks: [],
          citations: [],
          verdicts: {},
        },
        within,
      ).catch((e) => this.deps.logger.warn({ err: e }, 'AI refusal not recorded'))
    }
    throw err
  }

  async complete(
    caller: AiCaller,
    req: AiCompleteRequest,
    opts: AiCallOptions & { onToken?: (t: string) => void } = {},
  ): Promise<AiCompleteResult> {
    const started = performance.now()
    const period = periodOf(this.now())
    const maxTokens = req.maxTokens ?? this.defaultMaxTokens
    // Reserved: a bound of the input (masking only shortens it) and the whole of maxTokens.
    const inputEstimate = tokenBound([
      ...req.messages.map((m) => m.content),
      ...(req.passages ?? []).map((p) => p.text),
    ])
    let prepared: Awaited<ReturnType<KernelAiService['prepare']>>
    try {
      prepared = await this.prepare(
        caller,
        'chat',
        req.model,
        (m) => {
          // A schema may cost a second round, with the first answer in its input.
          const rounds = req.schema ? 2 : 1
          const input = rounds * inputEstimate + (rounds - 1) * maxTokens
          const output = rounds * maxTokens
          return {
            tokens: input + output,
            micros: costMicros(input, output, Number(m.price_in_micros), Number(m.price_out_micros)),
          }
        },
        period,
        opts.within,
      )
    } catch (err) {
      return this.refused(caller, req.model ?? 'default', err, opts.within)
    }
    const { s, m, reservations } = prepared
    const model = this.registry.resolved(m)
    // Guards: screening on what the user and the sources wrote; masking before anything leaves.
    const verdict = screen(
      req.messages.filter((x) => x.role === 'user').map((x) => x.content),
      (req.passages ?? []).map((p) => p.text),
    )
    const r = newRedaction()
    const messages = req.messages.map((x) => ({ role: x.role, content: mask(x.content, r, req.personal) }))
    const passages = req.passages?.map((p) => ({ ...p, text: mask(p.text, r, req.personal) }))
    const verdicts = { injection: verdict, masked: r.counts, injectionMode: s.injectionMode }
    const base = {
      modelAlias: m.alias,
      modelId: m.model_id,
      provider: m.provider,
      prompt: s.keepText ? messages.map((x) => `${x.role}: ${x.content}`).join('\n') : null,
      chunks: opts.retrieval?.chunks ?? passages?.map((p) => ({ id: p.id, score: p.score ?? 0 })) ?? [],
      verdicts,
    }
    const fail = async (err: TrellisError): Promise<never> => {
      await this.finish(
        caller,
        reservations,
        period,
        { tokens: 0, micros: 0 },
        {
          ...base,
          outcome: err.status === 502 || err.status === 503 || err.status === 504 ? 'failed' : 'refused',
          errorCode: err.code,
          answer: null,
          inputTokens: 0,
          outputTokens: 0,
          costMicros: 0,
          latencyMs: performance.now() - started,
          citations: [],
        },
        opts.within,
      )
      throw err
    }
    if (verdict.flagged && s.injectionMode === 'block')
      return fail(AI.PROMPT_INJECTION({ where: verdict.hits[0]!.where === 'user' ? 'user input' : 'retrieved text' }))

    let answer: ChatAnswer
    let json: unknown
    let inputTokens = 0
    let outputTokens = 0
    const provider = this.providers[m.provider]
    const limits = opts.timeoutMs ? { ...this.limits, timeoutMs: opts.timeoutMs } : this.limits
    let convo = messages
    for (let round = 0; ; round++) {
      try {
        answer = await attemptProvider(
          limits,
          (signal) =>
            provider.chat(
              model,
              { messages: convo, passages, maxTokens, temperature: req.temperature },
              {
                signal,
                onToken: opts.onToken,
              },
            ),
          opts.signal,
        )
      } catch (err) {
        return fail(providerError(err, m.alias, limits.timeoutMs))
      }
      inputTokens +=
        answer.usage?.inputTokens ??
        tokensOf(convo.map((x) => x.content).join('\n') + (passages ?? []).map((p) => p.text).join('\n'))
      outputTokens += answer.usage?.outputTokens ?? tokensOf(answer.text)
      if (!req.schema) break
      const problem = this.output.check(req.schema, answer.text)
      if (problem === null) {
        json = parseJson(answer.text)
        break
      }
      if (round >= 1) return fail(AI.SCHEMA_MISMATCH({ reason: problem }))
      convo = [
        ...messages,
        { role: 'assistant', content: answer.text },
        {
          role: 'user',
          content: `That answer is not valid: ${problem}. Answer again with JSON only, matching the schema ${JSON.stringify(req.schema)}.`,
        },
      ]
    }
    const given = new Set((passages ?? []).map((p) => p.n))
    const citations = (answer.citations ?? []).filter((n) => given.has(n))
    const cost = costMicros(inputTokens, outputTokens, model.priceInMicros, model.priceOutMicros)
    const recordId = await this.finish(
      caller,
      reservations,
      period,
      { tokens: inputTokens + outputTokens, micros: cost },
      {
        ...base,
        outcome: 'ok',
        answer: s.keepText ? answer.text : null,
        inputTokens,
        outputTokens,
        costMicros: cost,
        latencyMs: performance.now() - started,
        citations,
      },
      opts.within,
    )
    const reveal = caller.mayReadPersonal === true
    return {
      text: reveal ? unmask(answer.text, r) : answer.text,
      model: m.provider === 'local' ? 'local-extractive' : m.alias,
      ...(json !== undefined ? { json: reveal ? unmaskJson(json, r) : json } : {}),
      ...(passages ? { citations } : {}),
      ...(answer.escalate !== undefined ? { escalate: answer.escalate } : {}),
      usage: { inputTokens, outputTokens },
      costMicros: cost,
      recordId,
    }
  }

  async embed(
    caller: AiCaller,
    texts: string[],
    opts: { model?: string; signal?: AbortSignal; within?: AiWithin } = {},
  ): Promise<AiEmbedResult> {
    const started = performance.now()
    const period = periodOf(this.now())
    const est = tokenBound(texts)
    let prepared: Awaited<ReturnType<KernelAiService['prepare']>>
    try {
      prepared = await this.prepare(
        caller,
        'embedding',
        opts.model,
        (m) => ({
          tokens: est,
          micros: costMicros(est, 0, Number(m.price_in_micros), 0),
        }),
        period,
        opts.within,
      )
    } catch (err) {
      return this.refused(caller, opts.model ?? 'default', err, opts.within)
    }
    const { m, reservations } = prepared
    const model = this.registry.resolved(m)
    const r: Redaction = newRedaction()
    // Lexical vectors never leave the kernel; text for a remote endpoint is masked first.
    const sent = m.provider === 'local' ? texts : texts.map((t) => mask(t, r))
    const base = {
      modelAlias: m.alias,
      modelId: m.model_id,
      provider: m.provider,
      prompt: null,
      answer: null,
      chunks: [],
      citations: [],
      verdicts: { masked: r.counts },
    }
    let vectors: number[][]
    try {
      vectors = await attemptProvider(
        this.limits,
        (signal) => this.providers[m.provider].embed(model, sent, { signal }),
        opts.signal,
      )
    } catch (err) {
      const e = providerError(err, m.alias, this.limits.timeoutMs)
      await this.finish(
        caller,
        reservations,
        period,
        { tokens: 0, micros: 0 },
        {
          ...base,
          outcome: 'failed',
          errorCode: e.code,
          inputTokens: 0,
          outputTokens: 0,
          costMicros: 0,
          latencyMs: performance.now() - started,
        },
        opts.within,
      )
      throw e
    }
    const cost = costMicros(est, 0, model.priceInMicros, 0)
    const recordId = await this.finish(
      caller,
      reservations,
      period,
      { tokens: est, micros: cost },
      {
        ...base,
        outcome: 'ok',
        inputTokens: est,
        outputTokens: 0,
        costMicros: cost,
        latencyMs: performance.now() - started,
      },
      opts.within,
    )
    const lexical = m.provider === 'local'
    return { vectors, model: m.alias, dims: vectors[0]?.length ?? (lexical ? LEXICAL_DIMS : 0), lexical, recordId }
  }
}
