/**
 * Checks on JSON values before they reach PostgreSQL, and metadata stripping.
 *
 * A value PostgreSQL refuses (a `\u0000` in a string or key, a lone UTF-16 surrogate, absurd
 * nesting) would raise an SQL error, and an SQL error aborts the surrounding transaction — the
 * plugin's whole invocation. So such values are refused here first, as a validation error the
 * plugin can catch.
 */
import { pointerSegment } from '@trellis/plugin-sdk'

/** Names of the kernel-maintained record fields. */
export const META_FIELDS = ['id', 'version', 'createdAt', 'updatedAt'] as const

/** One of {@link META_FIELDS}. */
export type MetaField = (typeof META_FIELDS)[number]

/** True when `name` is a kernel-maintained field. */
export function isMetaField(name: string): name is MetaField {
  return name === 'id' || name === 'version' || name === 'createdAt' || name === 'updatedAt'
}

/** Deepest nesting of arrays and objects a stored value or query operand may have. */
export const MAX_JSON_DEPTH = 100

/** A problem in the shape the kernel reports validation errors with. */
export interface Problem {
  pointer: string
  message: string
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** True when PostgreSQL can store `s` in a jsonb or text value. */
export function storableString(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s)
}

/**
 * Problems that would make PostgreSQL refuse `value` as jsonb: `\u0000` or lone surrogates in
 * strings and keys, non-finite numbers, nesting deeper than {@link MAX_JSON_DEPTH}.
 * Returns at most one problem (the first found).
 */
export function jsonProblems(value: unknown, pointer = ''): Problem[] {
  const out: Problem[] = []
  walk(value, pointer, 0, out)
  return out
}

function walk(value: unknown, pointer: string, depth: number, out: Problem[]): void {
  if (out.length) return
  if (typeof value === 'string') {
    if (!storableString(value)) out.push({ pointer, message: 'must not contain \\u0000 or unpaired surrogates' })
    return
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) out.push({ pointer, message: 'must be a finite number' })
    return
  }
  if (value === null || typeof value !== 'object') return
  if (depth >= MAX_JSON_DEPTH) {
    out.push({ pointer, message: `is nested deeper than ${MAX_JSON_DEPTH} levels` })
    return
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && !out.length; i++) walk(value[i], `${pointer}/${i}`, depth + 1, out)
    return
  }
  for (const [k, v] of Object.entries(value)) {
    if (out.length) return
    const at = `${pointer}/${pointerSegment(k)}`
    if (!storableString(k))
      out.push({ pointer: at, message: 'the key must not contain \\u0000 or unpaired surrogates' })
    else walk(v, at, depth + 1, out)
  }
}

/**
 * `record` without the metadata keys (own enumerable properties copied as data properties,
 * so a `__proto__` key stays an ordinary key).
 */
export function withoutMeta(record: Record<string, unknown>): Record<string, unknown> {
  const { id: _i, version: _v, createdAt: _c, updatedAt: _u, ...rest } = record
  return rest
}
