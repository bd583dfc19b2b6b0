import { matchesEventPattern, renderPrompt, validateHostCall, type Capability, type HostOps } from '@trellis/plugin-sdk'
import type { AiService, AiWithin } from '../ai/service.js'
import { AI } from '../ai/errors.js'
import { generationJob, pluginAnswer, type GenerationJobs } from '../ai/generation-jobs.js'
import type { InvocationTx } from './invocation-tx.js'
import { KRN } from '../errors.js'
import { emitEvents } from '../events/outbox.js'
import { egressRequest, type EgressGuard } from '../egress/index.js'
import type { Installation } from './installations.js'
import type { PluginVersion } from './versions.js'
import { checkSchema } from './schemas.js'
import type { CollectionRef, CollectionStore } from './data/index.js'
import { startWorkflow, type WorkflowJobs } from './workflow-start.js'
import { knowledgeCall, type KnowledgeOp } from '../knowledge/plugin-calls.js'
import type { KnowledgeService } from '../knowledge/service.js'
import { metricsCall, type MetricsHostSource, type MetricsOp } from '../metrics/host-ops.js'
import { authorize, deny, has, use } from './host-call-checks.js'

/** One plugin's invocation inside an invocation tree (a route, and the actions it calls). */
export interface Running {
  inst: Installation
  version: PluginVersion
  caps: Capability[]
  tree: InvocationTree
  /** Who this run acts for: the tree's caller, or the calling plugin for an action. */
  caller: Caller
  /** 0 for the top-level entry, +1 per nested action call. */
  depth: number
}

/** Who triggered an invocation, with which permissions. */
export interface Caller {
  kind: 'user' | 'api_key' | 'system' | 'event' | 'plugin'
  id: string
  permissions: string[]
}

/** A refused host call, aggregated: one entry per (plugin, op, target, reason) with how often. */
export interface Denial {
  plugin: string
  installationId: string
  op: string
  target: string
  reason: string
  count: number
}

/** What one top-level invocation and every nested action call share: the transaction and the capability ledger. */
export interface InvocationTree {
  /** The tenant transaction, opened on the first host call that needs the database. */
  tx: InvocationTx
  tenantId: string
  caller: Caller
  /** Capability uses, aggregated: audited with the invocation's writes. */
  uses: Map<string, { plugin: string; installationId: string; op: string; target: string; count: number }>
  /** Refused calls, aggregated: audited on their own, whether or not the invocation commits. */
  denials: Map<string, Denial>
  /** Sandbox runs of the tree still going (one, plus the actions it is calling). */
  runs: Set<Promise<unknown>>
  /** Work to do once the transaction has committed (queueing started workflows' first steps). */
  afterCommit: Array<() => Promise<void>>
  /** Work to do once the transaction has rolled back (AI records and usage that must outlive it). */
  afterRollback?: Array<() => Promise<void>>
}

/** The services host calls need, implemented by the plugin host. */
export interface HostServices {
  data: DataService
  egress: EgressGuard
  secrets(inst: Installation): Record<string, string>
  callAction(from: Running, plugin: string, action: string, input: unknown): Promise<unknown>
  /** Queues started workflow instances' first steps; unset until the workflow runtime starts. */
  workflowJobs(): WorkflowJobs | undefined
  /** The governed AI service (ai.complete, ai.embed); unset in hosts without one. */
  ai?: AiService
  /** Queues long generations (ai.generate); unset until the kernel's AI queue starts. */
  generations?(): GenerationJobs | undefined
  /** True on the single-connection embedded database. */
  embedded?: boolean
  /** Knowledge bases (knowledge.search, knowledge.ask, knowledge.write); unset in hosts without them. */
  knowledge?: KnowledgeService
  /** The tenant's installations, for metrics.query and metrics.forecast; unset in hosts without metrics. */
  metrics?: MetricsHostSource
}

/** The collections data service (core/src/plugins/data). */
export type DataService = CollectionStore

const MAX_FETCH_RESPONSE = 1024 * 1024

function collection(run: Running, op: string, name: string): CollectionRef {
  const declared = run.version.manifest.collections?.[name]
  if (!declared || !Object.hasOwn(run.version.manifest.collections!, name))
    throw KRN.NOT_FOUND({ what: `collection ${name} of ${run.inst.plugin}` })
  use(run, op, name)
  return { plugin: run.inst.plugin, name, schema: declared.schema, indexes: declared.indexes }
}

/**
 * Runs one host call of a plugin: checks it against the protocol, then the capability the
 * tenant granted, then does it in the invocation's transaction. Every use is recorded for the
 * audit log; every refusal too.
 */
