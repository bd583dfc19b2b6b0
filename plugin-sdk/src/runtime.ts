/**
 * The SDK runtime, bundled into every plugin: it turns a `definePlugin()` value into the
 * sandbox's bundle contract `{ entries, invoke }` and builds `ctx` from the sandbox's `host`
 * and the invocation context. Runs inside isolated-vm: no Node APIs, only the language.
 */
import type {
  Collection,
  HttpRequestInit,
  HttpResponse,
  JsonValue,
  KnowledgeSearchOptions,
  Logger,
  PluginContext,
  Query,
} from './context.js'
import { isPlugin } from './define-plugin.js'
import type { Plugin } from './define-plugin.js'
import type {
  BundleEntries,
  BundleExports,
  EntryKind,
  HostOp,
  HostOps,
  PluginInvocationContext,
  RouteInput,
  RouteOutput,
  SandboxHost,
} from './protocol.js'
import { SDK } from './sdk-errors.js'
import type { MetricForecastOptions, MetricQueryOptions } from './metrics-types.js'

const OPERATORS = new Set(['eq', 'ne', 'in', 'lt', 'lte', 'gt', 'gte', 'prefix', 'contains'])
const MAX_LIMIT = 1000

/** Checks a query's shape before it is sent (the kernel checks it again). */
export function checkQuery(query: unknown): void {
  const bad = (path: string, reason: string) => SDK.INVALID_QUERY({ path, reason })
  if (query === undefined) return
  if (!isObject(query)) throw bad('', 'a query is an object { where?, sort?, cursor?, limit? }')
  for (const key of Object.keys(query))
    if (!['where', 'sort', 'cursor', 'limit'].includes(key)) throw bad(`/${key}`, 'unknown query key')
  const q = query as Query<Record<string, unknown>>
  if (q.limit !== undefined && (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_LIMIT))
    throw bad('/limit', `must be an integer from 1 to ${MAX_LIMIT}`)
  if (q.cursor !== undefined && typeof q.cursor !== 'string') throw bad('/cursor', 'must be a string')
  if (q.sort !== undefined) {
    if (!Array.isArray(q.sort)) throw bad('/sort', 'must be an array of { field, direction? }')
    q.sort.forEach((s, i) => {
      if (!isObject(s) || typeof s.field !== 'string' || s.field === '')
        throw bad(`/sort/${i}/field`, 'must be a field name')
      if (s.direction !== undefined && s.direction !== 'asc' && s.direction !== 'desc')
        throw bad(`/sort/${i}/direction`, 'must be "asc" or "desc"')
    })
  }
  if (q.where !== undefined) checkFilter(q.where, '/where', bad)
}

function checkFilter(filter: unknown, path: string, bad: (p: string, r: string) => Error): void {
  if (!isObject(filter)) throw bad(path, 'a filter is an object')
  for (const [key, value] of Object.entries(filter)) {
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(value) || value.length === 0)
        throw bad(`${path}/${key}`, 'must be a non-empty array of filters')
      value.forEach((f, i) => checkFilter(f, `${path}/${key}/${i}`, bad))
      continue
    }
    if (!isObject(value)) continue // a bare value means eq
    const ops = Object.keys(value)
    if (ops.length === 0) throw bad(`${path}/${key}`, 'empty condition')
    for (const op of ops) {
      if (!OPERATORS.has(op)) throw bad(`${path}/${key}/${op}`, `unknown operator (use ${[...OPERATORS].join(', ')})`)
      const v = (value as Record<string, unknown>)[op]
      if (op === 'in' && (!Array.isArray(v) || v.length > 1000))
        throw bad(`${path}/${key}/in`, 'must be an array of at most 1000 values')
      if (op === 'prefix' && typeof v !== 'string') throw bad(`${path}/${key}/prefix`, 'must be a string')
    }
  }
}

/**
 * Builds the `ctx` of one invocation.
 * @param plugin - the plugin definition (its collections name `ctx.data`)
 * @param context - the invocation context the kernel passed
 * @param host - the sandbox's host object
 */
