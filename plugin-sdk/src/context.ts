/**
 * What a plugin handler sees: the `ctx` object, requests, responses, events and the query
 * language of plugin collections. Everything here is a type: the SDK runtime builds `ctx`
 * inside the sandbox from the host-call bridge (see {@link HostOps}).
 */
import type { AiCompleteAnswer, AiCompleteArgs, AiGenerateArgs, HostOps } from './protocol.js'
import type {
  KnowledgeAnswer,
  KnowledgeDocument,
  KnowledgeSearchResult,
  KnowledgeWriteArgs,
} from './knowledge-types.js'
import type { MetricAnswer, MetricForecast, MetricForecastOptions, MetricQueryOptions } from './metrics-types.js'

/** Options of `ctx.knowledge.search` and `ctx.knowledge.ask`. */
export interface KnowledgeSearchOptions {
  /** How many passages (search: default 5, at most 50; ask: at most 20). */
  k?: number
  /** Only documents carrying every one of these tags. */
  tags?: string[]
}

/** Any JSON value: everything that crosses the sandbox boundary is copied as JSON. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** Fields the kernel adds to every record of a plugin collection. */
export interface RecordMeta {
  /** Kernel-assigned identifier (UUIDv7). */
  id: string
  /** Optimistic-concurrency version: 1 on insert, incremented by every update. */
  version: number
  /** ISO 8601 time of the insert. */
  createdAt: string
  /** ISO 8601 time of the last update. */
  updatedAt: string
}

/** A stored record: the plugin's own fields plus {@link RecordMeta}. */
export type Stored<T> = T & RecordMeta

/**
 * Conditions on one field. Several operators on one field all have to hold.
 * `prefix` applies to strings; `contains` to strings (substring) and arrays (element).
 */
export interface FieldCondition<V = unknown> {
  /** Equal to. */
  eq?: V
  /** Not equal to. */
  ne?: V
  /** Equal to one of (at most 1000 values). */
  in?: V[]
  /** Less than. */
  lt?: V
  /** Less than or equal to. */
  lte?: V
  /** Greater than. */
  gt?: V
  /** Greater than or equal to. */
  gte?: V
  /** String starts with. */
  prefix?: string
  /** String contains the substring, or array contains the element. */
  contains?: V extends Array<infer E> ? E : string
}

/**
 * A filter over records of type `T`: field conditions (a bare value means `eq`), combined
 * with `and` / `or`. All keys of one object must hold together.
 *
 * @example
 * ```ts
 * { status: 'placed', total: { gte: 100 }, or: [{ customer: { prefix: 'ACME' } }, { vip: true }] }
 * ```
 */
export type Filter<T> = {
  [K in keyof T]?: T[K] | FieldCondition<T[K]>
} & {
  /** Every filter must hold. */
  and?: Filter<T>[]
  /** At least one filter must hold. */
  or?: Filter<T>[]
} & {
  [K in keyof RecordMeta]?: RecordMeta[K] | FieldCondition<RecordMeta[K]>
}

/** One sort key; ties are always broken by `id`. */
export interface SortKey<T> {
  /** Field to sort by (a field of the record or of {@link RecordMeta}). */
  field: Extract<keyof T | keyof RecordMeta, string>
  /** `asc` (default) or `desc`. */
  direction?: 'asc' | 'desc'
}

/** A `find` query. */
export interface Query<T> {
  /** Records must match this filter; omitted means all records. */
  where?: Filter<T>
  /** Sort order; default `id` ascending (UUIDv7, so insertion order). */
  sort?: SortKey<T>[]
  /** Opaque cursor from a previous page's `nextCursor`; the query must be otherwise identical. */
  cursor?: string
  /** Page size, 1–1000; default 50. */
  limit?: number
}

/** One page of results. */
export interface Page<T> {
  /** The matching records of this page, in order. */
  items: Stored<T>[]
  /** Cursor of the next page, or `null` on the last page. */
  nextCursor: string | null
}

/** A plugin-owned collection: `ctx.data.<name>`. Every call is one host call. */
export interface Collection<T> {
  /** Inserts a record; the kernel assigns `id`, `version`, `createdAt`, `updatedAt`. */
  insert(record: T): Promise<Stored<T>>
  /** The record with this id, or `null`. */
  get(id: string): Promise<Stored<T> | null>
  /**
   * Applies a shallow patch when the stored version equals `expectedVersion`; fails with
   * `KRN_ERR_CONFLICT` otherwise (re-read and retry) and `KRN_ERR_NOT_FOUND` when there is no record.
   */
  update(id: string, patch: Partial<T>, expectedVersion: number): Promise<Stored<T>>
  /** Deletes the record; resolves to whether it existed. */
  delete(id: string): Promise<boolean>
  /** One page of records matching the query. */
  find(query?: Query<T>): Promise<Page<T>>
}

