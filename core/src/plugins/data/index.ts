/**
 * The collections data service of the plugin host: plugin-owned records in PostgreSQL jsonb
 * under row-level security, queried with the SDK's filter language.
 */
export { CollectionStore, DEFAULT_LIMIT, MAX_LIMIT } from './collection-store.js'
export { ensureIndexes } from './indexes.js'
export { dropPluginData } from './plugin-data.js'
export { MAX_FILTER_CONDITIONS, MAX_FILTER_DEPTH } from './filter-compiler.js'
export { MAX_SORT_KEYS } from './keyset.js'
export { MAX_JSON_DEPTH } from './json-values.js'
export type {
  CollectionIndex,
  CollectionRef,
  FieldProtector,
  FindPage,
  FindQuery,
  RecordMetaFields,
  StoredRecord,
} from './types.js'
