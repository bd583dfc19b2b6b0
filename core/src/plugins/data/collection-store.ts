/**
 * The collections data service: records of plugin-declared collections in `plugin_records`
 * (one jsonb row per record, tenant-scoped by row-level security), with the semantics of the
 * SDK's in-memory test host.
 *
 * Every operation runs in the caller's transaction and is one round trip in the common case.
 * Nothing here raises an SQL error for bad plugin input (it is refused first, or answered by
 * an `on conflict do nothing`/savepoint), so a plugin that catches an error can go on using the
 * same transaction.
 */
import { v7 as uuidv7 } from 'uuid'
import { sqlArray, type Tx } from '../../db/database.js'
import { KRN } from '../../errors.js'
import { compileFilter } from './filter-compiler.js'
import { COLLECTION_NAME, isCanonicalUuid, PLUGIN_NAME, sqlName } from './fields.js'
import {
  afterCondition,
  decodeCursor,
  encodeCursor,
  normaliseSort,
  orderBy,
  queryHash,
  rowKey,
  sortColumns,
} from './keyset.js'
import { indexedValueProblems } from './index-limits.js'
import { withoutMeta } from './json-values.js'
import { invalid, RecordValidator } from './record-validator.js'
import { SqlParams } from './sql-params.js'
import { QueryStatements } from './query-statements.js'
import { ensureIndexes } from './indexes.js'
import { dropPluginData } from './plugin-data.js'
import type { CollectionIndex, CollectionRef, FieldProtector, FindPage, FindQuery, StoredRecord } from './types.js'

/** Page size of `find` when the query gives none. */
export const DEFAULT_LIMIT = 50
/** Largest page size of `find`. */
export const MAX_LIMIT = 1000

const MAX_VERSION = 2 ** 31 - 1

interface Row {
  id: string
  version: number
  created_at: Date | string
  updated_at: Date | string
  data: Record<string, unknown>
  [sortKey: string]: unknown
}

interface UpdateRow extends Row {
  new_version: number | null
  updated_at_text: string
  old_patched: string | null
}

const iso = (t: Date | string) => (t instanceof Date ? t : new Date(t)).toISOString()

function stored(
  data: Record<string, unknown>,
  id: string,
  version: number,
  createdAt: string,
  updatedAt: string,
): StoredRecord {
  return { ...data, id, version, createdAt, updatedAt }
}

function fromRow(row: Row): StoredRecord {
  return stored(row.data, row.id, row.version, iso(row.created_at), iso(row.updated_at))
}

async function rollbackSavepoint(tx: Tx): Promise<void> {
  await tx.sql('rollback to savepoint trellis_plugin_update')
  await tx.sql('release savepoint trellis_plugin_update')
}

const isUniqueViolation = (err: unknown) => (err as { code?: unknown })?.code === '23505'

/** Fields every update changes: a unique index over one of them may conflict whatever the patch. */
const CHANGED_BY_EVERY_UPDATE: ReadonlySet<string> = new Set(['version', 'updatedAt'])

/**
 * Whether an update of `patched` keys can violate a unique index of the collection: only when
 * an index covers a patched field or one every update changes. A row whose indexed values stay
 * the same cannot conflict with another, so the update then needs no savepoint (two round
 * trips fewer); on an invalid merge it restores the row instead.
 */
function mayBreakUniqueness(ref: CollectionRef, patched: readonly string[]): boolean {
  return (ref.indexes ?? []).some(
    (ix) => ix.unique && ix.fields.some((f) => CHANGED_BY_EVERY_UPDATE.has(f) || patched.includes(f)),
  )
}

/**
 * CRUD and queries over plugin collections. Stateless apart from the compiled-schema cache, so
 * one instance serves every tenant and plugin.
 *
 * @example
 * ```ts
 * const store = new CollectionStore()
 * await db.inOrg(tenantId, async (tx) => {
 *   const order = await store.insert(tx, ref, { sku: 'A-1', qty: 2 })
 *   const page = await store.find(tx, ref, { where: { qty: { gte: 2 } }, sort: [{ field: 'qty', direction: 'desc' }] })
 * })
 * ```
 */
export class CollectionStore {
  private readonly validator = new RecordValidator()
  private readonly statements = new QueryStatements()

  /** `protector`: encryption of classified personal fields (core/src/governance); none stores every field as given. */
  constructor(private readonly protector?: FieldProtector) {}

  /** The values of personal fields the transaction has written or read (none without a protector). */
  personalValues(tx: Tx): string[] {
    return this.protector?.personalValues(tx) ?? []
  }

  /** {@link ensureIndexes}: creates the declared indexes of a plugin's collections (at install). */
  ensureIndexes(
    tx: Tx,
    plugin: string,
    collections: Record<string, { indexes?: CollectionIndex[] }>,
  ): Promise<string[]> {
    return ensureIndexes(tx, plugin, collections)
  }

