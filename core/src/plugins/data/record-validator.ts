/**
 * Validation of records against their collection's JSON Schema, with the compiled validators
 * cached per plugin, collection and schema.
 */
import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import { compileJsonSchema } from '@trellis/plugin-sdk'
import { KRN } from '../../errors.js'
import type { CollectionRef } from './types.js'
import { jsonProblems, type Problem } from './json-values.js'

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

type Validator = (value: unknown) => Problem[]

/** Upper bound of distinct (plugin, collection, schema) validators kept. */
const MAX_CACHED = 2000

/**
 * Compiled schema validators. The plugin host passes the same schema object for every call of
 * one plugin version, so the hot path is a WeakMap hit; a new object with known content (the
 * version loaded again) reuses the compiled validator by content hash.
 */
export class RecordValidator {
  private readonly byObject = new WeakMap<object, Map<string, Validator>>()
  private readonly byContent = new Map<string, Validator>()

  /** The problems of `record` against `ref.schema` (none when the collection has no schema). */
  problems(ref: CollectionRef, record: Record<string, unknown>): Problem[] {
    if (ref.schema === undefined) return []
    return this.validator(ref)(record)
  }

  /**
   * Throws `KRN_ERR_VALIDATION_FAILED` (with `details.problems`) when `record` does not match
   * the collection's schema or cannot be stored as jsonb.
   */
  check(ref: CollectionRef, record: Record<string, unknown>): void {
    const problems = this.problems(ref, record)
    if (!problems.length) problems.push(...jsonProblems(record))
    if (problems.length) throw invalid(`record of ${ref.name}`, problems)
  }

  private validator(ref: CollectionRef): Validator {
    const scope = `${ref.plugin}\u0000${ref.name}`
    const schema = ref.schema
    const isObject = typeof schema === 'object' && schema !== null
    let perObject = isObject ? this.byObject.get(schema) : undefined
    const hit = perObject?.get(scope)
    if (hit) return hit
    const key = `${scope}\u0000${createHash('sha256')
      .update(canonicalize(schema) ?? 'undefined')
      .digest('base64url')}`
    let v = this.byContent.get(key)
    if (!v) {
      v = compileJsonSchema(withPrivateId(schema))
      if (this.byContent.size >= MAX_CACHED) this.byContent.delete(this.byContent.keys().next().value!)
      this.byContent.set(key, v)
    }
    if (isObject) {
      if (!perObject) this.byObject.set(schema, (perObject = new Map()))
      perObject.set(scope, v)
    }
    return v
  }
}

let compiledCount = 0

/**
 * The SDK compiles every schema into one shared ajv instance, which refuses a second schema
 * with an `$id` it already holds: one plugin could then break another's collection by declaring
 * the same `$id`, and a new version of a plugin its own. So a top-level `$id` is replaced by
 * one unique to this compilation (references relative to the schema keep working; an absolute
 * reference to the schema's own former `$id` does not).
 */
function withPrivateId(schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema) || !Object.hasOwn(schema, '$id'))
    return schema
  return { ...schema, $id: `urn:trellis:plugin-collection:${process.pid}:${++compiledCount}` }
}

/** `KRN_ERR_VALIDATION_FAILED` with the problems, worded like the SDK's test host. */
export function invalid(what: string, problems: Problem[]) {
  return KRN.VALIDATION_FAILED({
    reason: `${what}: ${problems.map((p) => `${p.pointer || '/'} ${p.message}`).join('; ')}`,
    problems,
  })
}
