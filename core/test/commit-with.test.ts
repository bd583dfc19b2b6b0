// ADR 0111 on the wire: a transaction's last statement and its `commit` leave in one round trip
// (one Sync, no separate `commit` query), and a failed statement commits nothing.
import pg from 'pg'
import t from 'tap'
import { queryThenCommit } from '../src/db/commit-with.js'
import { PG_ADMIN_URL } from './helpers/test-kernel.js'

/** What the client sends: Syncs (extended-protocol round trips), simple queries, parsed texts. */
function spy(client: pg.Client) {
  const conn = (client as unknown as { connection: Record<string, (...args: unknown[]) => unknown> }).connection
  const seen = { syncs: 0, simple: [] as string[], parsed: [] as string[] }
  for (const [method, note] of [
    ['sync', () => seen.syncs++],
    ['query', (text: unknown) => seen.simple.push(String(text))],
    ['parse', (q: unknown) => seen.parsed.push((q as { text: string }).text)],
  ] as const) {
    const original = conn[method]!.bind(conn)
    conn[method] = (...args: unknown[]) => {
      note(args[0])
      return original(...args)
    }
  }
  return seen
}

t.test('the last statement and its commit in one round trip, on PostgreSQL', async (t) => {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL })
  await client.connect()
  t.teardown(() => client.end())
  await client.query('create temporary table kept (id int primary key)')
  const insert = { name: 'commit_with_insert', text: 'insert into kept (id) values ($1) returning id', values: [1] }

  await client.query('begin')
  await client.query("select set_config('trellis.probe', 'in the transaction', true)")
  await client.query('insert into kept (id) values (0)')
  const seen = spy(client)
  const rows = await queryThenCommit(client, insert)
  t.same(rows, [{ id: 1 }], "the statement's rows come back")
  t.equal(seen.syncs, 1, 'one Sync: one round trip')
  t.same(seen.simple, [], 'no separate commit')
  t.same(seen.parsed, [insert.text, 'commit'], 'the commit travels with the statement')
  const probe = await client.query<{ v: string }>("select current_setting('trellis.probe', true) as v")
  t.not(probe.rows[0]!.v, 'in the transaction', 'the transaction is over (its local setting is gone)')
  t.same(
    (await client.query('select id from kept order by id')).rows,
    [{ id: 0 }, { id: 1 }],
    'what the transaction wrote before and with its last statement is committed',
  )

  await client.query('begin')
  await client.query('insert into kept (id) values (2)')
  await t.rejects(queryThenCommit(client, { ...insert, values: [1] }), /duplicate key/, 'a failed statement rejects')
  await t.rejects(client.query('select 1'), /current transaction is aborted/, 'and is not committed past')
  await client.query('rollback')
  t.same(
    (await client.query('select id from kept order by id')).rows,
    [{ id: 0 }, { id: 1 }],
    'nothing of the failed transaction was written',
  )
})
