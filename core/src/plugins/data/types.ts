/**
 * Types of the collections data service: what the plugin host hands it (a reference to one
 * declared collection) and what it answers (stored records and pages).
 */
import type { Query } from '@trellis/plugin-sdk'
import type { Tx } from '../../db/database.js'

/** One index a manifest declares on a collection. */
export interface CollectionIndex {
  /** 1 to 8 field names (record fields or `id`, `version`, `createdAt`, `updatedAt`). */
  fields: string[]
  /** When true, no two records of one tenant may share the indexed values. */
  unique?: boolean
}

/**
 * One collection of one plugin, as declared in the plugin version's manifest. The plugin host
 * builds it after checking the `data` capability and that the collection is declared.
 */
export interface CollectionRef {
  /** Plugin name, `@scope/name`. */
  plugin: string
  /** Collection name as declared in the manifest. */
  name: string
  /** JSON Schema every record must satisfy; `undefined` accepts any object. */
  schema: unknown
  /** Declared indexes; an update that may change a `unique` one's values runs under a savepoint. */
  indexes?: CollectionIndex[]
}

/** Kernel-maintained fields of every record. */
export interface RecordMetaFields {
  /** UUIDv7 assigned on insert. */
  id: string
  /** 1 on insert, incremented by every update. */
  version: number
  /** ISO 8601 (millisecond, UTC) time of the insert. */
  createdAt: string
  /** ISO 8601 (millisecond, UTC) time of the last update. */
  updatedAt: string
}

/** A stored record: the plugin's own fields plus the metadata. */
export type StoredRecord = Record<string, unknown> & RecordMetaFields

/** A `data.find` query as the SDK sends it. */
export type FindQuery = Query<Record<string, unknown>>

/** One page of `find`. */
export interface FindPage {
  /** Matching records, in order. */
  items: StoredRecord[]
  /** Opaque keyset cursor of the next page, `null` on the last page. */
  nextCursor: string | null
}

/**
 * What the store asks of the data-governance layer (core/src/governance) for collections whose
 * schema classifies fields as personal: stored form on the way in, plaintext on the way out,
 * and queries over the stored form. Each method returns its input untouched for a collection
 * without protected fields.
 */
export interface FieldProtector {
  /** The record (or patch) `data` of record `id` as it is stored. */
  seal(tx: Tx, ref: CollectionRef, id: string, data: Record<string, unknown>): Promise<Record<string, unknown>>
  /** Turns stored `data` of each row back into what the plugin wrote (in place). */
  open(tx: Tx, ref: CollectionRef, rows: Array<{ id: string; data: Record<string, unknown> }>): Promise<void>
  /** The query over the stored form; refuses what cannot be answered on it. */
  query(tx: Tx, ref: CollectionRef, query: FindQuery): Promise<FindQuery>
  /** The personal values the transaction has written or read (masked before text leaves the kernel). */
  personalValues(tx: Tx): string[]
}
