import t from 'tap'
import { AuditSealer } from '../src/audit/sealer.js'
import type { Database } from '../src/db/database.js'

/** Records when the sealer opens a transaction (each finds nothing to seal). */
function fakeDb() {
  const passes: number[] = []
  const db = {
    passes,
    async inOrg(_org: string, fn: (tx: unknown) => Promise<number>) {
      passes.push(performance.now())
      // The advisory lock is granted; there is no chain head and nothing unsealed.
      return fn({ sql: async (text: string) => (text.includes('pg_try_advisory_xact_lock') ? [{ ok: true }] : []) })
    },
  }
  return db
}

t.test('after a quiet spell entries are sealed at once; under steady writes, one pass per interval', async (t) => {
  const db = fakeDb()
  const sealer = new AuditSealer(db as unknown as Database, undefined, 20, 600)
  t.teardown(() => sealer.close())
  const start = performance.now()
  sealer.nudge('tenant-a')
  await new Promise((r) => setTimeout(r, 150))
  t.equal(db.passes.length, 1, 'the first commit after a quiet spell is sealed after the short delay')
  t.ok(db.passes[0]! - start < 150)
  sealer.nudge('tenant-a')
  sealer.nudge('tenant-b')
  await new Promise((r) => setTimeout(r, 200))
  t.equal(db.passes.length, 1, 'commits right after a pass wait for the interval')
  while (db.passes.length < 3 && performance.now() - start < 5_000) await new Promise((r) => setTimeout(r, 20))
  t.equal(db.passes.length, 3, 'then both organisations are sealed in one pass')
  t.ok(db.passes[1]! - db.passes[0]! >= 550, 'an interval after the previous pass')
})