export function createContext(plugin: Plugin, context: PluginInvocationContext, host: SandboxHost): PluginContext {
  const call = <O extends HostOp>(op: O, args: HostOps[O]['args']) =>
    host.call(op, args) as Promise<HostOps[O]['result']>
  const names = new Set([...Object.keys(plugin.collections ?? {}), ...Object.keys(plugin.manifest.collections ?? {})])
  const data: Record<string, Collection<Record<string, unknown>>> = {}
  for (const name of names) data[name] = collectionClient(name, call)
  const log = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) =>
    host.log(level, message, fields)
  const logger: Logger = Object.freeze({
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
  })
  return Object.freeze({
    data: new Proxy(Object.freeze(data), {
      // A typo in a collection name fails with a clear code instead of "cannot read 'insert' of undefined".
      get(target, prop) {
        if (typeof prop === 'string' && !Object.hasOwn(target, prop) && prop !== 'then' && prop !== 'toJSON') {
          throw SDK.UNKNOWN_COLLECTION({ collection: prop })
        }
        return Reflect.get(target, prop)
      },
    }),
    events: Object.freeze({
      emit: (type: string, payload: unknown, options?: { subject?: string }) =>
        call(
          'events.emit',
          options?.subject === undefined ? { type, data: payload } : { type, data: payload, subject: options.subject },
        ),
    }),
    plugins: Object.freeze({
      call: <O>(pluginName: string, action: string, input?: unknown) =>
        call('plugins.call', { plugin: pluginName, action, input: input ?? null }) as Promise<O>,
    }),
    http: Object.freeze({ fetch: (url: string, init?: HttpRequestInit) => httpFetch(call, url, init) }),
    secrets: Object.freeze({ get: (name: string) => call('secrets.get', { name }) }),
    ai: Object.freeze({
      complete: (request: HostOps['ai.complete']['args']) => call('ai.complete', request),
      generate: (request: HostOps['ai.generate']['args']) => call('ai.generate', request),
      embed: (texts: string[], options?: { model?: string }) =>
        call('ai.embed', options?.model === undefined ? { texts } : { texts, model: options.model }),
    }),
    knowledge: Object.freeze({
      search: (kb: string, query: string, options?: KnowledgeSearchOptions) =>
        call('knowledge.search', { kb, query, ...options }),
      ask: (kb: string, question: string, options?: KnowledgeSearchOptions) =>
        call('knowledge.ask', { kb, question, ...options }),
      write: (kb: string, document: Omit<HostOps['knowledge.write']['args'], 'kb'>) =>
        call('knowledge.write', { ...document, kb }),
    }),
    metrics: Object.freeze({
      query: (metric: string, options?: MetricQueryOptions) => call('metrics.query', { ...options, metric }),
      forecast: (metric: string, options: MetricForecastOptions) => call('metrics.forecast', { ...options, metric }),
    }),
    workflows: Object.freeze({
      start: (workflow: string, input: unknown, options?: { startKey?: string }) =>
        call(
          'workflows.start',
          options?.startKey === undefined
            ? { workflow, input: input ?? null }
            : { workflow, input: input ?? null, startKey: options.startKey },
        ),
    }),
    settings: Object.freeze({ ...(context.settings ?? {}) }),
    log: logger,
    caller: Object.freeze({
      ...context.caller,
      permissions: Object.freeze([...(context.caller?.permissions ?? [])]) as string[],
    }),
    tenant: Object.freeze({ id: context.tenantId }),
    invocationId: context.invocationId,
    installationId: context.installationId,
    capabilities: Object.freeze([...(context.capabilities ?? [])]),
  }) as PluginContext
}

type Call = <O extends HostOp>(op: O, args: HostOps[O]['args']) => Promise<HostOps[O]['result']>

function collectionClient(collection: string, call: Call): Collection<Record<string, unknown>> {
  return Object.freeze({
    insert: (record: Record<string, unknown>) => call('data.insert', { collection, record }),
    get: (id: string) => call('data.get', { collection, id }),
    update: (id: string, patch: Record<string, unknown>, expectedVersion: number) => {
      if (!Number.isInteger(expectedVersion))
        return Promise.reject(
          new TypeError(`ctx.data.${collection}.update: expectedVersion must be the record's version (an integer)`),
        )
      return call('data.update', { collection, id, patch, expectedVersion })
    },
    delete: (id: string) => call('data.delete', { collection, id }),
    find: async (query?: Query<Record<string, unknown>>) => {
      checkQuery(query)
      return call('data.find', { collection, query: query ?? {} })
    },
  })
}

