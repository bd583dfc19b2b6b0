/**
 * Declared collection indexes: real partial expression indexes on `plugin_records`, created at
 * install time through the SECURITY DEFINER function `trellis_plugin_index` (the application
 * role may not create indexes itself).
 */
import type { Tx } from '../../db/database.js'
import { COLLECTION_NAME, FIELD_NAME, PLUGIN_NAME } from './fields.js'
import { invalid } from './record-validator.js'
import type { CollectionIndex } from './types.js'
import type { Problem } from './json-values.js'

// The names are checked against the patterns trellis_plugin_index enforces (fields.ts) first, so
// that a bad name is a validation error rather than an SQL error that aborts the install's transaction.

/**
 * Creates (if missing) every index the plugin declares on its collections, in one round trip,
 * and returns the index names. Indexes cover all tenants' rows of the collection (their first
 * column is `tenant_id`, so unique indexes are unique per tenant) and are kept on uninstall.
 * `KRN_ERR_VALIDATION_FAILED` when a plugin, collection or field name is not one the database
 * function accepts (nothing is created then).
 */
export async function ensureIndexes(
  tx: Tx,
  plugin: string,
  collections: Record<string, { indexes?: CollectionIndex[] }>,
): Promise<string[]> {
  const problems: Problem[] = []
  if (!PLUGIN_NAME.test(plugin)) problems.push({ pointer: '/name', message: 'must be @scope/name' })
  const wanted: Array<{ p: string; c: string; f: string[]; u: boolean }> = []
  for (const [name, declared] of Object.entries(collections)) {
    const indexes = declared.indexes ?? []
    if (indexes.length && !COLLECTION_NAME.test(name))
      problems.push({ pointer: `/collections/${name}`, message: 'is not a collection name' })
    indexes.forEach((ix, i) => {
      const at = `/collections/${name}/indexes/${i}`
      if (!Array.isArray(ix.fields) || ix.fields.length < 1 || ix.fields.length > 8)
        problems.push({ pointer: `${at}/fields`, message: 'an index has 1 to 8 fields' })
      else
        ix.fields.forEach(
          (f, j) =>
            FIELD_NAME.test(f) ||
            problems.push({ pointer: `${at}/fields/${j}`, message: 'is not a field name an index may use' }),
        )
      wanted.push({ p: plugin, c: name, f: ix.fields, u: ix.unique === true })
    })
  }
  if (problems.length) throw invalid(`indexes of ${plugin}`, problems)
  if (!wanted.length) return []
  const rows = await tx.sql<{ name: string }>(
    `select trellis_plugin_index(x.p, x.c, array(select jsonb_array_elements_text(x.f)), x.u) as name
       from jsonb_to_recordset(?::jsonb) as x(p text, c text, f jsonb, u boolean)`,
    [JSON.stringify(wanted)],
  )
  return rows.map((r) => r.name)
}
