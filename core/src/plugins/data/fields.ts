/**
 * How a field of a query maps to SQL: record fields are `data -> <name>` with the name as a
 * parameter; the metadata fields are columns.
 */
import { isMetaField, type MetaField } from './json-values.js'
import type { SqlParams } from './sql-params.js'

/** Column and SQL type of each metadata field. */
export const META_COLUMNS: Readonly<Record<MetaField, { column: string; type: 'uuid' | 'int' | 'timestamptz' }>> = {
  id: { column: 'id', type: 'uuid' },
  version: { column: 'version', type: 'int' },
  createdAt: { column: 'created_at', type: 'timestamptz' },
  updatedAt: { column: 'updated_at', type: 'timestamptz' },
}

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const CANONICAL_TIME = /^(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** True for a UUID in the form the kernel returns (lower-case, hyphenated). */
export function isCanonicalUuid(v: unknown): v is string {
  return typeof v === 'string' && CANONICAL_UUID.test(v)
}

/** True for a time in the form the kernel returns (`Date#toISOString`). */
export function isCanonicalTime(v: unknown): v is string {
  if (typeof v !== 'string' || !CANONICAL_TIME.test(v)) return false
  const t = Date.parse(v)
  return Number.isFinite(t) && new Date(t).toISOString() === v
}

/**
 * True when `v` is the JSON form the kernel returns for a metadata field, so it can be compared
 * with the column directly (same order and equality as comparing the returned JSON values).
 */
export function isCanonicalMeta(field: MetaField, v: unknown): boolean {
  const type = META_COLUMNS[field].type
  if (type === 'uuid') return isCanonicalUuid(v)
  if (type === 'int') return typeof v === 'number' && Number.isFinite(v)
  return isCanonicalTime(v)
}

/** A metadata value as a typed SQL parameter. */
export function metaParam(field: MetaField, v: unknown, p: SqlParams): string {
  const type = META_COLUMNS[field].type
  return `${p.add(type === 'int' ? String(v) : v)}::${type === 'int' ? 'numeric' : type}`
}

/**
 * The text a metadata column is returned as (`id` lower-case, times as `toISOString`), for the
 * rare comparisons with strings not in that form. Collation "C": code point order, as the SDK's
 * test host compares strings.
 */
export function metaText(field: MetaField): string {
  const { column, type } = META_COLUMNS[field]
  if (type === 'uuid') return `(${column}::text collate "C")`
  if (type === 'timestamptz')
    return `(to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') collate "C")`
  return `(${column}::text collate "C")`
}

/** JSON type name (`jsonb_typeof`) of a JSON value. */
export function jsonType(v: unknown): 'null' | 'string' | 'number' | 'boolean' | 'array' | 'object' {
  if (v === null || v === undefined) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v as 'string' | 'number' | 'boolean' | 'object'
}

/** JSON type a metadata field always has. */
export function metaJsonType(field: MetaField): 'string' | 'number' {
  return field === 'version' ? 'number' : 'string'
}

// The names trellis_plugin_index accepts (and the only ones a query writes into its text).
export const PLUGIN_NAME = /^@[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*$/
export const COLLECTION_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/
export const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/

/**
 * A name in a query's text: a plain literal when it matches `pattern` (no quote can be in it),
 * else a parameter. Literal names make the text of a query its shape and names alone, so it can
 * be a named prepared statement whose cached (generic) plan still matches the declared partial
 * expression indexes — `(data -> 'sku') … where plugin = '@a/b' and collection = 'c'` — which a
 * parameter for the name never matches.
 */
export function sqlName(name: string, pattern: RegExp, p: SqlParams): string {
  return pattern.test(name) ? `'${name}'` : p.text(name)
}

/** `data -> <field>`: SQL NULL when the field is absent (the form declared indexes are built on). */
export function dataField(field: string, p: SqlParams): string {
  return `(data -> ${sqlName(field, FIELD_NAME, p)})`
}

/** `data ->> <field>`: the field's text (strings), for the string operators. */
export function dataText(field: string, p: SqlParams): string {
  return `(data ->> ${sqlName(field, FIELD_NAME, p)})`
}

/** The sort expression of a field: a column, or the jsonb value with absent as JSON null. */
export function sortExpr(field: string, p: SqlParams): string {
  if (isMetaField(field)) return META_COLUMNS[field].column
  return `coalesce(data -> ${sqlName(field, FIELD_NAME, p)}, 'null'::jsonb)`
}