/** Who triggered the invocation, and with which permissions (already narrowed by the kernel). */
export interface Caller {
  /** `user`, `api_key`, `system`, `event` (an event delivery) or `plugin` (another plugin's `plugins.call`). */
  kind: 'user' | 'api_key' | 'system' | 'event' | 'plugin'
  /** Identifier of the user, API key, event, plugin or system actor. */
  id: string
  /** Permission strings the caller holds for this tenant. */
  permissions: string[]
}

/** The tenant the invocation runs for. */
export interface TenantInfo {
  /** Tenant id (UUID). */
  id: string
}

/** Options of `ctx.events.emit`. */
export interface EmitOptions {
  /** What the event is about, e.g. the order id; defaults to none. */
  subject?: string
}

/** A delivered event (CloudEvents-shaped), the input of an event handler. */
export interface TrellisEvent<D = unknown> {
  /** Event id (UUIDv7); deliveries are at-least-once, so handlers should be idempotent on it. */
  id: string
  /** Tenant the event belongs to. */
  tenantId: string
  /** Event type, `<plugin>.<entity>.<past-verb>`. */
  type: string
  /** Who emitted it (`kernel` or a plugin name). */
  source: string
  /** What it is about, or null. */
  subject: string | null
  /** ISO 8601 time of the change. */
  time: string
  /** Payload, valid against the schema the emitter declared. */
  data: D
}

/** Options of `ctx.workflows.start`. */
export interface WorkflowStartOptions {
  /** Starts at most one instance of the workflow per key (up to 256 characters), e.g. `event:<event id>`. */
  startKey?: string
}

/** The answer of `ctx.workflows.start`. */
export interface WorkflowStarted {
  /** The instance's id (`GET /v1/workflows/instances/<id>`). */
  instanceId: string
  /** False when an instance with the same start key existed already (that one is answered). */
  started: boolean
}

/** `init` of `ctx.http.fetch`. */
export interface HttpRequestInit {
  /** HTTP method, default `GET`. */
  method?: string
  /** Request headers. */
  headers?: Record<string, string>
  /** A string is sent as is; any other value is sent as JSON (with `content-type: application/json`). */
  body?: string | JsonValue
}

/** The answer of `ctx.http.fetch`. */
export interface HttpResponse {
  /** HTTP status. */
  status: number
  /** True for 2xx. */
  ok: boolean
  /** Response headers, lower-case names. */
  headers: Record<string, string>
  /** The body as text. */
  text(): string
  /** The body parsed as JSON (throws on invalid JSON). */
  json<T = unknown>(): T
}

/** Structured logging; lines are kept with the invocation record. */
export interface Logger {
  /** Debug line. */
  debug(message: string, fields?: Record<string, unknown>): void
  /** Info line. */
  info(message: string, fields?: Record<string, unknown>): void
  /** Warning line. */
  warn(message: string, fields?: Record<string, unknown>): void
  /** Error line. */
  error(message: string, fields?: Record<string, unknown>): void
}

/** Shape of a plugin's collections: collection name → record type. */
export type CollectionTypes = Record<string, object>

/** Shape of a plugin's settings (from its settings schema). */
export type SettingsShape = Record<string, unknown>

/**
 * The context every handler receives. Type it with your collections and settings:
 *
 * @example
 * ```ts
 * type Ctx = PluginContext<{ orders: Order }, { currency: string }>
 * ```
 */
