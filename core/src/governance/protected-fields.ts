/**
 * Encryption at rest of the `personal` and `sensitive-personal` fields of plugin collections
 * (the collection store's {@link FieldProtector}).
 *
 * A protected field is stored as two jsonb keys of the record: the field itself holds its
 * blind-index token (so `eq`, `ne`, `in` and unique indexes work unchanged in SQL) and
 * `$e:<field>` holds the AES-256-GCM ciphertext with its key id. A null value stays null.
 * Values are decrypted only here, in the tenant's transaction of a host call — the raw rows,
 * backups and anything else reading the table see tokens and ciphertext.
 */
import { encryptedFields, encryptedQueryRefusal } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import type { CollectionRef, FieldProtector, FindQuery } from '../plugins/data/index.js'
import { blindToken } from './blind-index.js'
import { GOV } from './errors.js'
import { openValue, sealedKeyId, sealValue } from './field-cipher.js'
import type { TenantKeyring } from './tenant-keys.js'

/** Prefix of the jsonb key holding a protected field's ciphertext. */
export const SEALED_PREFIX = '$e:'

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** Encrypts, decrypts and rewrites queries for collections whose schema classifies personal fields. */
export class ProtectedFields implements FieldProtector {
  private readonly fieldsOf = new WeakMap<object, ReadonlySet<string>>()
  /** Personal values each transaction wrote or read, for masking before text leaves the kernel. */
  private readonly seen = new WeakMap<Tx, Set<string>>()

  constructor(private readonly keyring: TenantKeyring) {}

  /** The collection's fields encrypted at rest (cached per schema object). */
  fields(ref: CollectionRef): ReadonlySet<string> {
    const schema = ref.schema
    if (typeof schema !== 'object' || schema === null) return EMPTY
    let set = this.fieldsOf.get(schema)
    if (!set) this.fieldsOf.set(schema, (set = new Set(encryptedFields(schema))))
    return set
  }

  async seal(tx: Tx, ref: CollectionRef, id: string, data: Record<string, unknown>): Promise<Record<string, unknown>> {
    const fields = this.fields(ref)
    if (!fields.size) return data
    for (const key of Object.keys(data)) if (key.startsWith(SEALED_PREFIX)) throw GOV.RESERVED_FIELD({ field: key })
    if (!Object.keys(data).some((k) => fields.has(k))) return data
    const keys = await this.keyring.active(tx)
    const out: Record<string, unknown> = { ...data }
    for (const field of fields) {
      if (!Object.hasOwn(data, field)) continue
      const value = data[field]
      if (value === null) {
        out[`${SEALED_PREFIX}${field}`] = null
        continue
      }
      this.remember(tx, value)
      out[field] = blindToken(keys.index, scope(ref, field), value)
      out[`${SEALED_PREFIX}${field}`] = sealValue(keys.data, value, aad(keys.tenantId, ref, field, id))
    }
    return out
  }

  async open(tx: Tx, ref: CollectionRef, rows: Array<{ id: string; data: Record<string, unknown> }>): Promise<void> {
    if (!this.fields(ref).size || !rows.length) return
    let tenantId: string | undefined
    for (const row of rows) {
      for (const key of Object.keys(row.data)) {
        if (!key.startsWith(SEALED_PREFIX)) continue
        const field = key.slice(SEALED_PREFIX.length)
        const sealed = row.data[key]
        delete row.data[key]
        if (sealed === null) continue
        tenantId ??= this.keyring.tenantOf(tx) ?? (await this.keyring.active(tx)).tenantId
        const keyId = sealedKeyId(sealed)
        const dataKey = keyId === undefined ? undefined : await this.keyring.dataKey(tx, tenantId, keyId)
        if (!dataKey) throw GOV.FIELD_UNREADABLE({ field })
        try {
          row.data[field] = openValue(dataKey, sealed as string, aad(tenantId, ref, field, row.id))
        } catch {
          throw GOV.FIELD_UNREADABLE({ field })
        }
        this.remember(tx, row.data[field])
      }
    }
  }

  /**
   * The personal values (strings, and the strings inside arrays and objects) this transaction
   * has written or read so far — what the AI service masks in a prompt of the same invocation.
   */
  personalValues(tx: Tx): string[] {
    return [...(this.seen.get(tx) ?? [])]
  }

  private remember(tx: Tx, value: unknown): void {
    let set = this.seen.get(tx)
    if (!set) this.seen.set(tx, (set = new Set()))
    collectStrings(value, set)
  }

  async query(tx: Tx, ref: CollectionRef, query: FindQuery): Promise<FindQuery> {
    const fields = this.fields(ref)
    if (!fields.size) return query
    const refusal = encryptedQueryRefusal(fields, query)
    if (refusal) throw GOV.ENCRYPTED_FIELD_QUERY(refusal)
    if (!mentions(query.where, fields)) return query
    const keys = await this.keyring.active(tx)
    const token = (field: string, v: unknown) => (v === null ? null : blindToken(keys.index, scope(ref, field), v))
    return { ...query, where: rewrite(query.where, fields, token) as FindQuery['where'] }
  }
}

const EMPTY: ReadonlySet<string> = new Set()

/** Most values remembered per transaction (the masking cost stays bounded). */
const MAX_REMEMBERED = 2000

function collectStrings(value: unknown, into: Set<string>, depth = 0): void {
  if (into.size >= MAX_REMEMBERED || depth > 8) return
  if (typeof value === 'string') into.add(value)
  else if (typeof value === 'number') into.add(String(value))
  else if (Array.isArray(value)) for (const v of value) collectStrings(v, into, depth + 1)
  else if (isPlainObject(value)) for (const v of Object.values(value)) collectStrings(v, into, depth + 1)
}

const scope = (ref: CollectionRef, field: string) => `${ref.plugin}\u0000${ref.name}\u0000${field}`

const aad = (tenantId: string, ref: CollectionRef, field: string, id: string) =>
  `${tenantId}\u0000${ref.plugin}\u0000${ref.name}\u0000${field}\u0000${id}`

/** Whether a filter names a protected field (or a ciphertext key) anywhere. */
function mentions(where: unknown, fields: ReadonlySet<string>): boolean {
  if (!isPlainObject(where)) return false
  for (const [key, cond] of Object.entries(where)) {
    if ((key === 'and' || key === 'or') && Array.isArray(cond)) {
      if (cond.some((c) => mentions(c, fields))) return true
    } else if (fields.has(key) || key.startsWith(SEALED_PREFIX)) return true
  }
  return false
}

/**
 * The filter with every condition on a protected field turned into the same condition on its
 * token (what cannot be answered so was refused before). Malformed parts are left for the
 * filter compiler to report.
 */
function rewrite(
  where: unknown,
  fields: ReadonlySet<string>,
  token: (field: string, v: unknown) => string | null,
): unknown {
  if (!isPlainObject(where)) return where
  const out: Record<string, unknown> = {}
  for (const [key, cond] of Object.entries(where)) {
    if ((key === 'and' || key === 'or') && Array.isArray(cond)) {
      out[key] = cond.map((c) => rewrite(c, fields, token))
      continue
    }
    if (!fields.has(key)) {
      out[key] = cond
      continue
    }
    if (!isPlainObject(cond)) {
      out[key] = { eq: token(key, cond) }
      continue
    }
    const ops: Record<string, unknown> = {}
    for (const [op, operand] of Object.entries(cond)) {
      ops[op] = op === 'in' && Array.isArray(operand) ? operand.map((v) => token(key, v)) : token(key, operand)
    }
    out[key] = ops
  }
  return out
}
