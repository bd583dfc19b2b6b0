/**
 * SQL of the parts of a metric declaration: field references, numeric expressions, conditions,
 * measures. Field names and constants are always parameters (`SqlParams`), never SQL text.
 */
import type { SqlParams } from '../plugins/data/sql-params.js'
import { MET } from './errors.js'
import type { MetricCondition, MetricExpr, MetricMeasure } from './types.js'

/** How the row's fields map to SQL: the base record is `r`, the unnested element `u`. */
export interface RowShape {
  /** Prefix (`line`) of the unnested element's fields, when the metric unnests an array. */
  unnestAs?: string
  /** SQL of the unnested element (`u.value` by default). */
  element?: string
}

const META: Record<string, string> = {
  id: 'to_jsonb(r.id)',
  version: 'to_jsonb(r.version)',
  createdAt: `to_jsonb(to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`,
  updatedAt: `to_jsonb(to_char(r.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`,
}

/** The jsonb value of a field of the row (SQL NULL when absent). */
export function fieldSql(ref: string, shape: RowShape, p: SqlParams): string {
  if (shape.unnestAs && ref.startsWith(`${shape.unnestAs}.`))
    return `(${shape.element ?? 'u.value'} -> ${p.text(ref.slice(shape.unnestAs.length + 1))})`
  if (ref in META) return META[ref]!
  return `(r.data -> ${p.text(ref)})`
}

/** The text of a field of the row (`->>`: a string unquoted, a number as digits; SQL NULL when absent or null). */
export function fieldTextSql(ref: string, shape: RowShape, p: SqlParams): string {
  if (shape.unnestAs && ref.startsWith(`${shape.unnestAs}.`))
    return `(${shape.element ?? 'u.value'} ->> ${p.text(ref.slice(shape.unnestAs.length + 1))})`
  if (ref in META) return `(${META[ref]} #>> '{}')`
  return `(r.data ->> ${p.text(ref)})`
}

/**
 * A decimal as a JSON string holds it, or a JSON number as jsonb prints it. Unbounded repetitions:
 * PostgreSQL's regular expressions run bounded ones (`{1,30}`) several times slower, so the length
 * is bounded apart (61 characters: 30 digits, a point, 30 digits), which keeps a string of
 * thousands of digits from overflowing `numeric`.
 */
const DECIMAL = `'^-?[0-9]+(\\.[0-9]+)?$'`

/**
 * A field as numeric: JSON numbers and decimal strings; anything else is NULL. The field's text
 * is tested first, which is all most values need: a decimal string and an ordinary JSON number
 * both print as a decimal. Only what fails (a JSON number of more than 61 characters, or anything
 * that is no number) has its JSON type looked at.
 */
