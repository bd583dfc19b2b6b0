/** Reading a caller's metric query string: every fault names the parameter and what it allows. */
import { MET } from './errors.js'
import { GRAINS, type Grain, type MetricDeclaration, type MetricQuery } from './types.js'
import { MAX_ROWS } from './compiler.js'

/** Most dimensions one query groups by. */
export const MAX_GROUP_BY = 4

const DATE = /^\d{4}-\d{2}-\d{2}$/
const KNOWN = ['from', 'to', 'grain', 'groupBy', 'filter', 'limit', 'live']

function date(field: string, v: string): string {
  const ok = DATE.test(v) && new Date(`${v}T00:00:00Z`).toISOString().slice(0, 10) === v
  if (!ok) throw MET.QUERY_INVALID({ field, reason: `"${v}" is not a date (YYYY-MM-DD)` })
  return v
}

function one(raw: Record<string, unknown>, field: string): string | undefined {
  const v = raw[field]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw MET.QUERY_INVALID({ field, reason: 'may be given once' })
  return v
}

/** The validated query; `raw` is the parsed query string. */
export function parseMetricQuery(raw: Record<string, unknown>, decl: MetricDeclaration): MetricQuery {
  const unknown = Object.keys(raw).find((k) => !KNOWN.includes(k))
  if (unknown) throw MET.QUERY_INVALID({ field: unknown, reason: 'is not a parameter', allowed: KNOWN })
  const dims = Object.keys(decl.dimensions ?? {}).sort()
  const q: MetricQuery = {}
  const from = one(raw, 'from')
  const to = one(raw, 'to')
  if (from !== undefined) q.from = date('from', from)
  if (to !== undefined) q.to = date('to', to)
  if (q.from && q.to && q.from >= q.to) throw MET.QUERY_INVALID({ field: 'to', reason: 'must be after from' })
  const grain = one(raw, 'grain')
  if (grain !== undefined) {
    if (!(GRAINS as readonly string[]).includes(grain))
      throw MET.QUERY_INVALID({ field: 'grain', reason: `"${grain}" is not a grain`, allowed: [...GRAINS] })
    q.grain = grain as Grain
  }
  const groupBy = one(raw, 'groupBy')
  if (groupBy !== undefined) {
    const names = groupBy.split(',').filter(Boolean)
    for (const n of names)
      if (!dims.includes(n))
        throw MET.QUERY_INVALID({ field: 'groupBy', reason: `"${n}" is not a dimension of this metric`, allowed: dims })
    if (new Set(names).size !== names.length)
      throw MET.QUERY_INVALID({ field: 'groupBy', reason: 'names a dimension twice' })
    if (names.length > MAX_GROUP_BY)
      throw MET.QUERY_INVALID({ field: 'groupBy', reason: `at most ${MAX_GROUP_BY} dimensions` })
    q.groupBy = names
  }
  const filter = one(raw, 'filter')
  if (filter !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(filter)
    } catch {
      throw MET.QUERY_INVALID({ field: 'filter', reason: 'must be a JSON object of dimension → value or values' })
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw MET.QUERY_INVALID({ field: 'filter', reason: 'must be a JSON object of dimension → value or values' })
    for (const [k, v] of Object.entries(parsed)) {
      if (!dims.includes(k))
        throw MET.QUERY_INVALID({
          field: `filter.${k}`,
          reason: `"${k}" is not a dimension of this metric`,
          allowed: dims,
        })
      const values = Array.isArray(v) ? v : [v]
      if (
        !values.length ||
        values.length > 1000 ||
        values.some((x) => !['string', 'number', 'boolean'].includes(typeof x))
      )
        throw MET.QUERY_INVALID({
          field: `filter.${k}`,
          reason: 'must be a string, number or boolean, or 1 to 1000 of them',
        })
    }
    q.filter = parsed as MetricQuery['filter']
  }
  const limit = one(raw, 'limit')
  if (limit !== undefined) {
    const n = Number(limit)
    if (!/^\d+$/.test(limit) || n < 1 || n > MAX_ROWS)
      throw MET.QUERY_INVALID({ field: 'limit', reason: `must be an integer from 1 to ${MAX_ROWS}` })
    q.limit = n
  }
  const live = one(raw, 'live')
  if (live !== undefined) {
    if (live !== 'true' && live !== 'false')
      throw MET.QUERY_INVALID({ field: 'live', reason: 'must be true or false', allowed: ['true', 'false'] })
    if (live === 'true') q.live = true
  }
  return q
}
