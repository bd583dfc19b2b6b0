/**
 * An in-memory host for plugin unit tests: it implements the host-call protocol
 * ({@link HostOps}) with in-memory collections, records every call and emitted event, checks
 * capabilities the way the kernel does, validates records, emitted events and route bodies
 * against the manifest's schemas (`KRN_ERR_VALIDATION_FAILED`), and copies everything as JSON
 * like the sandbox.
 * Node-only; it runs the plugin in-process (no sandbox limits), so it is for logic, not for
 * isolation.
 *
 * @example
 * ```ts
 * const host = createTestHost(ordersPlugin, { settings: { currency: 'EUR' } })
 * const res = await host.route('POST /orders', { body: { sku: 'A-1', qty: 2 } })
 * assert.equal(res.status, 201)
 * assert.deepEqual(host.emitted.map((e) => e.type), ['orders.order.placed'])
 * ```
 */
import { randomUUID } from 'node:crypto'
import { hostAllowed, matchesEventPattern, parseCapability } from './capabilities.js'
import type { Caller, JsonValue, RecordMeta, TrellisEvent } from './context.js'
import type { Plugin } from './define-plugin.js'
import { TrellisError } from './errors.js'
import type {
  AiGenerationEventData,
  HostOps,
  PluginInvocationContext,
  RouteInput,
  RouteOutput,
  SandboxHost,
} from './protocol.js'
import { compileJsonSchema, validateHostCall } from './manifest.js'
import { createBundle } from './runtime.js'
import { renderPrompt } from './prompts.js'
import type { KnowledgeWriteArgs } from './knowledge-types.js'
import type { MetricAnswer, MetricForecast } from './metrics-types.js'
import { testKnowledgeOps, type TestKnowledgeOptions } from './testing-knowledge.js'
import { encryptedFields, encryptedQueryRefusal } from './classification.js'
import { compare, matches, uuidv7 } from './testing-records.js'

/** One host call the plugin made. */
export interface RecordedHostCall {
  /** Operation name. */
  op: string
  /** Arguments as the kernel would receive them. */
  args: unknown
}

/** Options of {@link createTestHost}. */
export interface TestHostOptions {
  /** Granted capabilities; defaults to everything the manifest requests. */
  capabilities?: string[]
  /** Installation settings (`ctx.settings`). */
  settings?: Record<string, JsonValue>
  /** Secret values by name. */
  secrets?: Record<string, string>
  /** Who calls; defaults to a user with every permission the plugin contributes. */
  caller?: Caller
  /** Tenant id; default a fixed UUID. */
  tenantId?: string
  /** Other plugins' actions: `{ '@trellis/pricing': { quote: (input) => ... } }`. */
  plugins?: Record<string, Record<string, (input: unknown) => unknown>>
  /** Answers `ctx.http.fetch`; default answers 404. */
  fetch?: (
    req: HostOps['http.fetch']['args'],
  ) => HostOps['http.fetch']['result'] | Promise<HostOps['http.fetch']['result']>
  /**
   * Answers `ctx.ai.complete` with the request as the kernel would send it (a template already
   * filled from its declared slots); default: a text naming the model `test-model`, and for a
   * schema the JSON your answer returns — give one to test structured output.
   */
  ai?: (req: {
    messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>
    schema?: Record<string, unknown>
    model?: string
  }) => string | Promise<string>
  /**
   * Answers `ctx.ai.embed` (e.g. with the kernel's lexical embedder, to measure what a plugin does
   * on the embedded default); default: four numbers per text that mean nothing.
   */
  embed?: (texts: string[]) => number[][] | Promise<number[][]>
  /** Approved documents `ctx.knowledge` searches and answers from, by base slug, and the caller's roles. */
  knowledge?: TestKnowledgeOptions
  /**
   * Answers of `ctx.metrics` (the test host computes no metric): each gets the host call's
   * args and returns the kernel's answer, or throws (e.g. a `TrellisError` with code
   * `MET_ERR_SERIES_TOO_SHORT`). Without one, the call rejects with `MET_ERR_NOT_FOUND`, as the
   * kernel does for a metric whose plugin is not installed. Either way the plugin needs a
   * `metrics:read` capability (`KRN_ERR_CAPABILITY_DENIED`).
   */
  metrics?: {
    query?: (args: HostOps['metrics.query']['args']) => MetricAnswer | Promise<MetricAnswer>
    forecast?: (args: HostOps['metrics.forecast']['args']) => MetricForecast | Promise<MetricForecast>
  }
}

