/**
 * `definePlugin()`: the one call a plugin's entry module makes. It checks the shape of the
 * definition and marks it so that the SDK build can find it; the SDK runtime turns it into
 * the sandbox's bundle contract (see runtime.ts).
 */
import type {
  CollectionTypes,
  PluginContext,
  RouteRequest,
  RouteResponse,
  SettingsShape,
  TrellisEvent,
} from './context.js'
import type { PluginManifestJson } from './manifest-types.js'
import { SDK } from './sdk-errors.js'

// Handlers are declared with method syntax so that a handler typed with a narrower context
// (`PluginContext<{ orders: Order }>`) or request body is accepted where it is registered.
type Bivariant<F extends (...args: any[]) => unknown> = { fn(...args: Parameters<F>): ReturnType<F> }['fn']

/** A route handler: `(req, ctx) => { status, body, headers? }`. */
export type RouteHandler<Body = any, C extends CollectionTypes = any, S extends SettingsShape = any> = Bivariant<
  (req: RouteRequest<Body, any, any>, ctx: PluginContext<C, S>) => RouteResponse | Promise<RouteResponse>
>

/** An event handler: receives the delivered event; deliveries are at-least-once. */
export type EventHandler<D = any, C extends CollectionTypes = any, S extends SettingsShape = any> = Bivariant<
  (event: TrellisEvent<D>, ctx: PluginContext<C, S>) => void | Promise<void>
>

/** An action other plugins call through `ctx.plugins.call`; returns the output (JSON). */
export type ActionHandler<
  I = any,
  O = unknown,
  C extends CollectionTypes = any,
  S extends SettingsShape = any,
> = Bivariant<(input: I, ctx: PluginContext<C, S>) => O | Promise<O>>

/** One step of a workflow; the kernel's workflow runtime passes the step input and persists the output. */
export type WorkflowStepHandler<
  I = any,
  O = unknown,
  C extends CollectionTypes = any,
  S extends SettingsShape = any,
> = Bivariant<(input: I, ctx: PluginContext<C, S>) => O | Promise<O>>

/** A workflow: named steps. Entries are `"<workflow>.<step>"`. (The durable runtime is a later kernel release.) */
export interface WorkflowDefinition {
  /** Step handlers by step name. */
  steps: Record<string, WorkflowStepHandler>
}

/** A typed handle on a collection declared in the manifest; see {@link collection}. */
export interface CollectionRef<T extends object = Record<string, unknown>> {
  /** Marker. */
  readonly kind: 'collection'
  /** Type carrier only; never set at runtime. */
  readonly __record?: T
}

/**
 * Declares the record type of a collection (its JSON Schema lives in the manifest).
 *
 * @example
 * ```ts
 * collections: { orders: collection<Order>() }
 * ```
 */
export function collection<T extends object>(): CollectionRef<T> {
  return Object.freeze({ kind: 'collection' as const })
}

/** What `definePlugin` takes. Keys must match what the manifest declares (`trellis-plugin validate` checks). */
export interface PluginDefinition<C extends CollectionTypes = CollectionTypes> {
  /** The manifest, usually `import manifest from '../trellis.plugin.json' with { type: 'json' }`. */
  manifest: PluginManifestJson
  /** Typed handles on the manifest's collections; they type `ctx.data`. */
  collections?: { [K in keyof C]: CollectionRef<C[K]> }
  /** Route handlers keyed `"<METHOD> <path>"`, e.g. `"GET /orders/:id"`. */
  routes?: Record<string, RouteHandler>
  /** Event handlers keyed by event type. */
  events?: Record<string, EventHandler>
  /** Actions keyed by action name. */
  actions?: Record<string, ActionHandler>
  /** Workflows keyed by workflow name. */
  workflows?: Record<string, WorkflowDefinition>
}

/** The value `definePlugin` returns; export it from the entry module (named export). */
export type Plugin<C extends CollectionTypes = CollectionTypes> = Readonly<PluginDefinition<C>> & {
  /** Marker the SDK build and runtime look for. */
  readonly [PLUGIN_MARK]: true
}

/** Marker set on every value made by {@link definePlugin}. */
export const PLUGIN_MARK: unique symbol = Symbol.for('trellis.plugin') as never

/** Route keys: an upper-case method, one space, a path of `/`-separated segments (`:param` allowed). */
export const ROUTE_KEY = /^(GET|POST|PUT|PATCH|DELETE) (\/|(\/(:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9._~-]+))+)$/
const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/
const EVENT_TYPE = /^[a-z][a-z0-9-]*(\.[a-z][a-zA-Z0-9-]*){2,}$/

/**
 * Defines a plugin. Export the result from the plugin's entry module:
 *
 * @example
 * ```ts
 * export const ordersPlugin = definePlugin({
 *   manifest,
 *   collections: { orders: collection<Order>() },
 *   routes: { 'POST /orders': placeOrder },
 *   events: { 'inventory.stock.depleted': onStockDepleted },
 *   actions: { cancelOrder },
 * })
 * ```
 * @throws SDK_ERR_INVALID_DEFINITION when a key or handler is malformed.
 */
export function definePlugin<C extends CollectionTypes = CollectionTypes>(definition: PluginDefinition<C>): Plugin<C> {
  const fail = (reason: string) => SDK.INVALID_DEFINITION({ reason })
  if (!definition || typeof definition !== 'object') throw fail('expected an object')
  const m = definition.manifest
  if (!m || typeof m !== 'object' || typeof m.name !== 'string' || typeof m.version !== 'string')
    throw fail('manifest with a name and version is required')
  const handlers = (
    what: string,
    map: Record<string, unknown> | undefined,
    keyOk: (k: string) => boolean,
    hint: string,
  ) => {
    if (map === undefined) return
    if (!map || typeof map !== 'object') throw fail(`${what} must be an object`)
    for (const [key, fn] of Object.entries(map)) {
      if (!keyOk(key)) throw fail(`${what} key "${key}" is not ${hint}`)
      if (typeof fn !== 'function') throw fail(`${what}["${key}"] is not a function`)
    }
  }
  handlers('routes', definition.routes, (k) => ROUTE_KEY.test(k), 'of the form "<METHOD> /path/:param"')
  handlers('events', definition.events, (k) => EVENT_TYPE.test(k), 'an event type such as "orders.order.placed"')
  handlers('actions', definition.actions, (k) => NAME.test(k), 'a name of letters, digits, _ or -')
  if (definition.workflows !== undefined) {
    for (const [name, wf] of Object.entries(definition.workflows ?? {})) {
      if (!NAME.test(name)) throw fail(`workflow name "${name}" is not a name of letters, digits, _ or -`)
      if (!wf || typeof wf !== 'object') throw fail(`workflows["${name}"] must be { steps }`)
      handlers(`workflows["${name}"].steps`, wf.steps, (k) => NAME.test(k), 'a name of letters, digits, _ or -')
    }
  }
  if (definition.collections !== undefined) {
    for (const name of Object.keys(definition.collections ?? {}))
      if (!NAME.test(name)) throw fail(`collection name "${name}" is not a name of letters, digits, _ or -`)
  }
  return Object.freeze({ ...definition, [PLUGIN_MARK]: true as const }) as Plugin<C>
}

/** True for a value made by {@link definePlugin}. */
export function isPlugin(value: unknown): value is Plugin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN_MARK] === true
}
