/**
 * The host-call protocol between the SDK runtime (inside the sandbox) and the kernel's plugin
 * host. The SDK runtime turns every `ctx` call into exactly one `host.call(op, args)`; the
 * kernel implements {@link HostOps}: it checks the capability, runs the operation in the
 * tenant's transaction, audits it and returns the result (copied as JSON). A kernel that
 * refuses a call throws a TrellisError (e.g. `KRN_ERR_CAPABILITY_DENIED`), which reaches the
 * plugin as a catchable error with that `code`.
 *
 * This file is the contract: docs/plugin-authoring.md ("Host-call protocol") describes it too,
 * and `HOST_OP_SCHEMAS` (host-op-schemas.ts) is its JSON Schema form, which the kernel applies
 * to every call with `validateHostCall` before anything else.
 */
import type { Caller, JsonValue, Page, Query, RecordMeta } from './context.js'
import type {
  KnowledgeAnswer,
  KnowledgeAskArgs,
  KnowledgeDocument,
  KnowledgeSearchArgs,
  KnowledgeSearchResult,
  KnowledgeWriteArgs,
} from './knowledge-types.js'
import type { MetricAnswer, MetricForecast, MetricForecastArgs, MetricQueryArgs } from './metrics-types.js'

/** Every host operation: `args` is what the SDK sends, `result` what it expects back. */
export interface HostOps {
  /** Insert into the plugin's own collection; the record must validate against the collection's schema (`KRN_ERR_VALIDATION_FAILED`). Capability `data`. */
  'data.insert': {
    args: { collection: string; record: Record<string, unknown> }
    result: Record<string, unknown> & RecordMeta
  }
  /** Read one record by id; `null` when absent. Capability `data`. */
  'data.get': { args: { collection: string; id: string }; result: (Record<string, unknown> & RecordMeta) | null }
  /**
   * Shallow-merge `patch` when the stored version equals `expectedVersion` (then version + 1).
   * Throws `KRN_ERR_CONFLICT` on a version mismatch, `KRN_ERR_NOT_FOUND` when absent.
   * Patches cannot change `id`, `version`, `createdAt`, `updatedAt`; the patched record must
   * validate against the collection's schema (`KRN_ERR_VALIDATION_FAILED`). Capability `data`.
   */
  'data.update': {
    args: { collection: string; id: string; patch: Record<string, unknown>; expectedVersion: number }
    result: Record<string, unknown> & RecordMeta
  }
  /** Delete by id; `true` when a record was deleted. Capability `data`. */
  'data.delete': { args: { collection: string; id: string }; result: boolean }
  /** One page of a query (see {@link Query}; semantics in docs/plugin-authoring.md). Capability `data`. */
  'data.find': {
    args: { collection: string; query: Query<Record<string, unknown>> }
    result: Page<Record<string, unknown>>
  }
  /**
   * Emit an event (written to the outbox with the invocation's writes). `type` must be declared
   * in the manifest's `events.emits` and `data` valid against its schema (`KRN_ERR_VALIDATION_FAILED`).
   * Capability `events:emit:<pattern>` matching `type`.
   */
  'events.emit': { args: { type: string; data: unknown; subject?: string }; result: { id: string } }
  /** Call another plugin's action. Capability `plugins:call:<plugin>#<action>`. */
  'plugins.call': { args: { plugin: string; action: string; input: unknown }; result: unknown }
  /**
   * Egress HTTP through the kernel. `body` is a string or null; `headers` lower-case names.
   * Capability `http:fetch:<hosts>` allowing the URL's host.
   */
  'http.fetch': {
    args: { url: string; method: string; headers: Record<string, string>; body: string | null }
    result: { status: number; headers: Record<string, string>; body: string }
  }
  /** A secret setting's value, `null` when unset. Capability `secrets`. */
  'secrets.get': { args: { name: string }; result: string | null }
  /**
   * Start an instance of one of the plugin's own workflows (declared in the manifest's
   * `workflows`; another's is `WFL_ERR_WORKFLOW_NOT_FOUND`), in the invocation's transaction:
   * it exists and runs only if the invocation commits. A `startKey` the workflow already
   * started with starts nothing and answers that instance (an event-started instance's key is
   * `event:<event id>`). Capability `workflows`.
   */
  'workflows.start': {
    args: { workflow: string; input: unknown; startKey?: string }
    result: { instanceId: string; started: boolean }
  }
  /**
   * Ask a chat model through the kernel's governed AI (model registry, budgets, masking,
   * injection screening, a record of the call). Either `messages`, or `prompt` — a template
   * declared in the manifest's `prompts` — with `slots` filling its declared `{{slot}}`s.
   * With `schema`, the answer must be JSON valid against it (retried once, then
   * `AI_ERR_SCHEMA_MISMATCH`). Capability `ai:complete`.
   */
  'ai.complete': {
    args: AiCompleteArgs
    result: AiCompleteAnswer
  }
  /**
   * Queue a long generation: the same request as `ai.complete`, answered later as the plugin's
   * own declared event `event` (in its manifest's `events.emits`, else
   * `AI_ERR_GENERATION_EVENT_UNDECLARED`) carrying {@link AiGenerationEventData}. Queued with the
   * invocation: a rolled-back invocation generates nothing. A workflow step that queues it and
   * waits for the event matching `generationId` resumes with the answer. Capability `ai:complete`.
   */
  'ai.generate': {
    args: AiGenerateArgs
    result: { generationId: string }
  }
  /** Embed texts with the tenant's embedding model. Capability `ai:embed`. */
  'ai.embed': {
    args: { texts: string[]; model?: string }
    result: { vectors: number[][]; model: string; dims: number; lexical: boolean; recordId?: string }
  }
  /**
   * Hybrid search over a knowledge base's approved, current documents that the invoking user's
   * roles may read (an event or system invocation: unrestricted documents only). Capability
   * `knowledge:search`.
   */
  'knowledge.search': {
    args: KnowledgeSearchArgs
    result: KnowledgeSearchResult
  }
  /**
   * A cited answer from the passages the invoking user may read, or "I don't know" with the
   * closest sources and an escalation to the base's support role. Capability `knowledge:search`.
   */
  'knowledge.ask': {
    args: KnowledgeAskArgs
    result: KnowledgeAnswer
  }
  /**
   * Adds a document (or the next version of a source) to one of the tenant's own bases as a
   * draft, in the invocation's transaction; a knowledge owner approves it before it is ever
   * retrieved. Capability `knowledge:write`.
   */
  'knowledge.write': {
    args: KnowledgeWriteArgs
    result: KnowledgeDocument
  }
  /**
   * A metric of the tenant as a series or a table, computed by the kernel in the invocation's
   * tenant. The plugin's own metrics need `metrics:read`; another plugin's `metrics:read:<plugin>`
   * (`KRN_ERR_CAPABILITY_DENIED`). A metric that is not available (its plugin not installed)
   * is `MET_ERR_NOT_FOUND`; a bad query `MET_ERR_QUERY_INVALID`.
   */
  'metrics.query': {
    args: MetricQueryArgs
    result: MetricAnswer
  }
  /**
   * A forecast of a metric's series, as `metrics.query` is read; a series too short to fit is
   * `MET_ERR_SERIES_TOO_SHORT`.
   */
  'metrics.forecast': {
    args: MetricForecastArgs
    result: MetricForecast
  }
}

