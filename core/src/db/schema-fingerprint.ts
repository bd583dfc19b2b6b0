import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { migrationsList } from '@trellis/migrations'

let cached: string | undefined

/**
 * A hash of the schema the migrations produce: their names in order and the text of every
 * module of the migrations package (a change to any SQL changes it). A database migrated to
 * head by this code is interchangeable with any other one of the same fingerprint, which is
 * what lets a migrated template stand in for running every migration again.
 */
export function schemaFingerprint(): string {
  if (cached) return cached
  const hash = createHash('sha256')
  for (const m of migrationsList) hash.update(`${m.name}\n`)
  const dir = dirname(fileURLToPath(import.meta.resolve('@trellis/migrations')))
  const files = readdirSync(dir)
    .filter((f) => /\.(ts|js|mjs)$/.test(f) && !f.endsWith('.d.ts'))
    .sort()
  for (const f of files) hash.update(`${f}\n`).update(readFileSync(join(dir, f)))
  cached = hash.digest('hex').slice(0, 16)
  return cached
}
