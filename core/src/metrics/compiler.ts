/**
 * Compiles a metric declaration and a caller's query to one parameterised SQL statement over
 * `plugin_records`. It runs in the caller's tenant transaction, so row-level security confines
 * it to the tenant's records; the record filter is the collections service's own compiler.
 */
import { compileFilter } from '../plugins/data/filter-compiler.js'
import { SqlParams } from '../plugins/data/sql-params.js'
import { sqlArray } from '../db/database.js'
import { MET } from './errors.js'
import { KERNEL_SOURCE } from './kernel-metrics.js'
import { fieldSql, measureSql, type RowShape } from './sql-fragments.js'
import type { MetricDeclaration, MetricDimension, MetricQuery } from './types.js'

/** A collection by plugin and name. */
export interface CollectionName {
  plugin: string
  collection: string
}

/** The statement and how to read its rows. */
export interface CompiledMetric {
  sql: string
  params: unknown[]
  /** Dimension names, in the order of the `d0`, `d1`, … columns. */
  dims: string[]
  hasPeriod: boolean
}

/** Most rows one answer holds. */
export const MAX_ROWS = 10_000

/** How a rollup's refresh narrows the statement: only these periods (of the query's grain), every row. */
export interface CompileScope {
  periods?: string[]
  unlimited?: boolean
}

/** The SQL date of the row's time field (a `YYYY-MM-DD…` text or a metadata time). */
export function timeSql(field: string, shape: RowShape, p: SqlParams): string {
  if (field === 'createdAt') return `(r.created_at at time zone 'UTC')::date`
  if (field === 'updatedAt') return `(r.updated_at at time zone 'UTC')::date`
  const f = () => fieldSql(field, shape, p)
  return `(case when (${f()} #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' then left(${f()} #>> '{}', 10)::date end)`
}

/**
 * The first day (`YYYY-MM-DD`) of the period of `grain` holding the SQL date `date`: truncated as a
 * timestamp without time zone, so no zone conversion runs and the session's zone cannot matter.
 */
export function periodSql(grain: string, date: string): string {
  return `to_char(date_trunc(${grain}, (${date})::timestamp), 'YYYY-MM-DD')`
}

/**
 * The statement answering `query` over `source` (the declaration's collection, resolved).
 * `resolve` names the collection a dimension's `via` reads (a qualified `@scope/name:coll` is
 * resolved by the caller after checking consent). The query must already be validated
 * ({@link import('./query.js').parseMetricQuery}).
 */