export async function runHostCall(services: HostServices, run: Running, op: string, args: unknown): Promise<unknown> {
  const complete = authorize(run, op, args)
  const problems = validateHostCall(op, args)
  if (problems.length)
    throw KRN.VALIDATION_FAILED({
      reason: `host call ${op}: ${problems.map((p) => `${p.pointer || '/'} ${p.message}`).join('; ')}`,
      problems,
    })
  if (!complete) authorize(run, op, args)
  const tx = run.tree.tx
  switch (op as keyof HostOps) {
    case 'data.insert': {
      const a = args as HostOps['data.insert']['args']
      const ref = collection(run, op, a.collection)
      return tx.use((t) => services.data.insert(t, ref, a.record))
    }
    case 'data.get': {
      const a = args as HostOps['data.get']['args']
      const ref = collection(run, op, a.collection)
      return tx.use((t) => services.data.get(t, ref, a.id))
    }
    case 'data.update': {
      const a = args as HostOps['data.update']['args']
      const ref = collection(run, op, a.collection)
      return tx.use((t) => services.data.update(t, ref, a.id, a.patch, a.expectedVersion))
    }
    case 'data.delete': {
      const a = args as HostOps['data.delete']['args']
      const ref = collection(run, op, a.collection)
      return tx.use((t) => services.data.delete(t, ref, a.id))
    }
    case 'data.find': {
      const a = args as HostOps['data.find']['args']
      const ref = collection(run, op, a.collection)
      return tx.use((t) => services.data.find(t, ref, a.query))
    }
    case 'events.emit': {
      const a = args as HostOps['events.emit']['args']
      const declared = run.version.manifest.events?.emits?.[a.type]
      if (!declared)
        throw KRN.VALIDATION_FAILED({ reason: `event ${a.type} is not declared in the manifest's events.emits` })
      checkSchema(`${run.version.id}:event:${a.type}`, declared.schema, a.data, `data of ${a.type}`)
      use(run, op, a.type)
      const [id] = await tx.use((t) =>
        emitEvents(t, {
          type: a.type,
          subject: a.subject || a.type,
          data: a.data as Record<string, unknown>,
          source: run.inst.plugin,
        }),
      )
      return { id: id! }
    }
    case 'plugins.call': {
      const a = args as HostOps['plugins.call']['args']
      use(run, op, `${a.plugin}#${a.action}`)
      // On the embedded database (one connection) the callee is looked up in this invocation's
      // transaction, opened first: a data call sent in the same message may be opening it, and a
      // look-up outside it would wait for its only connection.
      if (services.embedded) await run.tree.tx.use(async () => undefined)
      return services.callAction(run, a.plugin, a.action, a.input)
    }
    case 'http.fetch': {
      const a = args as HostOps['http.fetch']['args']
      const url = new URL(a.url)
      use(run, op, url.host)
      const res = await egressRequest(services.egress, {
        url: a.url,
        method: a.method,
        headers: a.headers,
        ...(a.body === null ? {} : { body: a.body }),
        maxResponseBytes: MAX_FETCH_RESPONSE,
        totalTimeoutMs: 10_000,
      })
      return { status: res.status, headers: res.headers, body: res.body }
    }
    case 'secrets.get': {
      const a = args as HostOps['secrets.get']['args']
      use(run, op, a.name)
      return services.secrets(run.inst)[a.name] ?? null
    }
    case 'ai.complete':
    case 'ai.embed':
      return aiCall(services, run, op as 'ai.complete' | 'ai.embed', args)
    case 'ai.generate':
      return aiGenerate(services, run, args as HostOps['ai.generate']['args'])
    case 'knowledge.search':
    case 'knowledge.ask':
    case 'knowledge.write': {
      if (!services.knowledge) throw KRN.NOT_FOUND({ what: 'knowledge bases' })
      use(run, op, (args as { kb: string }).kb)
      return knowledgeCall(
        services.knowledge,
        {
          tenantId: run.tree.tenantId,
          installationId: run.inst.id,
          pluginId: run.inst.plugin,
          caller: run.tree.caller,
          inTx: (fn) => run.tree.tx.use(fn),
          within: () => aiWithin(services, run),
        },
        op as KnowledgeOp,
        args,
      )
    }
    case 'metrics.query':
    case 'metrics.forecast': {
      if (!services.metrics) throw KRN.NOT_FOUND({ what: 'metrics' })
      const a = args as HostOps['metrics.query']['args']
      return metricsCall(
        services.metrics,
        {
          plugin: run.inst.plugin,
          tenantId: run.tree.tenantId,
          caps: run.caps,
          inTx: (fn) => run.tree.tx.use(fn),
          deny: (target, reason) => deny(run, op, target, reason),
          use: (target) => use(run, op, target),
        },
        op as MetricsOp,
        a,
      )
    }
    case 'workflows.start': {
      const a = args as HostOps['workflows.start']['args']
      const result = await startWorkflow(services.workflowJobs(), run, a)
      use(run, op, a.workflow)
      return result
    }
  }
  throw KRN.VALIDATION_FAILED({ reason: `unknown host operation ${op}` })
}

/**
 * The invocation's transaction lent to the AI service when it holds the embedded database's
 * only connection (ADR 0057); undefined when the service can use transactions of its own.
 */
