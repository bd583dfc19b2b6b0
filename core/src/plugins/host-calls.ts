import { hostAllowed, matchesEventPattern, validateHostCall, type Capability, type HostOps } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import { KRN } from '../errors.js'
import { emitEvents } from '../events/outbox.js'
import { egressRequest, type EgressGuard } from '../egress/index.js'
import type { Installation } from './installations.js'
import type { PluginVersion } from './versions.js'
import { checkSchema } from './schemas.js'
import type { CollectionRef, CollectionStore } from './data/index.js'

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

/** What one top-level invocation and every nested action call share: the transaction and the capability ledger. */
export interface InvocationTree {
  tx: Tx
  tenantId: string
  caller: Caller
  /** Capability uses, aggregated: audited with the invocation's writes. */
  uses: Map<string, { plugin: string; installationId: string; op: string; target: string; count: number }>
  /** Refused calls: audited on their own, whether or not the invocation commits. */
  denials: Array<{ plugin: string; installationId: string; op: string; target: string; reason: string }>
}

/** The services host calls need, implemented by the plugin host. */
export interface HostServices {
  data: DataService
  egress: EgressGuard
  secrets(inst: Installation): Record<string, string>
  callAction(from: Running, plugin: string, action: string, input: unknown): Promise<unknown>
}

/** The collections data service (core/src/plugins/data). */
export type DataService = CollectionStore

const MAX_FETCH_RESPONSE = 1024 * 1024
/** Event namespaces only the kernel writes: a plugin can never pass off its events as these. */
const RESERVED_EVENT_NAMESPACES: ReadonlySet<string> = new Set(['kernel', 'marketplace', 'workflow'])

function has(run: Running, test: (c: Capability) => boolean): boolean {
  return run.caps.some(test)
}

function use(run: Running, op: string, target: string): void {
  const key = `${run.inst.id}|${op}|${target}`
  const u = run.tree.uses.get(key)
  if (u) u.count++
  else run.tree.uses.set(key, { plugin: run.inst.plugin, installationId: run.inst.id, op, target, count: 1 })
}

function deny(run: Running, op: string, target: string, reason: string): never {
  run.tree.denials.push({ plugin: run.inst.plugin, installationId: run.inst.id, op, target, reason })
  throw KRN.CAPABILITY_DENIED({ reason })
}

function collection(run: Running, op: string, name: string): CollectionRef {
  if (!has(run, (c) => c.kind === 'data')) deny(run, op, name, `${run.inst.plugin} was not granted "data"`)
  const declared = run.version.manifest.collections?.[name]
  if (!declared || !Object.prototype.hasOwnProperty.call(run.version.manifest.collections, name)) throw KRN.NOT_FOUND({ what: `collection ${name} of ${run.inst.plugin}` })
  use(run, op, name)
  return { plugin: run.inst.plugin, name, schema: declared.schema, indexes: declared.indexes }
}

/**
 * Runs one host call of a plugin: checks it against the protocol, then the capability the
 * tenant granted, then does it in the invocation's transaction. Every use is recorded for the
 * audit log; every refusal too.
 */
export async function runHostCall(services: HostServices, run: Running, op: string, args: unknown): Promise<unknown> {
  const problems = validateHostCall(op, args)
  if (problems.length) throw KRN.VALIDATION_FAILED({ reason: `host call ${op}: ${problems.map((p) => `${p.pointer || '/'} ${p.message}`).join('; ')}`, problems })
  const tx = run.tree.tx
  switch (op as keyof HostOps) {
    case 'data.insert': {
      const a = args as HostOps['data.insert']['args']
      return services.data.insert(tx, collection(run, op, a.collection), a.record)
    }
    case 'data.get': {
      const a = args as HostOps['data.get']['args']
      return services.data.get(tx, collection(run, op, a.collection), a.id)
    }
    case 'data.update': {
      const a = args as HostOps['data.update']['args']
      return services.data.update(tx, collection(run, op, a.collection), a.id, a.patch, a.expectedVersion)
    }
    case 'data.delete': {
      const a = args as HostOps['data.delete']['args']
      return services.data.delete(tx, collection(run, op, a.collection), a.id)
    }
    case 'data.find': {
      const a = args as HostOps['data.find']['args']
      return services.data.find(tx, collection(run, op, a.collection), a.query)
    }
    case 'events.emit': {
      const a = args as HostOps['events.emit']['args']
      if (RESERVED_EVENT_NAMESPACES.has(a.type.split('.')[0]!)) deny(run, op, a.type, `${a.type.split('.')[0]}.* events are emitted by the kernel only`)
      if (!has(run, (c) => c.kind === 'events:emit' && matchesEventPattern(c.pattern, a.type))) deny(run, op, a.type, `${run.inst.plugin} may not emit "${a.type}"`)
      const declared = run.version.manifest.events?.emits?.[a.type]
      if (!declared) throw KRN.VALIDATION_FAILED({ reason: `event ${a.type} is not declared in the manifest's events.emits` })
      checkSchema(`${run.version.id}:event:${a.type}`, declared.schema, a.data, `data of ${a.type}`)
      use(run, op, a.type)
      const [id] = await emitEvents(tx, { type: a.type, subject: a.subject || a.type, data: a.data as Record<string, unknown>, source: run.inst.plugin })
      return { id: id! }
    }
    case 'plugins.call': {
      const a = args as HostOps['plugins.call']['args']
      const target = `${a.plugin}#${a.action}`
      if (!has(run, (c) => c.kind === 'plugins:call' && c.plugin === a.plugin && c.action === a.action)) deny(run, op, target, `${run.inst.plugin} may not call ${target}`)
      use(run, op, target)
      return services.callAction(run, a.plugin, a.action, a.input)
    }
    case 'http.fetch': {
      const a = args as HostOps['http.fetch']['args']
      const url = new URL(a.url)
      if (!has(run, (c) => c.kind === 'http:fetch' && hostAllowed(c.hosts, url.host))) deny(run, op, url.host, `${run.inst.plugin} may not fetch from ${url.host}`)
      use(run, op, url.host)
      const res = await egressRequest(services.egress, { url: a.url, method: a.method, headers: a.headers, ...(a.body === null ? {} : { body: a.body }), maxResponseBytes: MAX_FETCH_RESPONSE, totalTimeoutMs: 10_000 })
      return { status: res.status, headers: res.headers, body: res.body }
    }
    case 'secrets.get': {
      const a = args as HostOps['secrets.get']['args']
      if (!has(run, (c) => c.kind === 'secrets')) deny(run, op, a.name, `${run.inst.plugin} was not granted "secrets"`)
      use(run, op, a.name)
      return services.secrets(run.inst)[a.name] ?? null
    }
  }
  throw KRN.VALIDATION_FAILED({ reason: `unknown host operation ${op}` })
}
