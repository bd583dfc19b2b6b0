/**
 * What the platform refuses or flags in the capabilities a plugin asks for, before a tenant is
 * ever asked to grant them: `http:fetch` hosts that name a non-public destination (loopback,
 * private, link-local, cloud metadata) and event subscriptions to namespaces that belong to the
 * platform, or that are broader than the plugin can justify. The marketplace applies these at
 * submission (refusals and review warnings) and the kernel at grant. Pure functions.
 */
import { parseCapability } from './capabilities.js'

/** An `http:fetch` host entry that names a non-public destination. */
export interface InternalFetchTarget {
  /** The capability's host entry, as written (`127.0.0.1:5432`, `2130706433`, `localhost`). */
  entry: string
  /** The address it stands for, when it is an address (`127.0.0.1`), or the loopback address `localhost` resolves to. */
  address: string | null
  /** Why it is not public: `loopback`, `private`, `link-local`, `metadata`, `unspecified`, `internal name` … */
  reason: string
}

// The ranges the kernel's egress guard refuses at connect time, as [first octets, prefix bits, reason].
const V4_RANGES: Array<[number, number, string]> = [
  [ip4(0, 0, 0, 0), 8, 'unspecified'],
  [ip4(10, 0, 0, 0), 8, 'private'],
  [ip4(100, 64, 0, 0), 10, 'carrier-grade NAT'],
  [ip4(127, 0, 0, 0), 8, 'loopback'],
  [ip4(169, 254, 169, 254), 32, 'metadata'],
  [ip4(169, 254, 0, 0), 16, 'link-local'],
  [ip4(172, 16, 0, 0), 12, 'private'],
  [ip4(192, 0, 0, 0), 24, 'reserved'],
  [ip4(192, 0, 2, 0), 24, 'documentation'],
  [ip4(192, 88, 99, 0), 24, 'reserved'],
  [ip4(192, 168, 0, 0), 16, 'private'],
  [ip4(198, 18, 0, 0), 15, 'benchmarking'],
  [ip4(198, 51, 100, 0), 24, 'documentation'],
  [ip4(203, 0, 113, 0), 24, 'documentation'],
  [ip4(224, 0, 0, 0), 4, 'multicast'],
  [ip4(240, 0, 0, 0), 4, 'reserved'],
]

function ip4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) >>> 0) + (b << 16) + (c << 8) + d
}

/**
 * An IPv4 host the way a URL parser reads it (WHATWG): one to four parts, each decimal, octal
 * (leading 0) or hex (0x), the last filling the remaining bytes — so `2130706433`, `0x7f000001`,
 * `0177.0.0.1` and `127.1` all read as 127.0.0.1. Undefined when it is not an IPv4 address.
 */
export function parseIpv4(host: string): string | undefined {
  const parts = host.split('.')
  if (parts[parts.length - 1] === '') parts.pop()
  if (parts.length === 0 || parts.length > 4) return undefined
  const nums: number[] = []
  for (const p of parts) {
    let n: number
    if (/^0x[0-9a-f]*$/i.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16)
    else if (/^0[0-7]+$/.test(p)) n = parseInt(p.slice(1), 8)
    else if (/^(0|[1-9][0-9]*)$/.test(p)) n = Number(p)
    else return undefined
    if (!Number.isFinite(n)) return undefined
    nums.push(n)
  }
  const last = nums.pop()!
  if (nums.some((n) => n > 255) || last >= 256 ** (4 - nums.length)) return undefined
  let value = last
  nums.forEach((n, i) => (value += n * 256 ** (3 - i)))
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.')
}

function v4Reason(address: string): string | undefined {
  const [a, b, c, d] = address.split('.').map(Number) as [number, number, number, number]
  const value = ip4(a, b, c, d)
  for (const [base, bits, reason] of V4_RANGES) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
    if ((value & mask) >>> 0 === base) return reason
  }
  return undefined
}

