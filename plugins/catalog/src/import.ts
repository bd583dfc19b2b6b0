// CSV imports of categories, suppliers or products: every row is checked before anything is
// written. Small files are written in the request (POST /import/:kind, all or nothing); large
// ones by a job (import-job.ts) in chunks, with progress and a per-row report.
import { CsvSyntaxError, parseCsv } from '@trellis/plugin-sdk/csv'
import { problem, rowsProblem, type RouteRequest, type RouteResponse, type RowProblem } from '@trellis/plugin-sdk'
import { CAT } from './errors.js'
import { BOOL, COLUMNS, type Kind, packOf } from './csv.js'
import type { Category, Ctx, Supplier } from './types.js'
import { findAllBy, productEvent } from './store.js'

/** One problem of a CSV import, by 1-based data row (the header is row 0). */
export type RowError = RowProblem

// One invocation may make at most 200 host calls (the kernel's sandbox limit): a product row
// costs an insert or update plus an event, and three lookups come first.
export const MAX_IMPORT_ROWS = 95

/** A checked row, ready to write: its 1-based data row and the record. */
export interface ImportRow {
  row: number
  record: Record<string, unknown>
}

/** What one row became: created, updated, unchanged, or failed (the kernel refused to write it, and why). */
export interface RowOutcome {
  row: number
  key: string
  outcome: 'created' | 'updated' | 'unchanged' | 'failed'
  code?: string
  message?: string
}

/** Codes with which the kernel refuses one record (its schema, a unique index): that row failed, not the import. */
const REFUSED_ROW = new Set(['KRN_ERR_VALIDATION_FAILED', 'KRN_ERR_CONFLICT'])

export const keyFieldOf = (kind: Kind) => (kind === 'products' ? 'sku' : 'code')

/**
 * Parses and checks a CSV of `kind`: the header, every row, references to categories and
 * suppliers, and (without `upsert`) keys that exist already. Answers the problem to return, or
 * the rows to write. At most `maxRows` data rows.
 */
