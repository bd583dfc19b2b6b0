import t from 'tap'
import { OrgStatusCache } from '../src/identity/org-status.js'
import type { Database } from '../src/db/database.js'

const ORG = '0192f5a0-0000-7000-8000-000000000001'

/** A database whose status reads are counted and answered when the test says so. */
function fakeDb() {
  let status = { orgStatus: 'active', partnerStatus: 'active' }
  let ended: string[] = []
  const pending: Array<() => void> = []
  const db = {
    reads: 0,
    set(s: typeof status) {
      status = s
    },
    /** Session families the next read finds ended. */
    end(families: string[]) {
      ended = families
    },
    answer() {
      for (const go of pending.splice(0)) go()
    },
    inOrg(_org: string, fn: (tx: unknown, s: typeof status) => Promise<unknown>) {
      db.reads++
      const at = { ...status }
      const rows = ended.map((family_id) => ({ family_id }))
      const tx = { sql: async () => rows }
      return new Promise((resolve) => pending.push(() => resolve(fn(tx, at))))
    },
  }
  return db
}

t.test('concurrent requests share one read; a fresh status needs none', async (t) => {
  const db = fakeDb()
  const cache = new OrgStatusCache(db as unknown as Database, 60_000)
  const waiting = Array.from({ length: 5 }, () => cache.assertActive(ORG))
  db.answer()
  await Promise.all(waiting)
  t.equal(db.reads, 1)
  t.equal(cache.checkKnown(ORG), true)
  await cache.assertActive(ORG)
  t.equal(db.reads, 1)
})

t.test('every waiter is refused when the read finds the tenant suspended', async (t) => {
  const db = fakeDb()
  db.set({ orgStatus: 'suspended', partnerStatus: 'active' })
  const cache = new OrgStatusCache(db as unknown as Database, 60_000)
  const waiting = Array.from({ length: 3 }, () =>
    cache.assertActive(ORG).then(
      () => 'let in',
      (e: { code: string }) => e.code,
    ),
  )
  db.answer()
  t.same(await Promise.all(waiting), [
    'KRN_ERR_TENANT_SUSPENDED',
    'KRN_ERR_TENANT_SUSPENDED',
    'KRN_ERR_TENANT_SUSPENDED',
  ])
  t.throws(() => cache.checkKnown(ORG), { code: 'KRN_ERR_TENANT_SUSPENDED' })
})

t.test('a suspension seen while a read runs wins over what that read returns', async (t) => {
  const db = fakeDb()
  const cache = new OrgStatusCache(db as unknown as Database, 60_000)
  const before = cache.assertActive(ORG) // started before the suspension: it reads "active"
  db.set({ orgStatus: 'suspended', partnerStatus: 'active' })
  cache.forget(ORG)
  db.answer()
  await before
  t.equal(cache.checkKnown(ORG), false, 'the stale answer was not kept')
  const after = cache.assertActive(ORG).catch((e: { code: string }) => e.code)
  db.answer()
  t.equal(await after, 'KRN_ERR_TENANT_SUSPENDED')
  t.equal(db.reads, 2)
})

t.test('a session ended in the database is refused by the read, and by the cached entry after it', async (t) => {
  const db = fakeDb()
  const cache = new OrgStatusCache(db as unknown as Database, 60_000)
  const SESSION = '0192f5a0-0000-7000-8000-0000000000aa'
  db.end([SESSION])
  const read = cache.assertActive(ORG, SESSION)
  db.answer()
  await t.rejects(read, { code: 'AUTH_ERR_INVALID_TOKEN' })
  t.throws(() => cache.checkKnown(ORG, SESSION), { code: 'AUTH_ERR_INVALID_TOKEN' }, 'the fast path refuses it too')
  t.equal(cache.checkKnown(ORG, '0192f5a0-0000-7000-8000-0000000000bb'), true, 'other sessions are unaffected')
  t.equal(cache.checkKnown(ORG), true, 'as are API keys (no session)')
})

t.test('a status past half its life is read again while requests are still answered from it', async (t) => {
  const db = fakeDb()
  let now = 1_000_000
  const cache = new OrgStatusCache(db as unknown as Database, 1000, () => now)
  const first = cache.assertActive(ORG)
  db.answer()
  await first
  now += 400
  t.equal(cache.checkKnown(ORG), true)
  t.equal(db.reads, 1, 'a young entry is not read again')
  // The tenant is suspended in another process: the renewed entry says so before the old one expires.
  db.set({ orgStatus: 'suspended', partnerStatus: 'active' })
  now += 200
  t.equal(cache.checkKnown(ORG), true, 'answered from the entry, without waiting')
  t.equal(db.reads, 2, 'and read again in the background')
  t.equal(cache.checkKnown(ORG), true)
  t.equal(db.reads, 2, 'one read at a time')
  db.answer()
  // Every promise callback of the read has run once the event loop reaches its check phase.
  await new Promise((r) => setImmediate(r))
  t.throws(() => cache.checkKnown(ORG), { code: 'KRN_ERR_TENANT_SUSPENDED' }, 'the renewed entry refuses')
  t.equal(db.reads, 2)
})

t.test('an entry past its life is not used: the request waits for the read', async (t) => {
  const db = fakeDb()
  let now = 1_000_000
  const cache = new OrgStatusCache(db as unknown as Database, 1000, () => now)
  const first = cache.assertActive(ORG)
  db.answer()
  await first
  now += 1001
  t.equal(cache.checkKnown(ORG), false)
  db.set({ orgStatus: 'suspended', partnerStatus: 'active' })
  const second = cache.assertActive(ORG).catch((e: { code: string }) => e.code)
  db.answer()
  t.equal(await second, 'KRN_ERR_TENANT_SUSPENDED')
})
