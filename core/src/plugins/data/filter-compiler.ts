/**
 * Compiles the SDK's query filter language (`Filter`, `FieldCondition`) to a parameterised SQL
 * condition over `plugin_records`. Operands are always parameters; a field name is one too unless
 * it is a plain identifier (letters, digits, `_`), which is written as a literal (fields.ts).
 *
 * Semantics follow the SDK's in-memory test host (`plugin-sdk/src/testing.ts`):
 * - a bare value means `eq`; several operators on one field must all hold; `and` / `or` nest;
 * - an absent field equals JSON `null` for `eq`, `ne` and `in`;
 * - `lt`/`lte`/`gt`/`gte` hold only for values of the operand's JSON type (jsonb orders all
 *   types against each other, so the type is checked), never for `null` operands;
 * - `prefix` holds for strings; `contains` is a substring test on strings and an element
 *   (deep-equality) test on arrays;
 * - `id`, `version`, `createdAt`, `updatedAt` compare the columns as the JSON values the kernel
 *   returns for them (lower-case UUID, integer, `toISOString` text).
 *
 * An `eq` on a record field compiles to `data -> 'f' = ?::jsonb` (no coalesce), the expression
 * declared indexes are built on.
 */
import { sqlArray } from '../../db/database.js'
import {
  dataField,
  dataText,
  isCanonicalMeta,
  jsonType,
  META_COLUMNS,
  metaJsonType,
  metaParam,
  metaText,
} from './fields.js'
import { isMetaField, jsonProblems, type MetaField } from './json-values.js'
import { invalid } from './record-validator.js'
import type { SqlParams } from './sql-params.js'

/** Most field conditions (operators) one filter may hold. */
export const MAX_FILTER_CONDITIONS = 512
/** Deepest nesting of `and` / `or`. */
export const MAX_FILTER_DEPTH = 32

const OPERATORS = new Set(['eq', 'ne', 'in', 'lt', 'lte', 'gt', 'gte', 'prefix', 'contains'])
const RANGE: Record<string, string> = { lt: '<', lte: '<=', gt: '>', gte: '>=' }

interface State {
  p: SqlParams
  conditions: number
}

/**
 * The SQL condition of `where` (`true` when empty). Throws `KRN_ERR_VALIDATION_FAILED` for a
 * malformed filter, an operand PostgreSQL cannot hold, or a filter over the size limits.
 */