/** The in-memory host. */
export interface TestHost {
  /** Every host call, in order. */
  readonly calls: RecordedHostCall[]
  /** Every emitted event, in order. */
  readonly emitted: Array<{ type: string; data: unknown; subject?: string }>
  /** Every workflow instance `ctx.workflows.start` started (one per start key), in order. */
  readonly started: Array<{ instanceId: string; workflow: string; input: unknown; startKey?: string }>
  /** Log lines. */
  readonly logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }>
  /** Drafts `ctx.knowledge.write` added, in order. */
  readonly knowledgeDrafts: KnowledgeWriteArgs[]
  /** Records by collection name, then id. */
  readonly collections: Map<string, Map<string, Record<string, unknown> & RecordMeta>>
  /** Invokes a route entry (`"POST /orders"`); `path` defaults to the pattern with params filled in. */
  route(name: string, req?: Partial<RouteInput>): Promise<RouteOutput>
  /** Delivers an event to the plugin's handler for its type. */
  event(type: string, data: unknown, init?: Partial<TrellisEvent>): Promise<void>
  /** Calls an action. */
  action<O = unknown>(name: string, input?: unknown): Promise<O>
  /** Runs a workflow step `"<workflow>.<step>"`. */
  step<O = unknown>(name: string, input?: unknown): Promise<O>
  /** The host-call handler itself, to drive a bundle's `invoke` directly. */
  call(op: string, args: unknown): Promise<unknown>
}

const denied = (reason: string) => new TrellisError('KRN_ERR_CAPABILITY_DENIED', 403, 'Capability denied', reason)
const notFound = (what: string) => new TrellisError('KRN_ERR_NOT_FOUND', 404, 'Not found', `${what} was not found`)
const conflict = (detail: string) => new TrellisError('KRN_ERR_CONFLICT', 409, 'Conflict', detail)
const invalid = (what: string, problems: Array<{ pointer: string; message: string }>) =>
  new TrellisError(
    'KRN_ERR_VALIDATION_FAILED',
    400,
    'Request did not validate',
    `${what}: ${problems.map((p) => `${p.pointer || '/'} ${p.message}`).join('; ')}`,
    { problems },
  )
const copy = <T>(v: T): T => (v === undefined ? (null as T) : JSON.parse(JSON.stringify(v)))

