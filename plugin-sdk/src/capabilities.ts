/**
 * Capability strings and the matching rules the kernel, the marketplace and the SDK's lint
 * share. Pure functions, no dependencies.
 */

/** A parsed capability. */
export type Capability =
  | {
      kind:
        | 'data'
        | 'ai:complete'
        | 'ai:embed'
        | 'knowledge:search'
        | 'knowledge:write'
        | 'secrets'
        | 'jobs'
        | 'workflows'
    }
  | { kind: 'events:emit' | 'events:subscribe'; pattern: string }
  | { kind: 'http:fetch'; hosts: string[] }
  | { kind: 'plugins:call'; plugin: string; action: string }
  | { kind: 'metrics:read'; plugin?: string }

const SIMPLE = new Set([
  'data',
  'ai:complete',
  'ai:embed',
  'knowledge:search',
  'knowledge:write',
  'secrets',
  'jobs',
  'workflows',
])
const EVENT_PATTERN = /^(\*\*|([a-z][a-zA-Z0-9-]*|\*)(\.([a-z][a-zA-Z0-9-]*|\*))*(\.\*\*)?)$/
const HOST = /^(\*|(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(:[0-9]{1,5})?$/
const PLUGIN = /^@[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*$/
const ACTION = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/

/**
 * Parses a capability string; returns an error message for a malformed one.
 *
 * - `events:emit:<pattern>` / `events:subscribe:<pattern>`: dot-separated segments where `*`
 *   matches exactly one segment and a final `**` one or more (`orders.order.*`, `orders.**`).
 * - `http:fetch:<hosts>`: comma-separated hosts, each `host`, `host:port` or `*.domain`
 *   (any subdomain of domain); `*` alone allows every host (lint flags it).
 * - `plugins:call:<plugin>#<action>`.
 */
export function parseCapability(cap: string): Capability | { error: string } {
  if (SIMPLE.has(cap)) return { kind: cap as 'data' }
  for (const kind of ['events:emit', 'events:subscribe'] as const) {
    if (cap.startsWith(`${kind}:`)) {
      const pattern = cap.slice(kind.length + 1)
      if (!EVENT_PATTERN.test(pattern))
        return {
          error: `"${pattern}" is not an event pattern (dot-separated segments; * is one segment, a final ** one or more)`,
        }
      return { kind, pattern }
    }
  }
  if (cap.startsWith('http:fetch:')) {
    const hosts = cap.slice('http:fetch:'.length).split(',')
    for (const h of hosts)
      if (!HOST.test(h)) return { error: `"${h}" is not a host (host, host:port or *.domain, lower-case)` }
    return { kind: 'http:fetch', hosts }
  }
  if (cap.startsWith('plugins:call:')) {
    const rest = cap.slice('plugins:call:'.length)
    const hash = rest.indexOf('#')
    const plugin = hash < 0 ? rest : rest.slice(0, hash)
    const action = hash < 0 ? '' : rest.slice(hash + 1)
    if (!PLUGIN.test(plugin) || !ACTION.test(action)) return { error: `"${rest}" is not <@scope/plugin>#<action>` }
    return { kind: 'plugins:call', plugin, action }
  }
  // `metrics:read`: the plugin's own metrics from code; `metrics:read:<plugin>`: another plugin's
  // metrics, and metrics the plugin declares over that plugin's collections.
  if (cap === 'metrics:read') return { kind: 'metrics:read' }
  if (cap.startsWith('metrics:read:')) {
    const plugin = cap.slice('metrics:read:'.length)
    if (!PLUGIN.test(plugin)) return { error: `"${plugin}" is not a plugin name (@scope/name)` }
    return { kind: 'metrics:read', plugin }
  }
  return { error: `unknown capability "${cap}"` }
}

/** True when event `type` matches `pattern` (`*` = one segment, a final `**` = one or more). */
export function matchesEventPattern(pattern: string, type: string): boolean {
  const p = pattern.split('.')
  const t = type.split('.')
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '**' && i === p.length - 1) return t.length > i
    if (i >= t.length) return false
    if (p[i] !== '*' && p[i] !== t[i]) return false
  }
  return p.length === t.length
}

/**
 * True when `host` (a URL's `host`: name, plus `:port` when not the scheme's default) is allowed
 * by one of `allowed` (http:fetch hosts). An entry without a port allows the default port only;
 * `*.domain` allows subdomains of domain, not domain itself.
 */
export function hostAllowed(allowed: readonly string[], host: string): boolean {
  const [name, port] = splitPort(host.toLowerCase())
  return allowed.some((entry) => {
    if (entry === '*') return true
    const [pattern, p] = splitPort(entry)
    if (p !== port) return false // an entry without a port allows only the scheme's default port
    if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1
    return name === pattern
  })
}

function splitPort(h: string): [string, string | undefined] {
  const i = h.lastIndexOf(':')
  return i < 0 ? [h, undefined] : [h.slice(0, i), h.slice(i + 1)]
}
