/**
 * Data classification of collection fields. A collection's JSON Schema marks each top-level
 * property with `classification`; the kernel encrypts `personal` and `sensitive-personal`
 * fields at rest, keeps them out of logs, masks them before AI calls and lists them in exports.
 * Pure code: usable in the manifest checks, the marketplace and the kernel alike.
 */
import type { JsonSchema, PluginManifest } from './manifest-types.js'

/**
 * The classification levels, least to most protected.
 * - `public`: may be shown to anybody (a product name).
 * - `internal`: the tenant's business data (an order total).
 * - `confidential`: business data with a need-to-know (a negotiated price).
 * - `personal`: about a person (a contact's e-mail); encrypted at rest.
 * - `sensitive-personal`: special-category personal data (health, ID numbers); encrypted at rest.
 */
export const CLASSIFICATIONS = Object.freeze([
  'public',
  'internal',
  'confidential',
  'personal',
  'sensitive-personal',
] as const)

/** One classification level (see {@link CLASSIFICATIONS}). */
export type Classification = (typeof CLASSIFICATIONS)[number]

/** True for the levels the kernel encrypts at rest (`personal`, `sensitive-personal`). */
export function isEncryptedClassification(c: unknown): boolean {
  return c === 'personal' || c === 'sensitive-personal'
}

