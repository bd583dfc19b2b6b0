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
  const shape: RowShape = decl.unnest ? { unnestAs: decl.unnest.as } : {}
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
  // A time field of the record is computed once per record (in the inner select), not per row.
  const timeInRecord = !(shape.unnestAs && decl.time.startsWith(`${shape.unnestAs}.`))
  const time = () => (timeInRecord ? 'r.t' : timeSql(decl.time, shape, p))
  const select: string[] = []
  if (query.grain) select.push(`to_char(date_trunc(${p.text(query.grain)}, ${time()}), 'YYYY-MM-DD') as period`)
  groupBy.forEach((d, i) => select.push(`${dimSql(d)} as d${i}`))
  const measure = measureSql(decl.measure, shape, p, '/measure')
  select.push(
    decl.decimals === undefined
      ? `(${measure})::text as value`
      : `round((${measure})::numeric, ${p.add(decl.decimals)}::int)::text as value`,
  )
  const table = source.plugin === KERNEL_SOURCE ? 'kernel_telemetry_records' : 'plugin_records'
  let sql = `select ${select.join(', ')} from (select id, version, created_at, updated_at, data${timeInRecord ? `, ${timeSql(decl.time, {}, p)} as t` : ''} from ${table} r where plugin = ${p.add(source.plugin)} and collection = ${p.add(source.collection)}`
  const filter = compileFilter(decl.filter, p)
  if (filter !== 'true') sql += ` and ${filter}`
  sql += ') r'
  if (decl.unnest) {
    const f = () => `r.data -> ${p.text(decl.unnest!.field)}`
    sql += ` cross join lateral jsonb_array_elements(case when jsonb_typeof(${f()}) = 'array' then ${f()} else '[]'::jsonb end) u(value)`
  }
  for (const [name, alias] of joinOf) {
    const d = dimsDecl[name] as Exclude<MetricDimension, string>
    const target = resolve(d.collection)
    // One row per key (the first by id, as a unique key index leaves one anyway), joined by hash
    // rather than looked up once per row.
    sql += ` left join (select distinct on (k) k, data from (select data -> ${p.text(d.key)} as k, data, id from plugin_records where plugin = ${p.add(target.plugin)} and collection = ${p.add(target.collection)}) s where k is not null order by k, id) ${alias} on ${alias}.k = ${fieldSql(d.via, shape, p)}`
  }
  const where = [`${time()} is not null`]
  if (query.from) where.push(`${time()} >= ${p.add(query.from)}::date`)
  if (query.to) where.push(`${time()} < ${p.add(query.to)}::date`)
  if (scope.periods && query.grain)
    where.push(`date_trunc(${p.text(query.grain)}, ${time()})::date = any(${p.add(sqlArray(scope.periods))}::date[])`)
  for (const [name, v] of Object.entries(query.filter ?? {})) {
    const values = (Array.isArray(v) ? v : [v]).map(String)
    where.push(`${dimSql(name)} = any(${p.add(sqlArray(values))}::text[])`)
  }
  sql += ` where ${where.join(' and ')}`
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
