/**
 * Size limit on values of indexed fields. A btree index entry holds at most ~2.7 kB, and an
 * insert or update whose indexed value is larger fails with an SQL error — which would abort
 * the plugin's whole transaction. Such values are refused beforehand as validation errors.
 */
import { pointerSegment } from '@trellis/plugin-sdk'
import { isMetaField, type Problem } from './json-values.js'
import type { CollectionRef } from './types.js'

/** Bytes (as JSON text) the indexed fields of one index may hold together. */
export const MAX_INDEXED_BYTES = 2000

/**
 * Problems of `fields` (a record, or a patch: each field is checked on its own against its
 * share of {@link MAX_INDEXED_BYTES}, so a patch can be checked without the stored record).
 */
export function indexedValueProblems(ref: CollectionRef, fields: Record<string, unknown>): Problem[] {
  const out: Problem[] = []
  for (const ix of ref.indexes ?? []) {
    if (!Array.isArray(ix.fields) || !ix.fields.length) continue
    const share = Math.floor(MAX_INDEXED_BYTES / ix.fields.length)
    for (const f of ix.fields) {
      if (isMetaField(f) || !Object.hasOwn(fields, f)) continue
      const pointer = `/${pointerSegment(f)}`
      if (Buffer.byteLength(JSON.stringify(fields[f]) ?? '') > share && !out.some((p) => p.pointer === pointer)) {
        out.push({ pointer, message: `is too large for an indexed field (at most ${share} bytes as JSON)` })
      }
    }
  }
  return out
}