export interface PluginContext<C extends CollectionTypes = CollectionTypes, S extends SettingsShape = SettingsShape> {
  /** The plugin's own collections (needs the `data` capability). */
  data: { [K in keyof C]: Collection<C[K]> }
  /** Emitting events (needs `events:emit:<pattern>` covering the type). */
  events: {
    /** Emits an event; it commits together with the invocation's writes. Resolves to its id. */
    emit(type: string, data: unknown, options?: EmitOptions): Promise<{ id: string }>
  }
  /** Calling other plugins' actions (needs `plugins:call:<plugin>#<action>`). */
  plugins: {
    /** Calls `action` of `plugin` with `input`, as this plugin on behalf of the same caller. */
    call<O = unknown>(plugin: string, action: string, input?: unknown): Promise<O>
  }
  /** Egress through the kernel (needs `http:fetch:<hosts>` allowing the URL's host). */
  http: {
    /** Fetches `url`; redirects are not followed, private addresses are refused. */
    fetch(url: string, init?: HttpRequestInit): Promise<HttpResponse>
  }
  /** Secret settings (needs `secrets`; the name must be a setting marked `"secret": true`). */
  secrets: {
    /** The secret's value, or `null` when the tenant has not set it. */
    get(name: string): Promise<string | null>
  }
  /**
   * The kernel's governed AI (needs `ai:complete` / `ai:embed`): the tenant's models, within
   * its budgets, personal data masked before text leaves, every call recorded. AI assists,
   * people decide: put a proposal that would change prices, credit or contracts into a
   * workflow task for the accountable role instead of applying it.
   */
  ai: {
    /** Asks a chat model: `messages`, or `prompt` (a manifest template) with `slots`; `schema` for JSON. */
    complete(request: AiCompleteArgs): Promise<AiCompleteAnswer>
    /**
     * Queues a generation longer than an invocation may last and returns its id at once; the
     * answer (or `{ error: { code } }`) arrives as the plugin's declared event `request.event`
     * with `{ generationId, ... }`, which a workflow waits for (`flow.waitForEvent(event, {
     * match: { generationId } })`). Queue it in the step that then waits, so the wait exists
     * before the event can. Nothing is queued if the invocation rolls back.
     */
    generate(request: AiGenerateArgs): Promise<{ generationId: string }>
    /** Embeds texts with the tenant's embedding model. */
    embed(texts: string[], options?: { model?: string }): Promise<HostOps['ai.embed']['result']>
  }
  /**
   * The tenant's knowledge bases (and those its partner shares): search and cited answers
   * (needs `knowledge:search`), drafts added (needs `knowledge:write`). Only approved, current
   * documents the invoking user's roles may read are ever retrieved.
   */
  knowledge: {
    /** Hybrid search: the best passages for `query`. */
    search(kb: string, query: string, options?: KnowledgeSearchOptions): Promise<KnowledgeSearchResult>
    /** A cited answer, or "I don't know" with the closest sources and an escalation to a person. */
    ask(kb: string, question: string, options?: KnowledgeSearchOptions): Promise<KnowledgeAnswer>
    /** Adds a document to one of the tenant's own bases as a draft (approved by a person before use). */
    write(kb: string, document: Omit<KnowledgeWriteArgs, 'kb'>): Promise<KnowledgeDocument>
  }
  /**
   * The tenant's metrics, computed by the kernel (never aggregate records in the sandbox): the
   * plugin's own (needs `metrics:read`) and another plugin's (needs `metrics:read:<plugin>`).
   * A metric whose plugin is not installed rejects with `MET_ERR_NOT_FOUND` — catch it to work
   * without that plugin.
   */
  metrics: {
    /** `name` (`<mount>.<metric>`) as a series (`grain`) or a table (`groupBy`). */
    query(name: string, options?: MetricQueryOptions): Promise<MetricAnswer>
    /** A forecast of `name`'s series (Holt-Winters, or Croston/SBA when intermittent). */
    forecast(name: string, options: MetricForecastOptions): Promise<MetricForecast>
  }
  /** Starting the plugin's own workflows (needs `workflows`). */
  workflows: {
    /**
     * Starts an instance of `workflow` (declared in this plugin's manifest) with `input`. The
     * instance is created in the invocation's transaction: it exists, and its first step runs,
     * only once the invocation commits. With `startKey`, a workflow already started with that
     * key starts nothing and the existing instance is answered (`started: false`); an instance
     * an event starts has the key `event:<event id>`, so starting with that key here means the
     * event's delivery starts no second one.
     */
    start(workflow: string, input: unknown, options?: WorkflowStartOptions): Promise<WorkflowStarted>
  }
  /** The tenant's settings for this installation (secret settings are not included). */
  settings: Readonly<S>
  /** Structured logging. */
  log: Logger
  /** Who triggered the invocation, with which permissions. */
  caller: Readonly<Caller>
  /** The tenant the invocation runs for. */
  tenant: Readonly<TenantInfo>
  /** Id of this invocation (for logs and correlation). */
  invocationId: string
  /** Id of the tenant's installation of this plugin. */
  installationId: string
  /** Capabilities the tenant granted this installation. */
  capabilities: readonly string[]
}

/** An HTTP request to a plugin route (`/v1/x/<plugin>/<path>`). */
export interface RouteRequest<
  Body = unknown,
  Params extends Record<string, string> = Record<string, string>,
  Query extends Record<string, string | string[]> = Record<string, string | string[]>,
> {
  /** Upper-case HTTP method. */
  method: string
  /** Request path relative to the plugin's mount point, e.g. `/orders/42`. */
  path: string
  /** Path parameters from the route pattern (`/orders/:id` → `{ id }`). */
  params: Params
  /** Query-string parameters. */
  query: Query
  /** Request headers, lower-case names (credentials removed by the kernel). */
  headers: Record<string, string>
  /** Parsed JSON body (valid against the route's request schema when declared), or null. */
  body: Body
}

/** What a route handler returns. */
export interface RouteResponse<Body = unknown> {
  /** HTTP status, 100–599. */
  status: number
  /** JSON body. */
  body?: Body
  /** Extra response headers. */
  headers?: Record<string, string>
}
