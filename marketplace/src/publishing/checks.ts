/**
 * The automated checks' result records and the pure checks (capability diff, static scan).
 * Every check of a version is stored in `plugin_versions.checks` as a {@link CheckResult}; a
 * failed blocking check keeps the version out of review (`failed_checks`).
 */
import type { PluginManifest } from '@trellis/plugin-sdk'

export type CheckStatus = 'passed' | 'failed' | 'warning'

/** One check of a published version, as stored and shown. */
export interface CheckResult {
  name: string
  status: CheckStatus
  /** A failed blocking check keeps the version out of review. */
  blocking: boolean
  details: Record<string, unknown>
  at: string
}

/** Names of the checks, in the order they run (the first seven run during the upload). */
export const CHECK_NAMES = Object.freeze([
  'package', // size limits, safe unpack, exact files, SHA256SUMS
  'signature', // by an active key of the publisher, over the exact tarball bytes
  'manifest-schema',
  'name', // the manifest names the plugin the upload is for
  'version-monotonic', // greater than every version of the plugin already published
  'engines', // engines.trellis satisfied by this kernel
  'capabilities', // no http:fetch to internal hosts, no subscription to the platform's namespaces
  'sandbox-load', // the bundle loads in the sandbox and exports what the manifest declares (+ lint)
  'size-limits', // bundle and source map sizes
  'capability-diff', // against the previous approved version
  'static-scan', // dynamic code generation and imports, as warnings
  'event-subscriptions', // broad or foreign subscriptions, as warnings for the reviewer
  'data-classification', // fields per classification; blocking while the platform requires classification
] as const)

export const check = (
  name: string,
  status: CheckStatus,
  blocking: boolean,
  details: Record<string, unknown> = {},
): CheckResult => ({ name, status, blocking, details, at: new Date().toISOString() })

/** What the capability diff stores under `details.diff`. */
export interface CapabilityDiff {
  capabilities: { added: string[]; removed: string[] }
  permissions: { added: string[]; removed: string[] }
}

const permissionNames = (m: Pick<PluginManifest, 'permissions'> | undefined) =>
  (m?.permissions ?? []).map((p) => p.name)

function setDiff(next: readonly string[], prev: readonly string[]) {
  const a = new Set(next)
  const b = new Set(prev)
  return { added: [...a].filter((x) => !b.has(x)).sort(), removed: [...b].filter((x) => !a.has(x)).sort() }
}

/** Capabilities and permissions `next` adds and removes relative to `prev` (everything is added when there is no previous version). */
export function capabilityDiff(
  next: Pick<PluginManifest, 'capabilities' | 'permissions'>,
  prev: Pick<PluginManifest, 'capabilities' | 'permissions'> | undefined,
): CapabilityDiff {
  return {
    capabilities: setDiff(next.capabilities ?? [], prev?.capabilities ?? []),
    permissions: setDiff(permissionNames(next), permissionNames(prev)),
  }
}

/** One static finding in the bundle text. */
export interface StaticFinding {
  rule: string
  message: string
  line: number
  column: number
  excerpt: string
}

const RULES: Array<{ rule: string; re: RegExp; message: string }> = [
  { rule: 'eval', re: /(?<![\w$.])eval\s*\(/g, message: 'eval() runs code built at run time' },
  { rule: 'new-function', re: /\bnew\s+Function\s*\(/g, message: 'new Function() builds code at run time' },
  {
    rule: 'function-constructor',
    re: /(?<![\w$.]|new\s)Function\s*\(/g,
    message: 'Function() builds code at run time',
  },
  {
    rule: 'dynamic-import',
    re: /(?<![\w$.])import\s*\(/g,
    message: 'a dynamic import() (the sandbox has no module loader; it fails at run time)',
  },
  {
    rule: 'constructor-constructor',
    re: /\.constructor\.constructor\b|\[\s*['"]constructor['"]\s*\]\s*\[\s*['"]constructor['"]\s*\]/g,
    message: 'reaching the Function constructor through .constructor.constructor',
  },
  { rule: 'string-timer', re: /\bset(?:Timeout|Interval)\s*\(\s*['"`]/g, message: 'a timer given code as a string' },
  {
    rule: 'webassembly',
    re: /\bWebAssembly\s*\.\s*(?:compile|instantiate|Module)\b/g,
    message: 'WebAssembly compiled at run time',
  },
]
const MAX_FINDINGS = 50

/** Dynamic code generation and similar in a bundle: warnings for the reviewer, never blocking. */
export function staticScan(code: string): { findings: StaticFinding[]; truncated: boolean } {
  const findings: StaticFinding[] = []
  let truncated = false
  const lineStarts = [0]
  for (let i = 0; i < code.length; i++) if (code.charCodeAt(i) === 10) lineStarts.push(i + 1)
  const locate = (index: number) => {
    let lo = 0
    let hi = lineStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (lineStarts[mid]! <= index) lo = mid
      else hi = mid - 1
    }
    return { line: lo + 1, column: index - lineStarts[lo]! + 1 }
  }
  for (const { rule, re, message } of RULES) {
    for (const m of code.matchAll(re)) {
      if (findings.length >= MAX_FINDINGS) {
        truncated = true
        break
      }
      const { line, column } = locate(m.index!)
      const start = Math.max(0, m.index! - 40)
      findings.push({
        rule,
        message,
        line,
        column,
        excerpt: code.slice(start, m.index! + m[0].length + 40).replace(/\s+/g, ' '),
      })
    }
  }
  findings.sort((a, b) => a.line - b.line || a.column - b.column)
  return { findings, truncated }
}
