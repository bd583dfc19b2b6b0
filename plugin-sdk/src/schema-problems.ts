// One shape for validation problems, whoever validates: the kernel's own routes (Fastify's Ajv),
// plugin routes, actions and events (the manifest's schemas). Each problem names where it is,
// the field it is about when the pointer alone does not (a missing or an unknown field), and the
// values or fields that are allowed, so a caller can fix the request without reading a schema.

/** An Ajv issue, as Ajv and Fastify report it. */
export interface SchemaIssue {
  instancePath?: string
  schemaPath?: string
  keyword?: string
  message?: string
  params?: Record<string, unknown>
}

/** One validation problem as an RFC 9457 problem's `problems` lists it. */
export interface SchemaProblem {
  /** JSON pointer into the checked value (`/lines/0/qty`; empty for the value itself). */
  pointer: string
  message: string
  /** The field a `required` or `additionalProperties` issue is about. */
  field?: string
  /** The values (enum, const) or the fields (an unknown field) that are allowed. */
  allowedValues?: unknown[]
}

/** The schema node at an Ajv `schemaPath` (`#/properties/lines/items/additionalProperties`), if local. */
function schemaAt(root: unknown, schemaPath: string): unknown {
  if (!schemaPath.startsWith('#')) return undefined
  let node = root
  for (const raw of schemaPath.slice(1).split('/').filter(Boolean)) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return node
}

/** The problem for one issue; with the root `schema`, an unknown field lists the fields allowed there. */
export function schemaProblemOf(issue: SchemaIssue, schema?: unknown): SchemaProblem {
  const params = issue.params ?? {}
  const problem: SchemaProblem = { pointer: issue.instancePath ?? '', message: issue.message ?? 'is invalid' }
  const field = params.additionalProperty ?? params.missingProperty
  if (typeof field === 'string') problem.field = field
  if (Array.isArray(params.allowedValues)) problem.allowedValues = params.allowedValues
  else if ('allowedValue' in params) problem.allowedValues = [params.allowedValue]
  else if (typeof params.additionalProperty === 'string' && schema !== undefined && issue.schemaPath) {
    const parent = schemaAt(schema, issue.schemaPath.replace(/\/additionalProperties$/, ''))
    const props = (parent as { properties?: Record<string, unknown> } | undefined)?.properties
    if (props) problem.allowedValues = Object.keys(props).sort()
  }
  return problem
}

/** `body/status must be equal to one of the allowed values (allowed: "open", "done")`: one problem, worded. */
export function describeSchemaProblem(where: string, p: SchemaProblem): string {
  const list = (values: unknown[]) => values.map((v) => JSON.stringify(v)).join(', ')
  let text = `${where}${p.pointer} ${p.message}`
  if (p.field && p.message.includes('additional properties')) text += ` ("${p.field}" is not one of its fields)`
  if (p.allowedValues) text += ` (allowed: ${list(p.allowedValues)})`
  return text
}
