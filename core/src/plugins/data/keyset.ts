/**
 * Sorting and keyset pagination of `find`.
 *
 * The sort is the query's keys followed by `id asc` (the tie-breaker; keys after an `id` key
 * are dropped, since `id` is unique). Record fields sort as jsonb with an absent field as JSON
 * `null` (the lowest jsonb value, so absent and null come first ascending, last descending).
 *
 * A cursor is base64url JSON `{ h, k }`: `h` hashes the plugin, collection, filter and sort of
 * the query that issued it, `k` holds the last row's sort values (record fields as jsonb text,
 * so numbers keep every digit; metadata as returned). The next page is the rows after that
 * key: a row comparison when every key goes the same way, otherwise the expanded
 * `(a > x) or (a = x and b < y) or ...` form. A cursor is never trusted: it is decoded
 * strictly and its values are parameters.
 */
import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import { KRN } from '../../errors.js'
import { isCanonicalMeta, META_COLUMNS, metaParam, sortExpr } from './fields.js'
import { isMetaField, storableString } from './json-values.js'
import { invalid } from './record-validator.js'
import type { SqlParams } from './sql-params.js'

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

/** Most sort keys a query may give (the `id` tie-breaker comes on top). */
export const MAX_SORT_KEYS = 8

/** One normalised sort key. */
export interface SortKeyN {
  field: string
  desc: boolean
}

/** The query's sort keys, validated, with the `id` tie-breaker. */
export function normaliseSort(sort: unknown): SortKeyN[] {
  if (sort === undefined || sort === null) return [{ field: 'id', desc: false }]
  if (!Array.isArray(sort) || sort.length > MAX_SORT_KEYS)
    throw invalid('query', [{ pointer: '/sort', message: `must be an array of at most ${MAX_SORT_KEYS} keys` }])
  const keys: SortKeyN[] = []
  sort.forEach((s: unknown, i) => {
    const k = s as { field?: unknown; direction?: unknown }
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof k.field !== 'string' ||
      k.field === '' ||
      k.field.length > 128 ||
      !storableString(k.field)
    ) {
      throw invalid('query', [{ pointer: `/sort/${i}/field`, message: 'must be a field name' }])
    }
    if (k.direction !== undefined && k.direction !== 'asc' && k.direction !== 'desc')
      throw invalid('query', [{ pointer: `/sort/${i}/direction`, message: 'must be "asc" or "desc"' }])
    keys.push({ field: k.field, desc: k.direction === 'desc' })
  })
  const id = keys.findIndex((k) => k.field === 'id')
  return id >= 0 ? keys.slice(0, id + 1) : [...keys, { field: 'id', desc: false }]
}

/** `order by ...` for the keys. */
export function orderBy(keys: SortKeyN[], p: SqlParams): string {
  return `order by ${keys.map((k) => `${sortExpr(k.field, p)} ${k.desc ? 'desc' : 'asc'}`).join(', ')}`
}

/**
 * Select-list entries `s<i>` returning each record-field sort key as jsonb text (metadata keys
 * are read from their columns).
 */
export function sortColumns(keys: SortKeyN[], p: SqlParams): string {
  return keys.map((k, i) => (isMetaField(k.field) ? '' : `, ${sortExpr(k.field, p)}::text as s${i}`)).join('')
}

/** The hash binding a cursor to its query (without cursor and limit). */
export function queryHash(plugin: string, collection: string, where: unknown, keys: SortKeyN[]): string {
  const text =
    canonicalize({
      p: plugin,
      c: collection,
      w: where ?? null,
      s: keys.map((k) => [k.field, k.desc ? 'desc' : 'asc']),
    }) ?? ''
  return createHash('sha256').update(text).digest('base64url').slice(0, 22)
}

/** The last row's values of the sort keys, as the cursor carries them. */
export type KeyValues = unknown[]

/** Encodes a cursor. */
export function encodeCursor(hash: string, values: KeyValues): string {
  return Buffer.from(JSON.stringify({ h: hash, k: values })).toString('base64url')
}

const B64URL = /^[A-Za-z0-9_-]+$/

/** Decodes a cursor of the query with `hash` and `keys`; `KRN_ERR_INVALID_CURSOR` for anything else. */
export function decodeCursor(cursor: unknown, hash: string, keys: SortKeyN[]): KeyValues {
  const bad = () => KRN.INVALID_CURSOR()
  if (typeof cursor !== 'string' || cursor.length > 8192 || !B64URL.test(cursor)) throw bad()
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw bad()
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad()
  const { h, k } = parsed as { h?: unknown; k?: unknown }
  if (h !== hash || !Array.isArray(k) || k.length !== keys.length) throw bad()
  keys.forEach((key, i) => {
    const v = k[i]
    if (isMetaField(key.field)) {
      if (!isCanonicalMeta(key.field, v) || (key.field === 'version' && !Number.isInteger(v))) throw bad()
      return
    }
    if (typeof v !== 'string' || !storableString(v)) throw bad()
    try {
      JSON.parse(v)
    } catch {
      throw bad()
    }
  })
  return k
}

/** The cursor values of one returned row. */
export function rowKey(
  keys: SortKeyN[],
  row: { id: string; version: number; createdAt: string; updatedAt: string; sortText: Record<string, unknown> },
): KeyValues {
  return keys.map((k, i) => (isMetaField(k.field) ? row[k.field] : row.sortText[`s${i}`]))
}

/** The condition "comes after the cursor's row" in the sort order. */
export function afterCondition(keys: SortKeyN[], values: KeyValues, p: SqlParams): string {
  const value = (i: number) => {
    const f = keys[i]!.field
    return isMetaField(f) ? metaParam(f, values[i], p) : `${p.add(values[i])}::jsonb`
  }
  const expr = (i: number) =>
    isMetaField(keys[i]!.field) ? META_COLUMNS[keys[i]!.field as 'id'].column : sortExpr(keys[i]!.field, p)
  if (keys.every((k) => k.desc === keys[0]!.desc)) {
    const cols: string[] = []
    const vals: string[] = []
    keys.forEach((_, i) => {
      cols.push(expr(i))
      vals.push(value(i))
    })
    return `(${cols.join(', ')}) ${keys[0]!.desc ? '<' : '>'} (${vals.join(', ')})`
  }
  const ors: string[] = []
  for (let i = 0; i < keys.length; i++) {
    const ands: string[] = []
    for (let j = 0; j < i; j++) ands.push(`${expr(j)} = ${value(j)}`)
    ands.push(`${expr(i)} ${keys[i]!.desc ? '<' : '>'} ${value(i)}`)
    ors.push(ands.length === 1 ? ands[0]! : `(${ands.join(' and ')})`)
  }
  return `(${ors.join(' or ')})`
}