/** True when `c` is one of {@link CLASSIFICATIONS}. */
export function isClassification(c: unknown): c is Classification {
  return typeof c === 'string' && (CLASSIFICATIONS as readonly string[]).includes(c)
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The classification of each top-level property of a collection schema that declares one.
 *
 * @example
 * ```ts
 * fieldClassifications({ type: 'object', properties: { email: { type: 'string', classification: 'personal' } } })
 * // → { email: 'personal' }
 * ```
 */
export function fieldClassifications(schema: JsonSchema | unknown): Record<string, Classification> {
  const out: Record<string, Classification> = {}
  if (!isObj(schema) || !isObj(schema.properties)) return out
  for (const [field, prop] of Object.entries(schema.properties))
    if (isObj(prop) && isClassification(prop.classification)) out[field] = prop.classification
  return out
}

/** The top-level fields of a collection schema the kernel encrypts at rest. */
export function encryptedFields(schema: JsonSchema | unknown): string[] {
  return Object.entries(fieldClassifications(schema))
    .filter(([, c]) => isEncryptedClassification(c))
    .map(([f]) => f)
}

/** What a manifest classifies, per collection: field → classification, and the fields left unclassified. */
export interface ClassificationSummary {
  /** Collection name → field → classification. */
  collections: Record<string, { fields: Record<string, Classification>; unclassified: string[] }>
  /** Total of unclassified top-level fields across the collections. */
  unclassified: number
  /** Total of fields encrypted at rest. */
  encrypted: number
}

/** The classification of every collection of a manifest, as the marketplace review shows it. */
export function classificationSummary(manifest: Pick<PluginManifest, 'collections'>): ClassificationSummary {
  const collections: ClassificationSummary['collections'] = {}
  let unclassified = 0
  let encrypted = 0
  for (const [name, c] of Object.entries(manifest.collections ?? {})) {
    const schema = c.schema
    const fields = fieldClassifications(schema)
    const props = isObj(schema) && isObj(schema.properties) ? Object.keys(schema.properties) : []
    const missing = props.filter((p) => !(p in fields))
    unclassified += missing.length
    encrypted += Object.values(fields).filter(isEncryptedClassification).length
    collections[name] = { fields, unclassified: missing }
  }
  return { collections, unclassified, encrypted }
}

/** One problem of a manifest's classifications, pointing into the manifest. */
export interface ClassificationProblem {
  pointer: string
  message: string
}

const seg = (s: string | number) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`

/**
 * The kind of data subject a top-level field identifies (`"subject": "contact"` beside its
 * classification): records whose field holds a person's identifier are about that person, and a
 * tenant admin's erasure of the person removes their personal fields (docs/governance.md).
 */
export const SUBJECT_KIND = /^[a-z][a-z0-9-]{0,63}$/

/**
 * Rules of classification that JSON Schema cannot state: a known level; only on top-level
 * properties of a collection schema (and so for a `subject` declaration, which must name a kind) (the kernel encrypts whole top-level fields); an encrypted
 * field is never a metric's measure, time or dimension (the kernel cannot aggregate ciphertext).
 */
export function classificationProblems(manifest: Record<string, unknown>): ClassificationProblem[] {
  const problems: ClassificationProblem[] = []
  const collections = isObj(manifest.collections) ? manifest.collections : {}
  const encrypted = new Map<string, Set<string>>()
  for (const [name, c] of Object.entries(collections)) {
    if (!isObj(c) || !isObj(c.schema)) continue
    const at = `/collections${seg(name)}/schema`
    if (c.schema.classification !== undefined)
      problems.push({ pointer: `${at}/classification`, message: 'classify the properties, not the whole record' })
    const props = isObj(c.schema.properties) ? c.schema.properties : {}
    for (const [field, prop] of Object.entries(props)) {
      if (!isObj(prop)) continue
      const here = `${at}/properties${seg(field)}`
      if (prop.classification !== undefined && !isClassification(prop.classification))
        problems.push({ pointer: `${here}/classification`, message: `must be one of ${CLASSIFICATIONS.join(', ')}` })
      if (prop.subject !== undefined && (typeof prop.subject !== 'string' || !SUBJECT_KIND.test(prop.subject)))
        problems.push({
          pointer: `${here}/subject`,
          message: 'must name a kind of data subject: lower-case letters, digits and dashes, e.g. "contact"',
        })
      nestedClassifications(prop, here, problems)
    }
    encrypted.set(name, new Set(encryptedFields(c.schema)))
  }
  const metrics = isObj(manifest.metrics) ? manifest.metrics : {}
  for (const [name, m] of Object.entries(metrics)) {
    if (!isObj(m) || typeof m.collection !== 'string' || m.collection.includes(':')) continue
    const sealed = encrypted.get(m.collection)
    if (!sealed?.size) continue
    const used = new Set<string>()
    if (typeof m.time === 'string') used.add(m.time)
    if (isObj(m.measure)) for (const v of Object.values(m.measure)) if (typeof v === 'string') used.add(v)
    if (Array.isArray(m.dimensions)) for (const d of m.dimensions) if (typeof d === 'string') used.add(d)
    if (isObj(m.dimensions)) for (const d of Object.values(m.dimensions)) if (typeof d === 'string') used.add(d)
    for (const f of used)
      if (sealed.has(f))
        problems.push({
          pointer: `/metrics${seg(name)}`,
          message: `uses "${f}", a field encrypted at rest: metrics cannot aggregate it`,
        })
  }
  return problems
}

function nestedClassifications(schema: Record<string, unknown>, at: string, out: ClassificationProblem[]): void {
  for (const key of ['properties', 'items', 'additionalProperties', 'patternProperties'] as const) {
    const sub = schema[key]
    const children: Array<[string, unknown]> =
      key === 'properties' || key === 'patternProperties'
        ? isObj(sub)
          ? Object.entries(sub).map(([k, v]) => [`${at}/${key}${seg(k)}`, v])
          : []
        : [[`${at}/${key}`, sub]]
    for (const [p, child] of children) {
      if (!isObj(child)) continue
      if (child.classification !== undefined)
        out.push({
          pointer: `${p}/classification`,
          message: 'only top-level fields of a collection are classified (classify the field that holds this)',
        })
      if (child.subject !== undefined)
        out.push({
          pointer: `${p}/subject`,
          message: 'only a top-level field of a collection identifies a data subject',
        })
      nestedClassifications(child, p, out)
    }
  }
}

/** What a query asks of an encrypted field that the kernel cannot answer. */
export interface EncryptedQueryRefusal {
  field: string
  operation: string
}

/** Operators an encrypted field answers (through its blind index). */
export const ENCRYPTED_FIELD_OPERATORS: readonly string[] = Object.freeze(['eq', 'ne', 'in'])

/**
 * The first thing `query` asks of an encrypted field (or of a kernel ciphertext key, `$e:…`) that
 * only exact matching could answer otherwise — a range, prefix or contains condition, or a sort —
 * or undefined when the query is answerable. The kernel answers such a query with
 * `GOV_ERR_ENCRYPTED_FIELD_QUERY`, and so does the SDK's test host.
 */
export function encryptedQueryRefusal(
  encrypted: ReadonlySet<string>,
  query: { where?: unknown; sort?: unknown },
): EncryptedQueryRefusal | undefined {
  const sealed = (f: string) => encrypted.has(f) || f.startsWith('$e:')
  for (const s of Array.isArray(query.sort) ? query.sort : []) {
    const f = isObj(s) ? s.field : undefined
    if (typeof f === 'string' && sealed(f)) return { field: f, operation: 'sorting' }
  }
  const walk = (where: unknown): EncryptedQueryRefusal | undefined => {
    if (!isObj(where)) return undefined
    for (const [key, cond] of Object.entries(where)) {
      if ((key === 'and' || key === 'or') && Array.isArray(cond)) {
        for (const c of cond) {
          const r = walk(c)
          if (r) return r
        }
      } else if (key.startsWith('$e:')) return { field: key, operation: 'filtering' }
      else if (encrypted.has(key) && isObj(cond))
        for (const op of Object.keys(cond))
          if (!ENCRYPTED_FIELD_OPERATORS.includes(op)) return { field: key, operation: `"${op}"` }
    }
    return undefined
  }
  return walk(query.where)
}