  /** {@link dropPluginData}: deletes the tenant's records of a plugin; resolves to how many. */
  dropPluginData(tx: Tx, plugin: string): Promise<number> {
    return dropPluginData(tx, plugin)
  }

  /**
   * Inserts `record` (its metadata keys ignored) with a new UUIDv7 id, version 1 and both times
   * now. The record as given must validate against the collection's schema
   * (`KRN_ERR_VALIDATION_FAILED`); a unique index it violates gives `KRN_ERR_CONFLICT`.
   */
  async insert(tx: Tx, ref: CollectionRef, record: Record<string, unknown>): Promise<StoredRecord> {
    this.validator.check(ref, record)
    const data = withoutMeta(record)
    const tooLarge = indexedValueProblems(ref, data)
    if (tooLarge.length) throw invalid(`record of ${ref.name}`, tooLarge)
    const id = uuidv7()
    const now = new Date().toISOString()
    const sealed = this.protector ? await this.protector.seal(tx, ref, id, data) : data
    const rows = await tx.sql(
      `insert into plugin_records (plugin, collection, id, data, created_at, updated_at) values (?, ?, ?::uuid, ?::jsonb, ?::timestamptz, ?::timestamptz)
       on conflict do nothing returning id`,
      [ref.plugin, ref.name, id, JSON.stringify(sealed), now, now],
    )
    if (!rows.length) throw KRN.CONFLICT({ reason: `the record conflicts with a unique index of ${ref.name}` })
    return stored(data, id, 1, now, now)
  }

  /** The record with `id`, or `null` (also for an id that is not a lower-case UUID). */
  async get(tx: Tx, ref: CollectionRef, id: string): Promise<StoredRecord | null> {
    if (!isCanonicalUuid(id)) return null
    const rows = await tx.sql<Row>(
      'select id, version, created_at, updated_at, data from plugin_records where plugin = ? and collection = ? and id = ?::uuid',
      [ref.plugin, ref.name, id],
    )
    if (rows.length && this.protector) await this.protector.open(tx, ref, rows)
    return rows.length ? fromRow(rows[0]!) : null
  }

  /**
   * Shallow-merges `patch` (metadata keys ignored) into the record when its version is
   * `expectedVersion`, then version + 1 and `updatedAt` now. `KRN_ERR_NOT_FOUND` when absent,
   * `KRN_ERR_CONFLICT` on another version or a unique-index violation,
   * `KRN_ERR_VALIDATION_FAILED` when the merged record does not match the schema (nothing is
   * changed then).
   */
  async update(
    tx: Tx,
    ref: CollectionRef,
    id: string,
    patch: Record<string, unknown>,
    expectedVersion: number,
  ): Promise<StoredRecord> {
    if (!isCanonicalUuid(id)) throw KRN.NOT_FOUND({ what: `record ${id}` })
    // As after the JSON copy the sandbox makes: an undefined value is no key at all.
    const rest = Object.fromEntries(Object.entries(withoutMeta(patch)).filter(([, v]) => v !== undefined))
    // Refuse what PostgreSQL could not store before writing anything.
    this.validator.check({ ...ref, schema: undefined }, rest)
    const tooLarge = indexedValueProblems(ref, rest)
    if (tooLarge.length) throw invalid(`record of ${ref.name}`, tooLarge)
    // Versions start at 1: 0 matches no record, so a malformed expectation is a conflict.
    const expected =
      Number.isInteger(expectedVersion) && expectedVersion >= 1 && expectedVersion <= MAX_VERSION ? expectedVersion : 0
    const storedPatch = this.protector ? await this.protector.seal(tx, ref, id, rest) : rest
    const patchText = JSON.stringify(storedPatch)
    const now = new Date().toISOString()
    const guarded = mayBreakUniqueness(ref, [...Object.keys(rest), ...Object.keys(storedPatch)])
    if (guarded) await tx.sql('savepoint trellis_plugin_update')
    let row: UpdateRow
    try {
      // The update names the record's id itself, not `cur.id`: joined through the CTE, a plan
      // made without statistics scanned the whole collection for it.
      const rows = await tx.sql<UpdateRow>(
        `with cur as (
           select id, version, created_at, updated_at, data from plugin_records where plugin = ? and collection = ? and id = ?::uuid
         ), upd as (
           update plugin_records r set data = r.data || ?::jsonb, version = r.version + 1, updated_at = ?::timestamptz
             from cur where r.plugin = ? and r.collection = ? and r.id = ?::uuid and r.version = ?
           returning r.version
         )
         select cur.id, cur.version, cur.created_at, cur.updated_at, cur.data, (select version from upd) as new_version,
                cur.updated_at::text as updated_at_text,
                (select jsonb_object_agg(k, cur.data -> k) from jsonb_object_keys(?::jsonb) k where cur.data -> k is not null)::text as old_patched
           from cur`,
        [ref.plugin, ref.name, id, patchText, now, ref.plugin, ref.name, id, expected, patchText],
      )
      if (!rows.length) throw KRN.NOT_FOUND({ what: `record ${id}` })
      row = rows[0]!
    } catch (err) {
      if (guarded) await rollbackSavepoint(tx)
      if (isUniqueViolation(err))
        throw KRN.CONFLICT({ reason: `the update conflicts with a unique index of ${ref.name}` }, { cause: err })
      throw err
    }
    if (row.new_version === null) {
      if (guarded) await tx.sql('release savepoint trellis_plugin_update')
      // cur reads the statement's snapshot; the update re-reads a row another transaction
      // changed meanwhile. Equal versions here mean exactly that.
      const reason =
        row.version === expected
          ? `record ${id} was changed by a concurrent transaction`
          : `record ${id} is at version ${row.version}, not ${expectedVersion}`
      throw KRN.CONFLICT({ reason })
    }
    // The stored row, as the plugin wrote it (old_patched stays in the stored form, for restore).
    if (this.protector) await this.protector.open(tx, ref, [row])
    const merged = { ...row.data, ...rest }
    const problems = this.validator.problems(ref, merged)
    if (problems.length) {
      if (guarded) await rollbackSavepoint(tx)
      else await this.restore(tx, ref, row, Object.keys(storedPatch))
      throw invalid(`record of ${ref.name}`, problems)
    }
    if (guarded) await tx.sql('release savepoint trellis_plugin_update')
    return stored(merged, row.id, row.new_version, iso(row.created_at), now)
  }