/** Creates an in-memory host for `plugin`. */
export function createTestHost(plugin: Plugin, options: TestHostOptions = {}): TestHost {
  const bundle = createBundle(plugin)
  const manifest = plugin.manifest
  const capabilities = options.capabilities ?? [...manifest.capabilities]
  const parsed = capabilities.map(parseCapability)
  const can = (kind: string, test: (c: any) => boolean = () => true) =>
    parsed.some((c) => !('error' in c) && c.kind === kind && test(c))
  const tenantId = options.tenantId ?? '00000000-0000-7000-8000-000000000001'
  const collections = new Map<string, Map<string, Record<string, unknown> & RecordMeta>>()
  for (const name of Object.keys(manifest.collections ?? {})) collections.set(name, new Map())
  const calls: RecordedHostCall[] = []
  const emitted: TestHost['emitted'] = []
  const started: TestHost['started'] = []
  const logs: TestHost['logs'] = []
  const knowledgeDrafts: KnowledgeWriteArgs[] = []
  let clock = Date.parse('2026-01-01T00:00:00.000Z')

  // Schemas from the manifest, compiled on first use; the kernel validates the same things.
  const validators = new Map<string, ReturnType<typeof compileJsonSchema>>()
  const check = (key: string, schema: unknown, value: unknown, what: string) => {
    if (schema === undefined) return
    let v = validators.get(key)
    if (!v) validators.set(key, (v = compileJsonSchema(schema)))
    const problems = v(value)
    if (problems.length) throw invalid(what, problems)
  }
  const checkRecord = (collection: string, record: unknown) =>
    check(`collection:${collection}`, manifest.collections?.[collection]?.schema, record, `record of ${collection}`)

  const coll = (name: unknown) => {
    if (!can('data')) throw denied('the plugin was not granted "data"')
    const c = collections.get(String(name))
    if (!c) throw notFound(`collection ${String(name)}`)
    return c
  }

  const metricAnswer = <K extends 'query' | 'forecast'>(
    kind: K,
    args: HostOps[`metrics.${K}`]['args'],
  ): HostOps[`metrics.${K}`]['result'] | Promise<HostOps[`metrics.${K}`]['result']> => {
    if (!can('metrics:read')) throw denied(`the plugin was not granted "metrics:read" for ${args.metric}`)
    const answer = options.metrics?.[kind] as ((a: typeof args) => HostOps[`metrics.${K}`]['result']) | undefined
    if (!answer)
      throw new TrellisError(
        'MET_ERR_NOT_FOUND',
        404,
        'Metric not found',
        `no metric ${args.metric} is available to you (GET /v1/metrics lists those that are)`,
      )
    return answer(args)
  }

  const ops: {
    [K in keyof HostOps]: (args: HostOps[K]['args']) => HostOps[K]['result'] | Promise<HostOps[K]['result']>
  } = {
    'data.insert': ({ collection, record }) => {
      const c = coll(collection)
      checkRecord(collection, record)
      const now = new Date(clock++).toISOString()
      const stored = { ...record, id: uuidv7(clock - 1), version: 1, createdAt: now, updatedAt: now }
      c.set(stored.id, stored)
      return stored
    },
    'data.get': ({ collection, id }) => coll(collection).get(id) ?? null,
    'data.update': ({ collection, id, patch, expectedVersion }) => {
      const c = coll(collection)
      const cur = c.get(id)
      if (!cur) throw notFound(`record ${id}`)
      if (cur.version !== expectedVersion)
        throw conflict(`record ${id} is at version ${cur.version}, not ${expectedVersion}`)
      const { id: _i, version: _v, createdAt: _c, updatedAt: _u, ...rest } = patch as Record<string, unknown>
      const { id: _id, version: _ver, createdAt: _ca, updatedAt: _ua, ...fields } = { ...cur, ...rest }
      checkRecord(collection, fields)
      const next = { ...cur, ...rest, version: cur.version + 1, updatedAt: new Date(clock++).toISOString() }
      c.set(id, next)
      return next
    },
    'data.delete': ({ collection, id }) => coll(collection).delete(id),
    'data.find': ({ collection, query }) => {
      // As the kernel: encrypted (personal) fields answer exact matches only.
      const refusal = encryptedQueryRefusal(new Set(encryptedFields(manifest.collections?.[collection]?.schema)), query)
      if (refusal)
        throw new TrellisError(
          'GOV_ERR_ENCRYPTED_FIELD_QUERY',
          400,
          'Query not possible on an encrypted field',
          `"${refusal.field}" is encrypted at rest: ${refusal.operation} is not possible on it (only eq, ne and in, through its blind index)`,
        )
      const all = [...coll(collection).values()].filter((r) => matches(r, query.where ?? {}))
      const sort = [...(query.sort ?? []), { field: 'id', direction: 'asc' as const }]
      all.sort((a, b) => {
        for (const s of sort) {
          const d = compare(a[s.field], b[s.field])
          if (d !== 0) return s.direction === 'desc' ? -d : d
        }
        return 0
      })
      const offset = query.cursor ? Number(Buffer.from(query.cursor, 'base64url').toString()) : 0
      const limit = query.limit ?? 50
      const items = all.slice(offset, offset + limit)
      return {
        items,
        nextCursor: offset + limit < all.length ? Buffer.from(String(offset + limit)).toString('base64url') : null,
      }
    },
    'events.emit': ({ type, data, subject }) => {
      if (!can('events:emit', (c) => matchesEventPattern(c.pattern, type)))
        throw denied(`the plugin may not emit "${type}"`)
      const declared = manifest.events?.emits?.[type]
      if (!declared)
        throw invalid(`event ${type}`, [{ pointer: '', message: "is not declared in the manifest's events.emits" }])
      check(`event:${type}`, declared.schema, data, `data of ${type}`)
      emitted.push(subject === undefined ? { type, data } : { type, data, subject })
      return { id: randomUUID() }
    },
    'plugins.call': async ({ plugin: target, action, input }) => {
      if (!can('plugins:call', (c) => c.plugin === target && c.action === action))
        throw denied(`the plugin may not call ${target}#${action}`)
      const fn = options.plugins?.[target]?.[action]
      if (!fn) throw notFound(`action ${target}#${action}`)
      return fn(input)
    },
    'http.fetch': async (req) => {
      const host = new URL(req.url).host
      if (!can('http:fetch', (c) => hostAllowed(c.hosts, host))) throw denied(`the plugin may not fetch from ${host}`)
      return options.fetch ? options.fetch(req) : { status: 404, headers: {}, body: '' }
    },
    'secrets.get': ({ name }) => {
      if (!can('secrets')) throw denied('the plugin was not granted "secrets"')
      return options.secrets?.[name] ?? null
    },
    'ai.complete': async (args) => {
      if (!can('ai:complete')) throw denied('the plugin was not granted "ai:complete"')
      const messages =
        args.prompt === undefined ? args.messages! : renderPrompt(manifest, args.prompt, args.slots ?? {})
      const text = options.ai
        ? await options.ai({
            messages,
            ...(args.schema ? { schema: args.schema } : {}),
            ...(args.model ? { model: args.model } : {}),
          })
        : `test-model answer to: ${messages.at(-1)?.content ?? ''}`
      let json: unknown
      if (args.schema) {
        try {
          json = JSON.parse(text)
        } catch {
          throw new TrellisError(
            'AI_ERR_SCHEMA_MISMATCH',
            502,
            'Model answer did not match the schema',
            'the answer is not JSON',
          )
        }
        check(`ai:${JSON.stringify(args.schema)}`, args.schema, json, 'the answer')
      }
      const tokens = (s: string) => Math.ceil(s.length / 4)
      return {
        text,
        model: args.model ?? 'test-model',
        ...(json !== undefined ? { json } : {}),
        usage: {
          inputTokens: tokens(messages.map((m: { content: string }) => m.content).join('\n')),
          outputTokens: tokens(text),
        },
        costMicros: 0,
        recordId: uuidv7(clock++),
      }
    },
    // The answer arrives as the plugin's event, recorded in `emitted` once the generation ends.
    'ai.generate': async ({ event, ...request }) => {
      if (!can('ai:complete')) throw denied('the plugin was not granted "ai:complete"')
      if (!manifest.events?.emits?.[event])
        throw new TrellisError(
          'AI_ERR_GENERATION_EVENT_UNDECLARED',
          400,
          'Generation event not declared',
          `event "${event}" is not declared in the manifest's events.emits`,
        )
      if (!can('events:emit', (c) => matchesEventPattern(c.pattern, event)))
        throw denied(`the plugin may not emit "${event}"`)
      const generationId = uuidv7(clock++)
      const data = await Promise.resolve(ops['ai.complete'](request as HostOps['ai.complete']['args'])).then(
        (answer): AiGenerationEventData => ({ generationId, answer }),
        (err: { code?: string }): AiGenerationEventData => ({
          generationId,
          error: { code: err.code ?? 'AI_ERR_PROVIDER_FAILED' },
        }),
      )
      emitted.push({ type: event, data, subject: `ai.generation/${generationId}` })
      return { generationId }
    },
    'ai.embed': async ({ texts, model }) => {
      if (!can('ai:embed')) throw denied('the plugin was not granted "ai:embed"')
      const vectors = options.embed
        ? await options.embed(texts)
        : texts.map((t) => [t.length, t.split(/\s+/).length, 1, 0])
      return {
        vectors,
        model: model ?? 'test-embedding',
        dims: vectors[0]?.length ?? 0,
        lexical: true,
        recordId: uuidv7(clock++),
      }
    },
    'workflows.start': ({ workflow, input, startKey }) => {
      if (!can('workflows')) throw denied('the plugin was not granted "workflows"')
      if (!Object.hasOwn(manifest.workflows ?? {}, workflow))
        throw new TrellisError(
          'WFL_ERR_WORKFLOW_NOT_FOUND',
          404,
          'Workflow not found',
          `${manifest.name} has no workflow ${workflow}`,
        )
      const same = started.find((s) => startKey !== undefined && s.workflow === workflow && s.startKey === startKey)
      if (same) return { instanceId: same.instanceId, started: false }
      const instanceId = uuidv7(clock++)
      started.push(startKey === undefined ? { instanceId, workflow, input } : { instanceId, workflow, input, startKey })
      return { instanceId, started: true }
    },
    ...testKnowledgeOps(options.knowledge, can, denied, knowledgeDrafts, () => uuidv7(clock++)),
    'metrics.query': (args) => metricAnswer('query', args),
    'metrics.forecast': (args) => metricAnswer('forecast', args),
  }

  const call = async (op: string, args: unknown): Promise<unknown> => {
    calls.push({ op, args: copy(args) })
    const problems = validateHostCall(op, copy(args))
    if (problems.length) throw invalid(`host call ${op}`, problems)
    const fn = (ops as Record<string, (a: unknown) => unknown>)[op]!
    return copy(await fn(copy(args)))
  }
  const host: SandboxHost = {
    call,
    log: (level, message, fields) =>
      void logs.push(fields === undefined ? { level, message } : { level, message, fields }),
  }
  const context = (): PluginInvocationContext => ({
    invocationId: randomUUID(),
    tenantId,
    installationId: 'test-installation',
    caller: options.caller ?? {
      kind: 'user',
      id: 'test-user',
      permissions: (manifest.permissions ?? []).map((p) => p.name),
    },
    capabilities,
    settings: options.settings ?? {},
  })
  const run = async (kind: 'route' | 'event' | 'action' | 'workflowStep', name: string, input: unknown) =>
    copy(await bundle.invoke({ kind, name }, copy(input), context(), host))

  return {
    calls,
    emitted,
    started,
    logs,
    knowledgeDrafts,
    collections,
    call,
    route: async (name, req = {}) => {
      const [method, pattern] = name.split(' ') as [string, string]
      const params = req.params ?? {}
      const declared = (manifest.routes ?? []).find((r) => `${r.method} ${r.path}` === name)
      if (declared?.request?.body !== undefined)
        check(`route:${name}`, declared.request.body, req.body ?? null, `body of ${name}`)
      const path =
        req.path ?? pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, p: string) => encodeURIComponent(params[p] ?? ''))
      return (await run('route', name, {
        method,
        path,
        params,
        query: req.query ?? {},
        headers: req.headers ?? {},
        body: req.body ?? null,
      })) as RouteOutput
    },
    event: async (type, data, init = {}) => {
      await run('event', type, {
        id: randomUUID(),
        tenantId,
        type,
        source: 'test',
        subject: null,
        time: new Date(clock).toISOString(),
        ...init,
        data,
      })
    },
    action: async (name, input) => (await run('action', name, input ?? null)) as never,
    step: async (name, input) => (await run('workflowStep', name, input ?? null)) as never,
  }
}