/** Arguments of `ai.complete` (see {@link HostOps}). */
export interface AiCompleteArgs {
  /** A model alias the tenant is offered; default the tenant's chat model. */
  model?: string
  messages?: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>
  /** Name of a prompt template declared in the manifest's `prompts`. */
  prompt?: string
  /** Values of the template's declared slots (user input goes here, and only here). */
  slots?: Record<string, string>
  maxTokens?: number
  /** JSON Schema the answer must satisfy. */
  schema?: Record<string, unknown>
  temperature?: number
}

/** Arguments of `ai.generate`: those of `ai.complete` and the event the answer arrives as. */
export interface AiGenerateArgs extends AiCompleteArgs {
  /** One of the plugin's own events (declared in the manifest's `events.emits`). */
  event: string
}

/**
 * The data of the event a long generation ends with: the answer (personal values stay masked,
 * as the model saw them), or the error code of a refused or failed call (`AI_ERR_*`).
 */
export type AiGenerationEventData =
  | { generationId: string; answer: Omit<AiCompleteAnswer, 'json'> & { json?: unknown } }
  | { generationId: string; error: { code: string } }

/** The answer of `ai.complete`. */
export interface AiCompleteAnswer {
  text: string
  /** The model that answered (`local-extractive` for the embedded default). */
  model: string
  /** The parsed answer, when a schema was given. */
  json?: unknown
  usage: { inputTokens: number; outputTokens: number }
  costMicros: number
  /** The call's record (`GET /v1/ai/records/<id>`). */
  recordId: string
}