export function aiWithin(services: Pick<HostServices, 'embedded'>, run: Running): AiWithin | undefined {
  if (!services.embedded || !run.tree.tx.started) return undefined
  const tree = run.tree
  return {
    run: (fn) => tree.tx.exclusive(fn),
    onRollback: (fn) => {
      tree.afterRollback ??= []
      tree.afterRollback.push(fn)
    },
  }
}

/**
 * `ai.complete` / `ai.embed`: the AI service records, budgets and audits the call in
 * transactions of its own, so a rolled-back invocation keeps its AI record and usage. On the
 * single-connection embedded database, once the invocation holds its transaction, the service
 * writes in it and writes again after a rollback (ADR 0057).
 */
async function aiCall(services: HostServices, run: Running, op: 'ai.complete' | 'ai.embed', args: unknown) {
  const ai = services.ai
  if (!ai) throw AI.DISABLED()
  const within = aiWithin(services, run)
  const caller = aiCaller(run)
  if (op === 'ai.embed') {
    const a = args as HostOps['ai.embed']['args']
    use(run, op, a.model ?? 'default')
    const r = await ai.embed(caller, a.texts, { model: a.model, ...(within ? { within } : {}) })
    return { vectors: r.vectors, model: r.model, dims: r.dims, lexical: r.lexical, recordId: r.recordId }
  }
  const a = args as HostOps['ai.complete']['args']
  const request = await aiRequest(services, run, a)
  use(run, op, a.prompt ?? a.model ?? 'default')
  const r = await ai.complete(
    { ...caller, feature: a.prompt ? `${run.inst.plugin}:${a.prompt}` : run.inst.plugin },
    request,
    within ? { within } : {},
  )
  return pluginAnswer(r)
}

/** Who an AI call of this run is made for: the tenant, the installation, the user if any. */
function aiCaller(run: Running) {
  const c = run.tree.caller
  return {
    tenantId: run.tree.tenantId,
    userId: c.kind === 'user' ? c.id : null,
    installationId: run.inst.id,
    pluginId: run.inst.plugin,
    feature: run.inst.plugin,
    mayReadPersonal: c.kind === 'user' || c.kind === 'api_key',
  }
}

/** The model request of `ai.complete` / `ai.generate`: a declared template rendered, or the messages. */
async function aiRequest(services: HostServices, run: Running, a: HostOps['ai.complete']['args']) {
  // Values of classified personal fields this invocation read or wrote are masked like e-mails.
  const personal = await run.tree.tx.ifOpen(async (tx) => (tx ? services.data.personalValues(tx) : []))
  const messages =
    a.prompt !== undefined ? renderPrompt(run.version.manifest, a.prompt, a.slots ?? {}) : (a.messages ?? [])
  return {
    messages,
    ...(personal.length ? { personal } : {}),
    ...(a.model ? { model: a.model } : {}),
    ...(a.maxTokens ? { maxTokens: a.maxTokens } : {}),
    ...(a.schema ? { schema: a.schema } : {}),
    ...(a.temperature !== undefined ? { temperature: a.temperature } : {}),
  }
}

/**
 * `ai.generate` (ADR 0066): a generation longer than an invocation may last. The request is
 * checked and rendered now (an unknown template or slot is refused at once), and its job is
 * queued once the invocation commits (`tree.afterCommit`): a rolled-back invocation generates
 * nothing. The answer arrives as the plugin's own declared event, written by the AI queue's
 * worker; it stays masked, since an event is stored and delivered beyond this caller.
 */
async function aiGenerate(services: HostServices, run: Running, args: HostOps['ai.generate']['args']) {
  const { event, ...a } = args
  if (!Object.hasOwn(run.version.manifest.events?.emits ?? {}, event)) throw AI.GENERATION_EVENT_UNDECLARED({ event })
  // The kernel writes the event for the plugin: only one it may emit itself (the manifest rules and
  // consent make a declared event's capability granted; checked here as `events.emit` checks it).
  if (!has(run, (c) => c.kind === 'events:emit' && matchesEventPattern(c.pattern, event)))
    deny(run, 'ai.generate', event, `${run.inst.plugin} may not emit "${event}"`)
  const enqueue = services.generations?.()
  if (!services.ai || !enqueue) throw AI.DISABLED()
  const request = await aiRequest(services, run, a)
  const { job, generationId, persist } = generationJob({
    tenantId: run.tree.tenantId,
    event,
    plugin: run.inst.plugin,
    caller: {
      ...aiCaller(run),
      feature: a.prompt ? `${run.inst.plugin}:${a.prompt}` : run.inst.plugin,
      mayReadPersonal: false,
    },
    request,
  })
  use(run, 'ai.generate', event)
  // The generation's row commits with the invocation (ADR 0087); the job follows the commit.
  await run.tree.tx.use(persist)
  run.tree.afterCommit.push(() => enqueue([job]))
  return { generationId }
}