async function httpFetch(call: Call, url: string, init: HttpRequestInit = {}): Promise<HttpResponse> {
  if (typeof url !== 'string') throw new TypeError('ctx.http.fetch: url must be a string')
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = String(v)
  let body: string | null = null
  if (typeof init.body === 'string') body = init.body
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body as JsonValue)
    headers['content-type'] ??= 'application/json'
  }
  const res = await call('http.fetch', { url, method: (init.method ?? 'GET').toUpperCase(), headers, body })
  const text = typeof res.body === 'string' ? res.body : ''
  return Object.freeze({
    status: res.status,
    ok: res.status >= 200 && res.status < 300,
    headers: Object.freeze({ ...(res.headers ?? {}) }),
    text: () => text,
    json: <T>() => JSON.parse(text) as T,
  })
}

/** The entries a plugin definition declares, per kind (what the sandbox's `load` reports). */
export function entriesOf(plugin: Plugin): BundleEntries {
  const entries: BundleEntries = {}
  const routes = Object.keys(plugin.routes ?? {})
  const events = Object.keys(plugin.events ?? {})
  const actions = Object.keys(plugin.actions ?? {})
  const steps = Object.entries(plugin.workflows ?? {}).flatMap(([wf, def]) =>
    Object.keys(def.steps).map((s) => `${wf}.${s}`),
  )
  if (routes.length) entries.route = routes
  if (events.length) entries.event = events
  if (actions.length) entries.action = actions
  if (steps.length) entries.workflowStep = steps
  return entries
}

/**
 * Turns a plugin into the sandbox's bundle contract. The SDK build calls it in the bundle's
 * generated entry; tests can call it to drive a plugin with a fake host.
 */
export function createBundle(plugin: Plugin): BundleExports {
  if (!isPlugin(plugin)) throw SDK.NO_PLUGIN_EXPORT({ found: 0 })
  const entries = entriesOf(plugin)
  const invoke = async (
    entry: { kind: EntryKind; name: string },
    input: unknown,
    context: PluginInvocationContext,
    host: SandboxHost,
  ): Promise<unknown> => {
    const ctx = createContext(plugin, context, host)
    switch (entry.kind) {
      case 'route': {
        const handler = own(plugin.routes, entry.name)
        if (!handler) throw SDK.UNKNOWN_ENTRY(entry)
        const req = (input ?? {}) as Partial<RouteInput>
        const out = await handler(
          {
            method: req.method ?? entry.name.split(' ')[0]!,
            path: req.path ?? '',
            params: req.params ?? {},
            query: req.query ?? {},
            headers: req.headers ?? {},
            body: req.body ?? null,
          },
          ctx,
        )
        return routeOutput(entry.name, out)
      }
      case 'event': {
        const handler = own(plugin.events, entry.name)
        if (!handler) throw SDK.UNKNOWN_ENTRY(entry)
        await handler(input as never, ctx)
        return null
      }
      case 'action': {
        const handler = own(plugin.actions, entry.name)
        if (!handler) throw SDK.UNKNOWN_ENTRY(entry)
        return (await handler(input, ctx)) ?? null
      }
      case 'workflowStep': {
        const dot = entry.name.indexOf('.')
        const handler =
          dot > 0 ? own(own(plugin.workflows, entry.name.slice(0, dot))?.steps, entry.name.slice(dot + 1)) : undefined
        if (!handler) throw SDK.UNKNOWN_ENTRY(entry)
        return (await handler(input, ctx)) ?? null
      }
      default:
        throw SDK.UNKNOWN_ENTRY(entry)
    }
  }
  return Object.freeze({ entries, invoke })
}

/**
 * Finds the single plugin among a module's exports and returns its bundle contract; what the
 * generated bundle entry calls on the plugin's entry module.
 */
export function bundleFromModule(mod: Record<string, unknown>): BundleExports {
  const found = Object.values(mod).filter(isPlugin)
  if (found.length !== 1) throw SDK.NO_PLUGIN_EXPORT({ found: found.length })
  return createBundle(found[0]!)
}

function routeOutput(route: string, out: unknown): RouteOutput {
  const bad = (reason: string) => SDK.INVALID_RESPONSE({ route, reason })
  if (!isObject(out)) throw bad('return { status, body?, headers? }')
  const { status, body, headers } = out as { status?: unknown; body?: unknown; headers?: unknown }
  if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599)
    throw bad('status must be an integer from 100 to 599')
  const result: RouteOutput = { status: status as number, body: body === undefined ? null : body }
  if (headers !== undefined) {
    if (!isObject(headers) || Object.values(headers).some((v) => typeof v !== 'string'))
      throw bad('headers must map names to strings')
    result.headers = headers as Record<string, string>
  }
  return result
}

function own<T>(map: Record<string, T> | undefined, key: string): T | undefined {
  return map !== undefined && Object.hasOwn(map, key) ? map[key] : undefined
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