export function compileMetric(
  decl: MetricDeclaration,
  source: CollectionName,
  query: MetricQuery,
  resolve: (collection: string) => CollectionName,
  scope: CompileScope = {},
): CompiledMetric {
  // A time field of the record, its period and the time conditions are computed once per record,
  // in an inner select kept apart from the outer one by `offset 0` (merged into it, they would be
  // computed again for every unnested element); the array is unnested there too, and the outer
  // select reads each element as `r.el`. A time field of the element is read per element.
  const timeInRecord = !(decl.unnest && decl.time.startsWith(`${decl.unnest.as}.`))
  const shape: RowShape = decl.unnest ? { unnestAs: decl.unnest.as, ...(timeInRecord ? { element: 'r.el' } : {}) } : {}
  const dimsDecl = decl.dimensions ?? {}
  const groupBy = query.groupBy ?? []
  const filterDims = Object.keys(query.filter ?? {})
  const used = [...new Set([...groupBy, ...filterDims])]
  const joinOf = new Map<string, string>()
  used.forEach((d) => {
    if (typeof dimsDecl[d] === 'object') joinOf.set(d, `j${joinOf.size}`)
  })
  const p = new SqlParams()
  const dimSql = (name: string) => {
    const d = dimsDecl[name] as MetricDimension
    if (typeof d === 'string') return `(${fieldSql(d, shape, p)} #>> '{}')`
    return `(${joinOf.get(name)}.data -> ${p.text(d.field)} #>> '{}')`
  }
  const lineTime = () => timeSql(decl.time, shape, p)
  const select: string[] = []
  const outerWhere: string[] = []
  if (query.grain) select.push(timeInRecord ? 'r.period' : `${periodSql(p.text(query.grain), lineTime())} as period`)
  groupBy.forEach((d, i) => select.push(`${dimSql(d)} as d${i}`))
  const measure = measureSql(decl.measure, shape, p, '/measure')
  select.push(
    decl.decimals === undefined
      ? `(${measure})::text as value`
      : `round((${measure})::numeric, ${p.add(decl.decimals)}::int)::text as value`,
  )
  /** The conditions on the row's time `t`. */
  const timeWhere = (t: string) => {
    const w = [`${t} is not null`]
    if (query.from) w.push(`${t} >= ${p.add(query.from)}::date`)
    if (query.to) w.push(`${t} < ${p.add(query.to)}::date`)
    if (scope.periods && query.grain)
      w.push(
        `date_trunc(${p.text(query.grain)}, (${t})::timestamp)::date = any(${p.add(sqlArray(scope.periods))}::date[])`,
      )
    return w
  }
  // Parameters are positional: each piece is built in the order its text appears.
  const table = source.plugin === KERNEL_SOURCE ? 'kernel_telemetry_records' : 'plugin_records'
  const elements = (data: string) => {
    const f = () => `${data} -> ${p.text(decl.unnest!.field)}`
    return `jsonb_array_elements(case when jsonb_typeof(${f()}) = 'array' then ${f()} else '[]'::jsonb end)`
  }
  // The elements as a set-returning function of a select list over the records, their time and
  // period already computed (a lateral join there would be memoized by the record's whole data).
  const els = timeInRecord && decl.unnest ? `select r1.*, ${elements('r1.data')} as el from (` : ''
  const period = timeInRecord && query.grain ? `, ${periodSql(p.text(query.grain), 'r0.t')} as period` : ''
  let records = `select id, version, created_at, updated_at, data${timeInRecord ? `, ${timeSql(decl.time, {}, p)} as t` : ''} from ${table} r where plugin = ${p.add(source.plugin)} and collection = ${p.add(source.collection)}`
  const filter = compileFilter(decl.filter, p)
  if (filter !== 'true') records += ` and ${filter}`
  if (timeInRecord)
    records = `${els}select r0.*${period} from (${records}) r0 where ${timeWhere('r0.t').join(' and ')} offset 0${els ? ') r1 offset 0' : ''}`
  let sql = `select ${select.join(', ')} from (${records}) r`
  if (decl.unnest && !timeInRecord) sql += ` cross join lateral ${elements('r.data')} u(value)`
  for (const [name, alias] of joinOf) {
    const d = dimsDecl[name] as Exclude<MetricDimension, string>
    const target = resolve(d.collection)
    // One row per key (the first by id, as a unique key index leaves one anyway), joined by hash
    // rather than looked up once per row.
    sql += ` left join (select distinct on (k) k, data from (select data -> ${p.text(d.key)} as k, data, id from plugin_records where plugin = ${p.add(target.plugin)} and collection = ${p.add(target.collection)}) s where k is not null order by k, id) ${alias} on ${alias}.k = ${fieldSql(d.via, shape, p)}`
  }
  if (!timeInRecord) outerWhere.push(...timeWhere(lineTime()))
  for (const [name, v] of Object.entries(query.filter ?? {})) {
    const values = (Array.isArray(v) ? v : [v]).map(String)
    outerWhere.push(`${dimSql(name)} = any(${p.add(sqlArray(values))}::text[])`)
  }
  if (outerWhere.length) sql += ` where ${outerWhere.join(' and ')}`
  const keys = select.length - 1
  if (keys) {
    const ordinals = Array.from({ length: keys }, (_, i) => i + 1).join(', ')
    sql += ` group by ${ordinals} order by ${ordinals}`
  }
  if (!scope.unlimited) sql += ` limit ${p.add(Math.min(query.limit ?? MAX_ROWS, MAX_ROWS) + 1)}`
  return { sql, params: p.values, dims: groupBy, hasPeriod: !!query.grain }
}

/** Checks the parts of a declaration a query relies on, naming the first fault. */
export function checkDeclaration(decl: MetricDeclaration): void {
  if (!decl || typeof decl !== 'object') throw MET.DECLARATION_INVALID({ at: '', reason: 'not an object' })
  if (typeof decl.collection !== 'string') throw MET.DECLARATION_INVALID({ at: '/collection', reason: 'missing' })
  if (typeof decl.time !== 'string') throw MET.DECLARATION_INVALID({ at: '/time', reason: 'missing' })
}