function v6Reason(address: string): { address: string; reason: string } | undefined {
  const a = address.toLowerCase()
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (mapped) {
    const reason = v4Reason(mapped[1]!)
    return reason ? { address: mapped[1]!, reason } : undefined
  }
  const groups = expandV6(a)
  if (!groups) return { address: a, reason: 'not a public address' }
  if (groups.every((g) => g === 0)) return { address: '::', reason: 'unspecified' }
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1) return { address: '::1', reason: 'loopback' }
  if ((groups[0]! & 0xfe00) === 0xfc00) return { address: a, reason: 'unique local (private)' }
  if ((groups[0]! & 0xffc0) === 0xfe80 || (groups[0]! & 0xffc0) === 0xfec0) return { address: a, reason: 'link-local' }
  if ((groups[0]! & 0xff00) === 0xff00) return { address: a, reason: 'multicast' }
  if (groups.slice(0, 6).every((g) => g === 0)) return { address: a, reason: 'IPv4-compatible' }
  if (groups[0] === 0x64 && groups[1] === 0xff9b) return { address: a, reason: 'NAT64' }
  if (groups[0] === 0x2002 || (groups[0] === 0x2001 && groups[1] === 0)) return { address: a, reason: 'IPv4 tunnel' }
  if (groups[0] === 0x2001 && groups[1] === 0xdb8) return { address: a, reason: 'documentation' }
  return undefined
}

function expandV6(a: string): number[] | undefined {
  const halves = a.split('::')
  if (halves.length > 2) return undefined
  const head = halves[0] ? halves[0].split(':') : []
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : []
  const missing = 8 - head.length - tail.length
  if (halves.length === 1 ? head.length !== 8 : missing < 1) return undefined
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail]
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined
  return all.map((g) => parseInt(g, 16))
}

// Names that resolve inside wherever the kernel runs, whatever DNS says about them elsewhere.
const INTERNAL_SUFFIXES = [
  '.localhost',
  '.internal',
  '.local',
  '.localdomain',
  '.home.arpa',
  '.intranet',
  '.lan',
  '.corp',
]

/** A host entry without its port (`[::1]:80` → `::1`, `host:443` → `host`). */
function hostPart(entry: string): string {
  const e = entry.trim().toLowerCase()
  if (e.startsWith('[')) return e.slice(1, e.indexOf(']') < 0 ? undefined : e.indexOf(']'))
  const colons = e.split(':').length - 1
  if (colons === 1) return e.slice(0, e.indexOf(':'))
  return e // a bare IPv6 address, or a name without a port
}

/**
 * Whether one `http:fetch` host entry names a non-public destination, and which: every spelling
 * of an IPv4 address a URL parser accepts, IPv6 literals (loopback, unique local, link-local,
 * mapped IPv4), `localhost` and internal-only names (`*.internal`, `*.local`, `metadata`…).
 * Undefined for a public name or address (and for `*`, which the lint flags separately).
 */
export function internalFetchTarget(entry: string): InternalFetchTarget | undefined {
  const host = hostPart(entry).replace(/\.$/, '')
  if (host === '*' || host === '') return undefined
  const name = host.startsWith('*.') ? host.slice(2) : host
  if (name.includes(':')) {
    const r = v6Reason(name)
    return r ? { entry, address: r.address, reason: r.reason } : undefined
  }
  const v4 = parseIpv4(name)
  if (v4) {
    const reason = v4Reason(v4)
    return reason ? { entry, address: v4, reason } : undefined
  }
  if (name === 'localhost' || name.endsWith('.localhost')) return { entry, address: '127.0.0.1', reason: 'loopback' }
  if (name === 'metadata' || name === 'metadata.google.internal' || name === 'instance-data')
    return { entry, address: null, reason: 'metadata' }
  if (!name.includes('.') || INTERNAL_SUFFIXES.some((s) => name.endsWith(s) || name === s.slice(1)))
    return { entry, address: null, reason: 'internal name' }
  return undefined
}

/**
 * The `http:fetch` host entries among `capabilities` that name non-public destinations, except
 * those `allowed` says the operator allow-listed (the kernel passes its egress allow-list).
 */
