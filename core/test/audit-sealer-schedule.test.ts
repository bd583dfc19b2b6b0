import t from 'tap'
import { AuditSealer } from '../src/audit/sealer.js'
import type { Database } from '../src/db/database.js'
import { installFakeTimers } from './helpers/fake-timers.js'

/** Records the clock's time whenever the sealer opens a transaction (each finds nothing to seal). */
function fakeDb(now: () => number) {
  const passes: number[] = []
  const db = {
    passes,
    async inOrg(_org: string, fn: (tx: unknown) => Promise<number>) {
      passes.push(now())
      // The advisory lock is granted; there is no chain head and nothing unsealed.
      return fn({ sql: async (text: string) => (text.includes('pg_try_advisory_xact_lock') ? [{ ok: true }] : []) })
    },
  }
  return db
}

t.test('after a quiet spell entries are sealed at once; under steady writes, one pass per interval', async (t) => {
  // The sealer's own clock and timers, moved by the test: every bound below is exact.
  const clock = installFakeTimers()
  t.teardown(clock.restore)
  const db = fakeDb(clock.now)
  const sealer = new AuditSealer(db as unknown as Database, undefined, 20, 600)
  const start = clock.now()
  sealer.nudge('tenant-a')
  await clock.advance(19)
  t.same(db.passes, [], 'not before the short delay')
  await clock.advance(1)
  t.same(db.passes, [start + 20], 'the first commit after a quiet spell is sealed after the short delay')
  sealer.nudge('tenant-a')
  sealer.nudge('tenant-b')
  await clock.advance(599)
  t.same(db.passes, [start + 20], 'commits right after a pass wait for the interval')
  await clock.advance(1)
  t.same(
    db.passes,
    [start + 20, start + 620, start + 620],
    'then both organisations are sealed in one pass, an interval after the previous pass',
  )
  await sealer.close()
  clock.restore()
})