export function numericOf(jsonb: () => string, text: () => string): string {
  return `(case when ${text()} ~ ${DECIMAL} and octet_length(${text()}) <= 61 then ${text()}::numeric when jsonb_typeof(${jsonb()}) = 'number' then (${jsonb()})::numeric end)`
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const ARITH: Record<string, string> = { mul: '*', add: '+', sub: '-', div: '/' }

/** A numeric expression. `at` names where it sits in the declaration, for errors. */
export function exprSql(e: MetricExpr, shape: RowShape, p: SqlParams, at: string): string {
  if (typeof e === 'number') {
    if (!Number.isFinite(e)) throw MET.DECLARATION_INVALID({ at, reason: 'a number must be finite' })
    return `${p.add(String(e))}::numeric`
  }
  if (typeof e === 'string')
    return numericOf(
      () => fieldSql(e, shape, p),
      () => fieldTextSql(e, shape, p),
    )
  if (isObj(e)) {
    const [op, args] = Object.entries(e)[0] ?? []
    if (op === 'coalesce' && Array.isArray(args) && args.length >= 1)
      return `coalesce(${args.map((a, i) => exprSql(a as MetricExpr, shape, p, `${at}/coalesce/${i}`)).join(', ')})`
    if (op && op in ARITH && Array.isArray(args) && args.length >= 1) {
      if ((op === 'sub' || op === 'div') && args.length !== 2)
        throw MET.DECLARATION_INVALID({ at: `${at}/${op}`, reason: `${op} takes two operands` })
      const parts = args.map((a, i) => exprSql(a as MetricExpr, shape, p, `${at}/${op}/${i}`))
      if (op === 'div') return `(${parts[0]} / nullif(${parts[1]}, 0))`
      return `(${parts.join(` ${ARITH[op]} `)})`
    }
  }
  throw MET.DECLARATION_INVALID({
    at,
    reason: 'an expression is a field name, a number, or one of mul, add, sub, div, coalesce',
  })
}

const COMPARE: Record<string, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=', eq: '=', ne: '<>' }

/**
 * A condition. Two field names compare as JSON values (dates as text, numbers as numbers);
 * as soon as one side is a number or arithmetic, both sides compare as numbers.
 */
export function conditionSql(c: MetricCondition, shape: RowShape, p: SqlParams, at: string): string {
  const [op, arg] = (isObj(c) ? Object.entries(c)[0] : undefined) ?? []
  if (op && op in COMPARE && Array.isArray(arg) && arg.length === 2) {
    const [a, b] = arg as [MetricExpr, MetricExpr]
    if (typeof a === 'string' && typeof b === 'string')
      return `(${fieldSql(a, shape, p)} ${COMPARE[op]} ${fieldSql(b, shape, p)})`
    return `(${exprSql(a, shape, p, `${at}/${op}/0`)} ${COMPARE[op]} ${exprSql(b, shape, p, `${at}/${op}/1`)})`
  }
  if ((op === 'present' || op === 'absent') && typeof arg === 'string')
    return `(coalesce(${fieldSql(arg, shape, p)}, 'null'::jsonb) ${op === 'present' ? '<>' : '='} 'null'::jsonb)`
  if ((op === 'and' || op === 'or') && Array.isArray(arg) && arg.length)
    return `(${arg.map((x, i) => conditionSql(x as MetricCondition, shape, p, `${at}/${op}/${i}`)).join(` ${op} `)})`
  if (op === 'not' && isObj(arg))
    return `(not coalesce(${conditionSql(arg as MetricCondition, shape, p, `${at}/not`)}, false))`
  throw MET.DECLARATION_INVALID({
    at,
    reason: 'a condition is one of gt, gte, lt, lte, eq, ne (two operands), present, absent, and, or, not',
  })
}

/** True when the measure's answer is a count (an integer). */
export function isCount(m: MetricMeasure): boolean {
  return 'count' in m || 'countDistinct' in m
}

/** The aggregate of a measure. */
export function measureSql(m: MetricMeasure, shape: RowShape, p: SqlParams, at: string): string {
  if (!isObj(m)) throw MET.DECLARATION_INVALID({ at, reason: 'a measure is an object' })
  if ('ratio' in m) {
    const r = m.ratio
    if (!isObj(r) || !r.numerator || !r.denominator)
      throw MET.DECLARATION_INVALID({ at: `${at}/ratio`, reason: 'a ratio has a numerator and a denominator' })
    const n = measureSql(r.numerator, shape, p, `${at}/ratio/numerator`)
    const d = measureSql(r.denominator, shape, p, `${at}/ratio/denominator`)
    return `((${n})::numeric / nullif((${d})::numeric, 0))`
  }
  let agg: string
  if ('count' in m) agg = 'count(*)'
  else if ('countDistinct' in m) {
    if (typeof m.countDistinct !== 'string')
      throw MET.DECLARATION_INVALID({ at: `${at}/countDistinct`, reason: 'countDistinct names a field' })
    agg = `count(distinct ${fieldSql(m.countDistinct, shape, p)})`
  } else {
    const kind = (['sum', 'avg', 'min', 'max'] as const).find((k) => k in m)
    if (!kind)
      throw MET.DECLARATION_INVALID({
        at,
        reason: 'a measure is one of count, sum, avg, min, max, countDistinct, ratio',
      })
    agg = `${kind}(${exprSql((m as unknown as Record<string, MetricExpr>)[kind]!, shape, p, `${at}/${kind}`)})`
  }
  if (m.when) agg = `${agg} filter (where ${conditionSql(m.when, shape, p, `${at}/when`)})`
  return isCount(m) ? `(${agg})::bigint` : agg
}