export function internalFetchTargets(
  capabilities: readonly string[],
  allowed: (target: InternalFetchTarget) => boolean = () => false,
): Array<InternalFetchTarget & { capability: string }> {
  const out: Array<InternalFetchTarget & { capability: string }> = []
  for (const capability of capabilities) {
    if (!capability.startsWith('http:fetch:')) continue
    for (const entry of capability.slice('http:fetch:'.length).split(',')) {
      const target = internalFetchTarget(entry)
      if (target && !allowed(target)) out.push({ ...target, capability })
    }
  }
  return out
}

/**
 * Event namespaces (the first segment of an event type) that belong to the platform: no plugin
 * subscribes to them, whatever it asks. `workflow.*` is among them: workflows are woken by the
 * tenant events their plugin subscribes to (start.events, waitsFor), never by the kernel's
 * `workflow.*` events, which describe every plugin's workflows and tasks to the tenant's people
 * and webhooks.
 */
export const RESERVED_EVENT_NAMESPACES: readonly string[] = Object.freeze([
  'kernel',
  'marketplace',
  'workflow',
  'platform',
  'audit',
  'identity',
  'tenancy',
  'trellis',
  'admin',
  'system',
  'security',
])

/** Namespaces of the kernel's events a plugin may subscribe to whatever its name (none today). */
export const KERNEL_SUBSCRIBABLE_NAMESPACES: readonly string[] = Object.freeze([])

/** The namespace a plugin's own events use: its name without the scope (`@trellis/orders` → `orders`). */
export function ownEventNamespace(plugin: string): string {
  return plugin.slice(plugin.indexOf('/') + 1)
}

/** One finding about an event subscription. */
export interface SubscriptionFinding {
  /** `reserved` is refused; the others are warnings for the reviewer. */
  rule: 'reserved' | 'everything' | 'any-namespace' | 'other-namespace-wildcard' | 'unknown-namespace'
  pattern: string
  message: string
}

/**
 * What a plugin's event subscriptions (its `events:subscribe:` capabilities and
 * `events.subscribes`) reach: reserved namespaces (refused), patterns over every namespace
 * (`**`, `*.…`), wildcards over another plugin's namespace, and namespaces no plugin declares
 * (warnings). `declared` is the set of namespaces other plugins declare events in.
 */
export function subscriptionFindings(
  manifest: {
    name: string
    capabilities: readonly string[]
    events?: { subscribes?: readonly string[]; emits?: Record<string, unknown> }
  },
  declared: ReadonlySet<string> = new Set(),
): SubscriptionFinding[] {
  const patterns = new Set<string>()
  for (const c of manifest.capabilities) {
    const parsed = parseCapability(c)
    if ('kind' in parsed && parsed.kind === 'events:subscribe') patterns.add(parsed.pattern)
  }
  for (const s of manifest.events?.subscribes ?? []) patterns.add(s)
  const own = new Set([
    ownEventNamespace(manifest.name),
    ...Object.keys(manifest.events?.emits ?? {}).map((t) => t.split('.')[0]!),
  ])
  const findings: SubscriptionFinding[] = []
  for (const pattern of patterns) {
    const [first, ...rest] = pattern.split('.')
    if (first === '**' || first === '*') {
      findings.push({
        rule: pattern === '**' ? 'everything' : 'any-namespace',
        pattern,
        message: `"${pattern}" matches events of every namespace, other plugins' and the platform's included`,
      })
      continue
    }
    if (RESERVED_EVENT_NAMESPACES.includes(first!)) {
      findings.push({
        rule: 'reserved',
        pattern,
        message: `the "${first}" namespace belongs to the platform; plugins do not subscribe to it`,
      })
      continue
    }
    if (own.has(first!) || KERNEL_SUBSCRIBABLE_NAMESPACES.includes(first!)) continue
    if (!declared.has(first!)) {
      findings.push({
        rule: 'unknown-namespace',
        pattern,
        message: `no approved plugin declares events in the "${first}" namespace`,
      })
      continue
    }
    if (rest.some((s) => s === '*' || s === '**'))
      findings.push({
        rule: 'other-namespace-wildcard',
        pattern,
        message: `"${pattern}" subscribes to every event of another plugin's namespace "${first}"`,
      })
  }
  return findings
}