export async function checkCsv(
  ctx: Ctx,
  kind: Kind,
  csv: string,
  upsert: boolean,
  maxRows: number,
): Promise<{ problem: RouteResponse } | { rows: ImportRow[] }> {
  const spec = COLUMNS[kind]
  let rows: string[][]
  try {
    // Parsing stops one row past the limit: enough to refuse a file that is too long, cheaply.
    rows = parseCsv(csv, { maxRows: maxRows + 2 })
  } catch (err) {
    if (!(err instanceof CsvSyntaxError)) throw err
    const at = Math.max(0, (err.line ?? 1) - 1)
    return { problem: rowsProblem(CAT.CSV_ROWS, [{ row: at, code: 'malformed', message: err.message }], 0) }
  }
  if (!rows.length) return { problem: problem(CAT.CSV_EMPTY, 'the CSV has no header row') }
  const header = rows[0]!.map((h) => h.trim().toLowerCase())
  const missingCols = spec.required.filter((c) => !header.includes(c))
  const unknownCols = header.filter(
    (h) => !(spec.required as readonly string[]).includes(h) && !(spec.optional as readonly string[]).includes(h),
  )
  if (missingCols.length || unknownCols.length) {
    return {
      problem: problem(
        CAT.CSV_HEADER,
        `the header must have ${spec.required.join(', ')} (and may have ${spec.optional.join(', ')})`,
        { missingColumns: missingCols, unknownColumns: unknownCols },
      ),
    }
  }
  const data = rows.slice(1)
  if (data.length > maxRows)
    return {
      problem: problem(
        CAT.CSV_TOO_MANY_ROWS,
        maxRows === MAX_IMPORT_ROWS
          ? `at most ${maxRows} rows per request (send a larger file to POST /imports/${kind}, which imports it as a job); got ${data.length}`
          : `at most ${maxRows} rows per import (split the file); got ${data.length}`,
        { maxRows },
      ),
    }
  const errors: RowError[] = []
  const records: Array<Record<string, unknown>> = []
  const seen = new Map<string, number>()
  data.forEach((cells, idx) => {
    const row = idx + 1
    if (cells.length !== header.length) {
      errors.push({ row, code: 'column_count', message: `has ${cells.length} fields, the header has ${header.length}` })
      return
    }
    const get = (c: string) => {
      const i = header.indexOf(c)
      return i < 0 ? undefined : cells[i]!.trim()
    }
    let ok = true
    for (const c of spec.required) {
      if (!get(c)) {
        errors.push({ row, field: c, code: 'required', message: `${c} is empty` })
        ok = false
      }
    }
    const key = get(spec.required[0])!
    if (key) {
      if (key.length > 64) {
        errors.push({
          row,
          field: spec.required[0],
          code: 'too_long',
          message: `${spec.required[0]} is longer than 64 characters`,
        })
        ok = false
      }
      const dup = seen.get(key)
      if (dup) {
        errors.push({ row, field: spec.required[0], code: 'duplicate', message: `${key} is also on row ${dup}` })
        ok = false
      } else seen.set(key, row)
    }
    if (!ok) return
    if (kind === 'categories')
      records.push({
        code: key,
        name: get('name')!,
        ...(get('description') ? { description: get('description') } : {}),
      })
    else if (kind === 'suppliers') {
      const rec: Record<string, unknown> = { code: key, name: get('name')! }
      for (const [col, f] of [
        ['contact_name', 'contactName'],
        ['country', 'country'],
        ['city', 'city'],
        ['phone', 'phone'],
      ] as const)
        if (get(col)) rec[f] = get(col)
      records.push(rec)
    } else {
      const qpu = get('quantity_per_unit') || undefined
      const derived = packOf(qpu)
      const packRaw = get('pack_size')
      let packSize = derived.packSize
      if (packRaw) {
        if (!/^\d{1,6}$/.test(packRaw) || Number(packRaw) < 1) {
          errors.push({
            row,
            field: 'pack_size',
            code: 'invalid',
            message: `pack_size "${packRaw}" is not a whole number of at least 1`,
          })
          return
        }
        packSize = Number(packRaw)
      }
      const disc = (get('discontinued') ?? '').toLowerCase()
      if (!(disc in BOOL)) {
        errors.push({
          row,
          field: 'discontinued',
          code: 'invalid',
          message: `discontinued "${disc}" is not 0/1/true/false`,
        })
        return
      }
      records.push({
        sku: key,
        name: get('name')!,
        category: get('category')!,
        supplier: get('supplier')!,
        ...(qpu ? { quantityPerUnit: qpu } : {}),
        unit: get('unit') || derived.unit,
        packSize,
        discontinued: BOOL[disc]!,
      })
    }
  })

  const keyField = keyFieldOf(kind)
  const existing = await existingByKey(
    ctx,
    kind,
    records.map((r) => r[keyField] as string),
  )
  if (kind === 'products') {
    // A product's category and supplier must exist, so the catalog never points nowhere.
    const cats = new Set(
      (
        await findAllBy<Category>(ctx, 'categories', 'code', [...new Set(records.map((r) => r.category as string))])
      ).map((c) => c.code),
    )
    const sups = new Set(
      (await findAllBy<Supplier>(ctx, 'suppliers', 'code', [...new Set(records.map((r) => r.supplier as string))])).map(
        (s) => s.code,
      ),
    )
    for (const r of records) {
      const row = seen.get(r.sku as string)!
      for (const [field, known] of [
        ['category', cats],
        ['supplier', sups],
      ] as const)
        if (!known.has(r[field] as string))
          errors.push({ row, field, code: `unknown_${field}`, message: `${field} ${r[field]} does not exist` })
    }
  }
  if (!upsert) {
    for (const r of records)
      if (existing.has(r[keyField] as string))
        errors.push({
          row: seen.get(r[keyField] as string)!,
          field: keyField,
          code: 'exists',
          message: `${r[keyField]} exists already (send upsert: true to update)`,
        })
  }
  if (errors.length) return { problem: rowsProblem(CAT.CSV_ROWS, errors, data.length) }
  return { rows: records.map((record) => ({ row: seen.get(record[keyField] as string)!, record })) }
}

