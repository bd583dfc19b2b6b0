import type { Database } from '../db/database.js'

/** How often one process records a key's use (the database function also writes at most hourly). */
const EVERY_MS = 60 * 60 * 1000
const MAX_TRACKED = 10_000
const recorded = new Map<string, number>()

/**
 * Records that an API key was used (`api_keys.last_used_at`, read by the access review and the
 * evidence pack), at most once an hour per key and process, on the background pool and after the
 * request was let through: authentication never waits for it, and a failure only leaves the last
 * use older than it is.
 */
export function noteApiKeyUse(db: Pick<Database, 'background'>, keyId: string, now = Date.now()): void {
  const last = recorded.get(keyId)
  if (last !== undefined && now - last < EVERY_MS) return
  if (recorded.size >= MAX_TRACKED) recorded.delete(recorded.keys().next().value!)
  recorded.set(keyId, now)
  db.background
    .inOrg(null, (tx) => tx.sql('select trellis_api_key_used(?::uuid)', [keyId]))
    .catch(() => recorded.delete(keyId))
}