export function compileFilter(where: unknown, p: SqlParams): string {
  if (where === undefined || where === null) return 'true'
  const problems = jsonProblems(where, '/where')
  if (problems.length) throw invalid('query', problems)
  return compileNode(where, '/where', 0, { p, conditions: 0 })
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function compileNode(filter: unknown, at: string, depth: number, s: State): string {
  if (!isPlainObject(filter)) throw invalid('query', [{ pointer: at, message: 'a filter is an object' }])
  if (depth > MAX_FILTER_DEPTH)
    throw invalid('query', [{ pointer: at, message: `and/or may nest at most ${MAX_FILTER_DEPTH} deep` }])
  const parts: string[] = []
  for (const [key, cond] of Object.entries(filter)) {
    const here = `${at}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(cond)) throw invalid('query', [{ pointer: here, message: 'must be an array of filters' }])
      const subs = cond.map((f, i) => compileNode(f, `${here}/${i}`, depth + 1, s))
      if (!subs.length) parts.push(key === 'and' ? 'true' : 'false')
      else parts.push(`(${subs.join(key === 'and' ? ' and ' : ' or ')})`)
      continue
    }
    const ops = isPlainObject(cond) ? cond : { eq: cond }
    const entries = Object.entries(ops)
    if (!entries.length) throw invalid('query', [{ pointer: here, message: 'empty condition' }])
    for (const [op, operand] of entries) {
      if (!OPERATORS.has(op)) throw invalid('query', [{ pointer: `${here}/${op}`, message: 'unknown operator' }])
      if (++s.conditions > MAX_FILTER_CONDITIONS)
        throw invalid('query', [{ pointer: at, message: `a filter holds at most ${MAX_FILTER_CONDITIONS} conditions` }])
      if (op === 'in' && !Array.isArray(operand))
        throw invalid('query', [{ pointer: `${here}/in`, message: 'must be an array' }])
      if (op === 'prefix' && typeof operand !== 'string')
        throw invalid('query', [{ pointer: `${here}/prefix`, message: 'must be a string' }])
      parts.push(isMetaField(key) ? metaCondition(key, op, operand, s.p) : dataCondition(key, op, operand, s.p))
    }
  }
  if (!parts.length) return 'true'
  return parts.length === 1 ? parts[0]! : `(${parts.join(' and ')})`
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

/** Absent field or JSON null. */
function isNullSql(field: string, p: SqlParams): string {
  return `coalesce(${dataField(field, p)}, 'null'::jsonb) = 'null'::jsonb`
}

function dataCondition(field: string, op: string, x: unknown, p: SqlParams): string {
  switch (op) {
    case 'eq':
      return x === null ? isNullSql(field, p) : `${dataField(field, p)} = ${p.json(x)}`
    case 'ne':
      return `coalesce(${dataField(field, p)}, 'null'::jsonb) <> ${p.json(x)}`
    case 'in': {
      const values = x as unknown[]
      const nonNull = values.filter((v) => v !== null)
      const parts: string[] = []
      if (nonNull.length)
        parts.push(`${dataField(field, p)} = any(${p.add(sqlArray(nonNull.map((v) => JSON.stringify(v))))}::jsonb[])`)
      if (nonNull.length < values.length) parts.push(isNullSql(field, p))
      return parts.length === 0 ? 'false' : parts.length === 1 ? parts[0]! : `(${parts.join(' or ')})`
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      if (x === null) return 'false'
      return `(jsonb_typeof(${dataField(field, p)}) = ${p.text(jsonType(x))} and ${dataField(field, p)} ${RANGE[op]} ${p.json(x)})`
    case 'prefix':
      return `(jsonb_typeof(${dataField(field, p)}) = 'string' and starts_with(${dataText(field, p)}, ${p.text(x as string)}))`
    case 'contains': {
      const parts: string[] = []
      if (isScalar(x)) {
        parts.push(
          `(jsonb_typeof(${dataField(field, p)}) = 'string' and strpos(${dataText(field, p)}, ${p.text(x === null ? 'null' : String(x))}) > 0)`,
        )
        parts.push(
          `(jsonb_typeof(${dataField(field, p)}) = 'array' and ${dataField(field, p)} @> jsonb_build_array(${p.json(x)}))`,
        )
      } else {
        // Each use of the field is its own placeholder (and parameter).
        const f = () => dataField(field, p)
        parts.push(
          `(jsonb_typeof(${f()}) = 'array' and exists (select 1 from jsonb_array_elements(case when jsonb_typeof(${f()}) = 'array' then ${f()} else '[]'::jsonb end) e where e = ${p.json(x)}))`,
        )
      }
      return parts.length === 1 ? parts[0]! : `(${parts.join(' or ')})`
    }
  }
  throw new Error(`unreachable operator ${op}`)
}

function metaCondition(field: MetaField, op: string, x: unknown, p: SqlParams): string {
  const { column, type } = META_COLUMNS[field]
  switch (op) {
    case 'eq':
      return isCanonicalMeta(field, x) ? `${column} = ${metaParam(field, x, p)}` : 'false'
    case 'ne':
      return isCanonicalMeta(field, x) ? `${column} <> ${metaParam(field, x, p)}` : 'true'
    case 'in': {
      const values = (x as unknown[]).filter((v) => isCanonicalMeta(field, v)).map(String)
      if (!values.length) return 'false'
      return `${column} = any(${p.add(sqlArray(values))}::${type === 'int' ? 'numeric' : type}[])`
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      if (jsonType(x) !== metaJsonType(field)) return 'false'
      if (isCanonicalMeta(field, x)) return `${column} ${RANGE[op]} ${metaParam(field, x, p)}`
      return `${metaText(field)} ${RANGE[op]} ${p.text(x as string)}`
    case 'prefix':
      return metaJsonType(field) === 'string' ? `starts_with(${metaText(field)}, ${p.text(x as string)})` : 'false'
    case 'contains':
      return metaJsonType(field) === 'string' && isScalar(x)
        ? `strpos(${metaText(field)}, ${p.text(x === null ? 'null' : String(x))}) > 0`
        : 'false'
  }
  throw new Error(`unreachable operator ${op}`)
}