/** The stored records of `kind` with these keys (SKU or code), by key. */
async function existingByKey(ctx: Ctx, kind: Kind, keys: string[]) {
  const keyField = keyFieldOf(kind)
  const found = await findAllBy<Record<string, unknown>>(ctx, kind, keyField, keys)
  return new Map(found.map((r) => [r[keyField] as string, r]))
}

/**
 * Writes checked rows: creates the new, updates the changed (with their events), leaves the rest.
 * With `reportRefused`, a row the kernel refuses (`KRN_ERR_VALIDATION_FAILED`, `KRN_ERR_CONFLICT`:
 * say a value longer than the collection allows, or a key another request wrote since the check)
 * is reported as failed with the code and message, and the other rows are still written — the
 * store leaves the transaction usable after refusing a record. Without it, the refusal is thrown.
 */
export async function writeRows(
  ctx: Ctx,
  kind: Kind,
  rows: ImportRow[],
  opts: { reportRefused?: boolean } = {},
): Promise<RowOutcome[]> {
  const keyField = keyFieldOf(kind)
  const existing = await existingByKey(
    ctx,
    kind,
    rows.map((r) => r.record[keyField] as string),
  )
  const out: RowOutcome[] = []
  for (const { row, record: r } of rows) {
    const key = r[keyField] as string
    const old = existing.get(key) as (Record<string, unknown> & { id: string; version: number }) | undefined
    const refused = (err: unknown) => {
      const code = (err as { code?: unknown })?.code
      if (!opts.reportRefused || typeof code !== 'string' || !REFUSED_ROW.has(code)) throw err
      out.push({ row, key, outcome: 'failed', code, message: String((err as Error).message).slice(0, 2000) })
      return undefined
    }
    if (!old) {
      const rec = await (ctx.data[kind] as any).insert(r).catch(refused)
      if (!rec) continue
      out.push({ row, key, outcome: 'created' })
      if (kind === 'products') await ctx.events.emit('catalog.product.created', productEvent(rec), { subject: rec.sku })
      continue
    }
    const changes = Object.keys(r).filter((f) => JSON.stringify(r[f]) !== JSON.stringify(old[f]))
    if (!changes.length) {
      out.push({ row, key, outcome: 'unchanged' })
      continue
    }
    const rec = await (ctx.data[kind] as any).update(old.id, r, old.version).catch(refused)
    if (!rec) continue
    out.push({ row, key, outcome: 'updated' })
    if (kind === 'products')
      await ctx.events.emit(
        'catalog.product.updated',
        { sku: rec.sku, productId: rec.id, changes, discontinued: rec.discontinued },
        { subject: rec.sku },
      )
  }
  return out
}

/** How many rows became what. */
export function tally(outcomes: RowOutcome[]): { created: number; updated: number; unchanged: number; failed: number } {
  const n = { created: 0, updated: 0, unchanged: 0, failed: 0 }
  for (const o of outcomes) n[o.outcome]++
  return n
}

/** POST /import/:kind — checks every row, then writes all of them in this one transaction, or nothing. */
export async function importCsv(
  req: RouteRequest<{ csv: string; upsert?: boolean }, { kind: Kind }>,
  ctx: Ctx,
): Promise<RouteResponse> {
  const kind = req.params.kind
  const checked = await checkCsv(ctx, kind, req.body.csv, Boolean(req.body.upsert), MAX_IMPORT_ROWS)
  if ('problem' in checked) return checked.problem
  const outcomes = await writeRows(ctx, kind, checked.rows)
  const { failed: _none, ...counts } = tally(outcomes)
  return { status: 200, body: { kind, rows: checked.rows.length, ...counts } }
}