  /**
   * Puts back a row the update already changed (the invalid-merge path, without a savepoint):
   * the patched keys are removed and their old values (kept as jsonb text, so exact) restored.
   */
  private async restore(tx: Tx, ref: CollectionRef, row: UpdateRow, patchedKeys: string[]): Promise<void> {
    await tx.sql(
      `update plugin_records set data = (data - ?::text[]) || coalesce(?::jsonb, '{}'::jsonb), version = ?, updated_at = ?::timestamptz
        where plugin = ? and collection = ? and id = ?::uuid`,
      [sqlArray(patchedKeys), row.old_patched, row.version, row.updated_at_text, ref.plugin, ref.name, row.id],
    )
  }

  /** Deletes the record; `true` when it existed. */
  async delete(tx: Tx, ref: CollectionRef, id: string): Promise<boolean> {
    if (!isCanonicalUuid(id)) return false
    const rows = await tx.sql(
      'delete from plugin_records where plugin = ? and collection = ? and id = ?::uuid returning id',
      [ref.plugin, ref.name, id],
    )
    return rows.length > 0
  }

  /**
   * One page of the records matching `query.where`, in `query.sort` order (then `id`), after
   * `query.cursor`. `KRN_ERR_INVALID_CURSOR` for a cursor of another query or a garbled one;
   * `KRN_ERR_VALIDATION_FAILED` for a malformed query.
   */
  async find(tx: Tx, ref: CollectionRef, given: FindQuery = {}): Promise<FindPage> {
    const query = this.protector ? await this.protector.query(tx, ref, given) : given
    const limit = query.limit ?? DEFAULT_LIMIT
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw invalid('query', [{ pointer: '/limit', message: `must be an integer from 1 to ${MAX_LIMIT}` }])
    const keys = normaliseSort(query.sort)
    // The hash costs a canonical serialisation of the filter: only paid when a cursor is involved.
    let memo: string | undefined
    const hash = () => (memo ??= queryHash(ref.plugin, ref.name, query.where, keys))
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor, hash(), keys)
    const p = new SqlParams()
    const columns = sortColumns(keys, p)
    const plugin = sqlName(ref.plugin, PLUGIN_NAME, p)
    const collection = sqlName(ref.name, COLLECTION_NAME, p)
    const where = compileFilter(query.where, p)
    const conditions = [
      where === 'true' ? '' : ` and ${where}`,
      after ? ` and ${afterCondition(keys, after, p)}` : '',
    ].join('')
    const order = orderBy(keys, p)
    p.add(limit + 1)
    const text = `select id, version, created_at, updated_at, data${columns} from plugin_records where plugin = ${plugin} and collection = ${collection}${conditions} ${order} limit ?`
    // The text is the query's shape and names: a named statement while their number stays bounded.
    const rows = await (this.statements.admit(text) ? tx.sql<Row>(text, p.values) : tx.sqlOnce<Row>(text, p.values))
    const more = rows.length > limit
    const page = more ? rows.slice(0, limit) : rows
    if (this.protector) await this.protector.open(tx, ref, page)
    const items = page.map(fromRow)
    let nextCursor: string | null = null
    if (more) {
      const last = items[items.length - 1]!
      nextCursor = encodeCursor(hash(), rowKey(keys, { ...last, sortText: page[page.length - 1]! }))
    }
    return { items, nextCursor }
  }
}
