/**
 * The capability checks of host calls: what a plugin was granted, checked at call time, every
 * use recorded for the audit log and every refusal too (aggregated per invocation tree).
 */
import { hostAllowed, matchesEventPattern, type Capability } from '@trellis/plugin-sdk'
import { KRN } from '../errors.js'
import { mayReadMetrics } from '../metrics/host-ops.js'
import type { Running } from './host-calls.js'

/** Event namespaces only the kernel writes: a plugin can never pass off its events as these. */
const RESERVED_EVENT_NAMESPACES: ReadonlySet<string> = new Set(['kernel', 'marketplace', 'workflow'])

export function has(run: Running, test: (c: Capability) => boolean): boolean {
  return run.caps.some(test)
}

export function use(run: Running, op: string, target: string): void {
  const key = `${run.inst.id}|${op}|${target}`
  const u = run.tree.uses.get(key)
  if (u) u.count++
  else run.tree.uses.set(key, { plugin: run.inst.plugin, installationId: run.inst.id, op, target, count: 1 })
}

/** Distinct refusals kept per invocation; further ones are counted per (plugin, op) only. */
const MAX_DISTINCT_DENIALS = 16

export function deny(run: Running, op: string, target: string, reason: string): never {
  const denials = run.tree.denials
  let key = `${run.inst.id}|${op}|${target}|${reason}`
  let entry = denials.get(key)
  if (!entry && denials.size >= MAX_DISTINCT_DENIALS) {
    key = `${run.inst.id}|${op}|*`
    entry = denials.get(key)
    target = '*'
    reason = `further refusals of ${op}`
  }
  if (entry) entry.count++
  else denials.set(key, { plugin: run.inst.plugin, installationId: run.inst.id, op, target, reason, count: 1 })
  throw KRN.CAPABILITY_DENIED({ reason })
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '?')

/**
 * The capability check, made before the arguments are validated so that a plugin probing
 * with malformed arguments is refused (and audited) as what it is. Checks what the arguments
 * allow; returns false when a finer check must wait until they are valid.
 */
export function authorize(run: Running, op: string, args: unknown): boolean {
  const a = (args !== null && typeof args === 'object' ? args : {}) as Record<string, unknown>
  const who = run.inst.plugin
  switch (op) {
    case 'data.insert':
    case 'data.get':
    case 'data.update':
    case 'data.delete':
    case 'data.find':
      if (!has(run, (c) => c.kind === 'data')) deny(run, op, text(a.collection), `${who} was not granted "data"`)
      return true
    case 'secrets.get':
      if (!has(run, (c) => c.kind === 'secrets')) deny(run, op, text(a.name), `${who} was not granted "secrets"`)
      return true
    case 'ai.complete':
    case 'ai.generate':
    case 'ai.embed': {
      const cap = op === 'ai.embed' ? 'ai:embed' : 'ai:complete'
      if (!has(run, (c) => c.kind === cap)) deny(run, op, text(a.model), `${who} was not granted "${cap}"`)
      return true
    }
    case 'knowledge.search':
    case 'knowledge.ask':
    case 'knowledge.write': {
      const cap = op === 'knowledge.write' ? 'knowledge:write' : 'knowledge:search'
      if (!has(run, (c) => c.kind === cap)) deny(run, op, text(a.kb), `${who} was not granted "${cap}"`)
      return true
    }
    case 'metrics.query':
    case 'metrics.forecast':
      if (!mayReadMetrics(run.caps)) deny(run, op, text(a.metric), `${who} was not granted "metrics:read"`)
      return true
    case 'workflows.start':
      if (!has(run, (c) => c.kind === 'workflows'))
        deny(run, op, text(a.workflow), `${who} was not granted "workflows"`)
      return true
    case 'events.emit': {
      const type = text(a.type)
      if (typeof a.type === 'string' && RESERVED_EVENT_NAMESPACES.has(type.split('.')[0]!))
        deny(run, op, type, `${type.split('.')[0]}.* events are emitted by the kernel only`)
      if (
        !has(
          run,
          (c) => c.kind === 'events:emit' && (typeof a.type !== 'string' || matchesEventPattern(c.pattern, type)),
        )
      )
        deny(run, op, type, `${who} may not emit "${type}"`)
      return typeof a.type === 'string'
    }
    case 'plugins.call': {
      const target = `${text(a.plugin)}#${text(a.action)}`
      const known = typeof a.plugin === 'string' && typeof a.action === 'string'
      if (!has(run, (c) => c.kind === 'plugins:call' && (!known || (c.plugin === a.plugin && c.action === a.action))))
        deny(run, op, target, `${who} may not call ${target}`)
      return known
    }
    case 'http.fetch': {
      let host: string | undefined
      try {
        host = typeof a.url === 'string' ? new URL(a.url).host : undefined
      } catch {
        host = undefined
      }
      if (!has(run, (c) => c.kind === 'http:fetch' && (host === undefined || hostAllowed(c.hosts, host))))
        deny(run, op, host ?? '?', `${who} may not fetch from ${host ?? 'that address'}`)
      return host !== undefined
    }
  }
  return true
}
