import { compileJsonSchema } from '@trellis/plugin-sdk'
import { KRN } from '../errors.js'
import { validationFailed } from '../http/problem.js'

const validators = new Map<string, ReturnType<typeof compileJsonSchema>>()

/** The problems of `value` against a plugin-declared schema, compiled once per key (version + place). */
export function schemaProblems(
  key: string,
  schema: unknown,
  value: unknown,
): Array<{ pointer: string; message: string }> {
  if (schema === undefined) return []
  let v = validators.get(key)
  if (!v) validators.set(key, (v = compileJsonSchema(schema)))
  return v(value)
}

/** Throws `KRN_ERR_VALIDATION_FAILED` (with the problems) when `value` does not match. */
export function checkSchema(key: string, schema: unknown, value: unknown, what: string): void {
  const problems = schemaProblems(key, schema, value)
  if (problems.length)
    throw KRN.VALIDATION_FAILED({
      reason: `${what}: ${problems.map((p) => `${p.pointer || '/'} ${p.message}`).join('; ')}`,
      problems,
    })
}

const detailed = new Map<string, ReturnType<typeof compileJsonSchema>>()

/**
 * Checks one part of a request to a plugin route against the schema its manifest declares; a
 * mismatch answers the same problem as a kernel route's (`validationFailed`): the field named,
 * the values or fields allowed.
 */
export function checkRequestSchema(
  key: string,
  schema: unknown,
  value: unknown,
  where: 'params' | 'querystring' | 'body',
): void {
  if (schema === undefined) return
  let v = detailed.get(key)
  if (!v) detailed.set(key, (v = compileJsonSchema(schema, { detailed: true })))
  const problems = v(value)
  if (problems.length) throw validationFailed(where, problems)
}