/** Name of a host operation. */
export type HostOp = keyof HostOps

/** Every host operation name, in protocol order. */
export const HOST_OPS: readonly HostOp[] = Object.freeze([
  'data.insert',
  'data.get',
  'data.update',
  'data.delete',
  'data.find',
  'events.emit',
  'plugins.call',
  'http.fetch',
  'secrets.get',
  'workflows.start',
  'ai.complete',
  'ai.embed',
  'knowledge.search',
  'knowledge.ask',
  'knowledge.write',
  'metrics.query',
  'metrics.forecast',
  'ai.generate',
])

/** Log levels of `host.log`. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** The `host` object the sandbox hands to a bundle's `invoke`. */
export interface SandboxHost {
  /** One host operation; rejects with the kernel's error (it has a `code`). */
  call(op: string, args: unknown): Promise<unknown>
  /** Records a log line with the invocation. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void
}

/** Kinds of bundle entries. */
export type EntryKind = 'route' | 'event' | 'action' | 'workflowStep'

/** Entries a bundle declares, per kind. */
export interface BundleEntries {
  /** Routes, named `"<METHOD> <path>"`, e.g. `"GET /orders/:id"`. */
  route?: string[]
  /** Event handlers, named by event type. */
  event?: string[]
  /** Actions, by action name. */
  action?: string[]
  /** Workflow steps, named `"<workflow>.<step>"`. */
  workflowStep?: string[]
}

/**
 * The invocation context the kernel passes to every invocation (the sandbox's
 * `InvocationContext`, plus the plugin's settings).
 */
export interface PluginInvocationContext {
  /** Unique id of this invocation. */
  invocationId: string
  /** Tenant the invocation runs for. */
  tenantId: string
  /** The tenant's installation of the plugin. */
  installationId: string
  /** Who triggered it. */
  caller: Caller
  /** Capabilities granted to the installation. */
  capabilities: string[]
  /** Non-secret settings of the installation (`{}` when none). */
  settings?: Record<string, JsonValue>
  [k: string]: unknown
}

/** Input of a route entry. */
export interface RouteInput {
  /** Upper-case method. */
  method: string
  /** Concrete path relative to the plugin mount, e.g. `/orders/42`. */
  path: string
  /** Path parameters matched by the kernel against the route pattern. */
  params: Record<string, string>
  /** Query-string parameters. */
  query: Record<string, string | string[]>
  /** Request headers, lower-case. */
  headers: Record<string, string>
  /** Parsed JSON body or null. */
  body: unknown
}

/** Output of a route entry. */
export interface RouteOutput {
  /** HTTP status, 100–599. */
  status: number
  /** Response headers, if any. */
  headers?: Record<string, string>
  /** JSON body (`null` when the handler returned none). */
  body: unknown
}

/** What a bundle's `module.exports` is: the sandbox's bundle contract. */
export interface BundleExports {
  /** Declared entries per kind. */
  entries: BundleEntries
  /** Runs one entry. */
  invoke(
    entry: { kind: EntryKind; name: string },
    input: unknown,
    context: PluginInvocationContext,
    host: SandboxHost,
  ): Promise<unknown>
}
