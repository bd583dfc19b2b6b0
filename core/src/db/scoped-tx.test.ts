import t from 'tap'
import { type RawConnection, scopedTx } from './scoped-tx.js'

/** A connection that answers each query when the test says so, recording what it was sent. */
function fakeConnection() {
  const sent: Array<{ text: string; name?: string; values?: unknown[] }> = []
  const pending: Array<{ resolve: (rows: unknown[]) => void; reject: (err: Error) => void }> = []
  const conn: RawConnection = {
    query(q, params) {
      sent.push(typeof q === 'string' ? { text: q, values: params } : { text: q.text, name: q.name, values: q.values })
      return new Promise((resolve, reject) => pending.push({ resolve: (rows) => resolve({ rows }), reject }))
    },
  }
  const settle = () => new Promise((r) => setImmediate(r))
  return { conn, sent, pending, settle }
}

t.test('queries made at once reach the connection one at a time, in the order made', async (t) => {
  const { conn, sent, pending, settle } = fakeConnection()
  const tx = scopedTx(conn, new Set())
  const first = tx.sql('select ? as a', [1])
  const second = tx.sqlOnce('select ? as b', [2])
  const third = tx.sql('select ? as c', [3])
  await settle()
  t.equal(sent.length, 1, 'the second waits while the first is out')
  pending.shift()!.reject(new Error('first failed'))
  await t.rejects(first, { message: 'first failed' })
  await settle()
  t.equal(sent.length, 2, 'a failed query frees the connection for the next')
  t.same(sent[1], { text: 'select $1 as b', values: [2] }, 'sqlOnce sends its text unnamed')
  pending.shift()!.resolve([{ b: 2 }])
  t.same(await second, [{ b: 2 }])
  await settle()
  t.equal(sent.length, 3)
  pending.shift()!.resolve([{ c: 3 }])
  t.same(await third, [{ c: 3 }])
  t.match(sent[0], { text: 'select $1 as a', name: /^t_[0-9a-f]{20}$/, values: [1] }, 'sql names its statement')
  t.not(sent[2]!.name, sent[0]!.name, 'another text, another statement')
  const later = tx.sql('select 4')
  t.equal(sent.length, 4, 'a query on a free connection is sent at once')
  pending.shift()!.resolve([])
  await later
})

t.test('the same text is the same prepared statement in every transaction', async (t) => {
  const a = fakeConnection()
  const b = fakeConnection()
  const p = scopedTx(a.conn, new Set()).sql('select ?::int as n', [1])
  const q = scopedTx(b.conn, new Set()).sql('select ?::int as n', [2])
  a.pending.shift()!.resolve([])
  b.pending.shift()!.resolve([])
  await Promise.all([p, q])
  t.equal(a.sent[0]!.name, b.sent[0]!.name)
  t.same([a.sent[0]!.values, b.sent[0]!.values], [[1], [2]])
})

t.test('useOrg switches the organisation and records it', async (t) => {
  const { conn, sent, pending } = fakeConnection()
  const orgs = new Set<string>()
  const tx = scopedTx(conn, orgs)
  await t.rejects(tx.useOrg('not-a-uuid'), { code: 'KRN_ERR_NOT_FOUND' })
  t.equal(sent.length, 0)
  const id = '0190a3c4-0000-7000-8000-000000000001'
  const done = tx.useOrg(id)
  pending.shift()!.resolve([])
  await done
  t.same(sent[0], { text: `select set_config('app.tenant_id', $1, true)`, values: [id] })
  t.same([...tx.orgs], [id])
})
